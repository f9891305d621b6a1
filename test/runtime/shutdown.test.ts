import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { chatHeaders, fixture, jsonOf, startPod, waitFor } from '../pod.ts';

describe('SIGTERM', () => {
  it('finishes the 20 requests in flight, answers new ones 503, and exits 0', async () => {
    const pod = await startPod(fixture('slow'));
    try {
      await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok), 'readiness');
      const inflight = Array.from({ length: 20 }, (_, i) =>
        fetch(`${pod.url}/`, { method: 'POST', headers: chatHeaders(`m${i}`, { 'ce-subject': `conversation-${i}` }), body: JSON.stringify({ text: '1500' }) }).then(
          async (r) => [r.status, (await jsonOf(r)).text] as const,
        ),
      );
      await waitFor(async () => /knbot_inflight_requests\{bot="slow"\} 20\b/.test(await (await fetch(`${pod.url}/metrics`)).text()), '20 requests in flight');
      const exit = once(pod.child, 'exit');
      pod.child.kill('SIGTERM');

      await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.status === 503), 'readiness to turn 503', 2000);
      const late = await fetch(`${pod.url}/`, { method: 'POST', headers: chatHeaders('late', { 'ce-subject': 'late' }), body: JSON.stringify({ text: '1' }) });
      expect([late.status, late.headers.get('retry-after'), (await jsonOf(late)).detail]).toEqual([503, '1', 'the bot is shutting down']);

      expect(await Promise.all(inflight)).toEqual(Array.from({ length: 20 }, () => [200, 'slept 1500']));
      const [code, signal] = await exit;
      expect([code, signal]).toEqual([0, null]);
      expect(pod.logs().map((l) => l.msg)).toContain('draining');
    } finally {
      await pod.stop();
    }
  });
});
