import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Pod, chatHeaders, fixture, jsonOf, startPod, waitFor } from '../pod.ts';

// The `turns` fixture works "<ms> <text>" milliseconds (stopping when ctx.signal aborts, unless the
// ms end in "!") and answers {text: "got <text>", started, ended, concurrent}. Its bot.yaml says
// `sessions: {turnPolicy: debounce, debounceMs: 200}`; the other policies come from KNBOT_TURN_POLICY.
const TURNS = fixture('turns');

const chat = (pod: Pod, conversation: string, text: string, id?: string, accept = 'application/json') =>
  fetch(`${pod.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json', accept }, body: JSON.stringify({ conversation, text, ...(id ? { id } : {}) }) });

const event = (pod: Pod, id: string, conversation: string, text: string) =>
  fetch(pod.url, { method: 'POST', headers: chatHeaders(id, { 'ce-subject': conversation }), body: JSON.stringify({ text, user: { id: 'u1' }, conversation: { id: conversation } }) });

/** Requests the pod is working on, from its /metrics. */
async function inflight(pod: Pod): Promise<number> {
  const text = await (await fetch(`${pod.url}/metrics`)).text();
  return Number(/^knbot_inflight_requests(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1]);
}

const working = (pod: Pod, n: number) => waitFor(async () => (await inflight(pod)) >= n, `${n} requests in flight`);

async function readyPod(env: Record<string, string> = {}): Promise<Pod> {
  const pod = await startPod(TURNS, env);
  await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok, () => false), 'readiness');
  return pod;
}

describe('turn policy queue', () => {
  let pod: Pod;
  beforeAll(async () => (pod = await readyPod({ KNBOT_TURN_POLICY: 'queue' })));
  afterAll(() => pod?.stop());

  it('runs one conversation\'s messages one after another, other conversations alongside', async () => {
    const a = chat(pod, 'c1', '1500 a').then(jsonOf);
    await working(pod, 1);
    const b = chat(pod, 'c1', '0 b').then(jsonOf);
    const other = chat(pod, 'c2', '0 x').then(jsonOf);
    const [ra, rb, rx] = await Promise.all([a, b, other]);
    expect([ra.text, rb.text, rx.text]).toEqual(['got 1500 a', 'got 0 b', 'got 0 x']);
    expect(rb.started).toBeGreaterThanOrEqual(ra.ended);
    expect(rb.concurrent).toBe(0);
    expect(rx.ended).toBeLessThan(ra.ended);
  });
});

describe('turn policy reject', () => {
  let pod: Pod;
  beforeAll(async () => (pod = await readyPod({ KNBOT_TURN_POLICY: 'reject' })));
  afterAll(() => pod?.stop());

  it('turns away a message while its conversation has a turn running: 409 on /v1/chat, an error reply to a CloudEvent', async () => {
    const a = chat(pod, 'c1', '1500 a').then(jsonOf);
    await working(pod, 1);

    const b = await chat(pod, 'c1', '0 b');
    expect(b.status).toBe(409);
    expect(b.headers.get('content-type')).toBe('application/problem+json');
    expect(await b.json()).toMatchObject({ type: 'urn:knbot:problem:turn_in_progress', status: 409 });

    const streamed = await chat(pod, 'c1', '0 s', undefined, 'text/event-stream');
    expect(streamed.status).toBe(409);
    await streamed.body?.cancel();

    // A CloudEvent's conversation is its source's: the HTTP turn does not hold it, an event's turn does.
    const free = await event(pod, 'e0', 'c1', '0 free');
    expect((await jsonOf(free)).text).toBe('got 0 free');
    const held = event(pod, 'e-held', 'c1', '1500 held');
    await working(pod, 2);
    // 200, not 409: Knative's delivery would retry a 409 until the turn is over.
    const ev = await event(pod, 'e1', 'c1', '0 c');
    expect(ev.status).toBe(200);
    expect(ev.headers.get('ce-type')).toBe('dev.knbot.chat.reply.send');
    expect(ev.headers.get('ce-subject')).toBe('c1');
    expect(await ev.json()).toEqual({ text: '', error: 'turn_in_progress', conversation: { id: 'c1' }, inReplyTo: 'e1' });

    expect((await chat(pod, 'c2', '0 x').then(jsonOf)).text).toBe('got 0 x');
    expect((await a).text).toBe('got 1500 a');
    expect((await jsonOf(await held)).text).toBe('got 1500 held');
    expect((await chat(pod, 'c1', '0 d').then(jsonOf)).text).toBe('got 0 d');
  });
});

describe('turn policy interrupt', () => {
  let pod: Pod;
  beforeAll(async () => (pod = await readyPod({ KNBOT_TURN_POLICY: 'interrupt' })));
  afterAll(() => pod?.stop());

  it('aborts the running turn\'s signal (reason interrupted) and runs the new message once it settled', async () => {
    const a = chat(pod, 'c1', '5000 a', 'a').then(jsonOf);
    await working(pod, 1);
    const b = chat(pod, 'c1', '0 b', 'b').then(jsonOf);
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra.text).toBe('stopped: interrupted');
    expect(ra.ended - ra.started).toBeLessThan(4000);
    expect(rb.text).toBe('got 0 b');
    expect(rb.started).toBeGreaterThanOrEqual(ra.ended);
    expect(rb.concurrent).toBe(0);
  });

  it('answers a message interrupted while still queued without running it', async () => {
    // "!": the running turn ignores its signal, so b is still queued when c arrives.
    const a = chat(pod, 'c2', '1000! a', 'a').then(jsonOf);
    await working(pod, 1);
    const b = chat(pod, 'c2', '0 b', 'b').then(jsonOf);
    await working(pod, 2);
    const c = chat(pod, 'c2', '0 c', 'c').then(jsonOf);
    const [ra, rb, rc] = await Promise.all([a, b, c]);
    expect(ra.text).toBe('got 1000! a');
    expect(rb).toEqual({ conversation: 'c2', text: '', inReplyTo: 'b', skipped: 'interrupted', supersededBy: 'c' });
    expect(rc.text).toBe('got 0 c');
    expect(rc.started).toBeGreaterThanOrEqual(ra.ended);
  });

  it('interrupts a turn that came as a CloudEvent', async () => {
    const a = event(pod, 'e1', 'c3', '5000 a');
    await working(pod, 1);
    const b = event(pod, 'e2', 'c3', '0 b');
    const [ra, rb] = await Promise.all([a.then(jsonOf), b.then(jsonOf)]);
    expect(ra).toMatchObject({ text: 'stopped: interrupted', inReplyTo: 'e1' });
    expect(rb).toMatchObject({ text: 'got 0 b', inReplyTo: 'e2' });
  });
});

describe('turn policy debounce', () => {
  let pod: Pod;
  // A window long enough for the test to send the next message inside it on a busy machine.
  beforeAll(async () => (pod = await readyPod({ KNBOT_DEBOUNCE_MS: '1000' })));
  afterAll(() => pod?.stop());

  it('merges a burst into one turn with the texts joined by newlines; the earlier messages get no reply', async () => {
    const a = chat(pod, 'c1', 'first', 'a').then(jsonOf);
    await working(pod, 1);
    // Each message is answered as soon as the next one takes its place.
    const b = chat(pod, 'c1', 'second', 'b').then(jsonOf);
    const ra = await a;
    const c = chat(pod, 'c1', 'third', 'c').then(jsonOf);
    const [rb, rc] = await Promise.all([b, c]);
    expect(ra).toEqual({ conversation: 'c1', text: '', inReplyTo: 'a', skipped: 'merged', supersededBy: 'b' });
    expect(rb).toEqual({ conversation: 'c1', text: '', inReplyTo: 'b', skipped: 'merged', supersededBy: 'c' });
    expect(rc).toMatchObject({ text: 'got first\nsecond\nthird', inReplyTo: 'c' });
  });

  it('answers an earlier CloudEvent with an empty reply naming the one that replaced it, and the last with the merged reply', async () => {
    const a = event(pod, 'e1', 'c2', 'x');
    await working(pod, 1);
    const b = event(pod, 'e2', 'c2', 'y');
    const [ra, rb] = await Promise.all([a, b]);
    expect(ra.status).toBe(200);
    expect(ra.headers.get('ce-type')).toBe('dev.knbot.chat.reply.send');
    expect(await ra.json()).toMatchObject({ text: '', skipped: 'merged', supersededBy: 'e2', inReplyTo: 'e1' });
    expect(rb.status).toBe(200);
    expect(await rb.json()).toMatchObject({ text: 'got x\ny', inReplyTo: 'e2' });
  });

  it('waits KNBOT_DEBOUNCE_MS before a lone message runs', async () => {
    const t0 = Date.now();
    expect((await chat(pod, 'c3', 'solo').then(jsonOf)).text).toBe('got solo');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
  });
});

describe('turn policy settings', () => {
  it('takes the policy and the window from bot.yaml (debounce, 300 ms; the default window is 800)', async () => {
    const pod = await readyPod();
    try {
      // The pod's first request pays for what it loads lazily; the one timed is not the first.
      expect((await chat(pod, 'warm-up', 'solo').then(jsonOf)).text).toBe('got solo');
      const t0 = Date.now();
      expect((await chat(pod, 'c1', 'solo').then(jsonOf)).text).toBe('got solo');
      const took = Date.now() - t0;
      expect(took).toBeGreaterThanOrEqual(300);
      expect(took).toBeLessThan(800);
    } finally {
      await pod.stop();
    }
  });

  it('refuses an unknown KNBOT_TURN_POLICY at start-up', async () => {
    await expect(startPod(TURNS, { KNBOT_TURN_POLICY: 'sometimes' })).rejects.toThrow(/KNBOT_TURN_POLICY must be one of queue, debounce, interrupt, reject/);
  });
});
