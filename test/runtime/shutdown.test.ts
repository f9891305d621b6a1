import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { chatHeaders, fixture, jsonOf, startPod, waitFor } from '../pod.ts';

describe('SIGTERM', () => {
  it('finishes the 20 requests in flight, answers new ones 503, and exits 0', async () => {
    const pod = await startPod(fixture('slow'));
    try {
      await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok), 'readiness');
      const inflight = Array.from({ length: 20 }, (_, i) =>
        fetch(`${pod.url}/`, { method: 'POST', headers: chatHeaders(`m${i}`, { 'ce-subject': `conversation-${i}` }), body: JSON.stringify({ text: '3000' }) }).then(
          async (r) => [r.status, (await jsonOf(r)).text] as const,
        ),
      );
      await waitFor(async () => /knbot_inflight_requests\{bot="slow"\} 20\b/.test(await (await fetch(`${pod.url}/metrics`)).text()), '20 requests in flight');
      const exit = once(pod.child, 'exit');
      pod.child.kill('SIGTERM');

      await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.status === 503), 'readiness to turn 503', 5000);
      const late = await fetch(`${pod.url}/`, { method: 'POST', headers: chatHeaders('late', { 'ce-subject': 'late' }), body: JSON.stringify({ text: '1' }) });
      expect([late.status, late.headers.get('retry-after'), (await jsonOf(late)).detail]).toEqual([503, '1', 'the bot is shutting down']);

      expect(await Promise.all(inflight)).toEqual(Array.from({ length: 20 }, () => [200, 'slept 3000']));
      const [code, signal] = await exit;
      expect([code, signal]).toEqual([0, null]);
      expect(pod.logs().map((l) => l.msg)).toContain('draining');
    } finally {
      await pod.stop();
    }
  });

  it('answers what is still running at the drain timeout with 503, and still exits 0', async () => {
    const pod = await startPod(fixture('slow'), { KNBOT_DRAIN_TIMEOUT_MS: '300' });
    try {
      await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok), 'readiness');
      const slow = fetch(`${pod.url}/`, { method: 'POST', headers: chatHeaders('long'), body: JSON.stringify({ text: '20000' }) });
      await waitFor(async () => /knbot_inflight_requests\{bot="slow"\} 1\b/.test(await (await fetch(`${pod.url}/metrics`)).text()), 'one request in flight');
      const exit = once(pod.child, 'exit');
      const t0 = Date.now();
      pod.child.kill('SIGTERM');
      const res = await slow;
      expect([res.status, (await jsonOf(res)).detail]).toEqual([503, 'the bot shut down before answering']);
      expect(await exit).toEqual([0, null]);
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      await pod.stop();
    }
  });
});
