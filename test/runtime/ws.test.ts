import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECHO, type Pod, fixture, startPod, waitFor } from '../pod.ts';
import { type Frame, TestClient as Client, handshake } from '../ws-client.ts';

const seqs = (frames: Frame[]) => frames.map((f) => f.seq);
const metrics = async (pod: Pod) => (await fetch(`${pod.url}/metrics`)).text();
const wsUrl = (pod: Pod) => `ws://127.0.0.1:${pod.port}/v1/ws`;

describe('a pod with bot.websocket: true', () => {
  let pod: Pod;
  beforeAll(async () => {
    pod = await startPod(fixture('ws-stream'), { KNBOT_MAX_BODY_BYTES: String(16 * 1024) });
    await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok), 'readiness');
  });
  afterAll(() => pod?.stop());

  it('opens with session at seq 0, then ack, typing, the streamed chunks and the reply, numbered one by one', async () => {
    const c = await Client.connect(wsUrl(pod));
    const sessionId = await c.session();
    expect(c.frames[0]).toEqual({ v: 1, seq: 0, type: 'session', sessionId });
    c.send({ type: 'message', id: 'm-1', conversation: 'c1', text: 'one two three' });
    const reply = await c.next((f) => f.type === 'reply', 'the reply');
    expect(reply).toMatchObject({ v: 1, type: 'reply', id: 'm-1', text: 'one two three', conversation: 'c1', bot: 'ws-stream' });
    expect(c.frames.map((f) => f.type)).toEqual(['session', 'ack', 'typing', 'chunk', 'chunk', 'chunk', 'reply']);
    expect(c.frames.filter((f) => f.type === 'chunk').map((f) => [f.id, f.text])).toEqual([['m-1', 'one'], ['m-1', ' two'], ['m-1', ' three']]);
    expect(seqs(c.frames)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    c.ws.terminate();
  });

  it('sends a typing frame again when the bot calls ctx.typing()', async () => {
    const c = await Client.connect(wsUrl(pod));
    await c.session();
    c.send({ type: 'message', id: 't-1', conversation: 'ct', text: 'one typing two' });
    await c.next((f) => f.type === 'reply', 'the reply');
    expect(c.frames.map((f) => f.type)).toEqual(['session', 'ack', 'typing', 'chunk', 'typing', 'chunk', 'reply']);
    expect(c.frames[4]).toMatchObject({ type: 'typing', id: 't-1', conversation: 'ct', bot: 'ws-stream' });
    c.ws.terminate();
  });

  it('takes a message naming this bot, and refuses one naming another', async () => {
    const c = await Client.connect(wsUrl(pod));
    await c.session();
    c.send({ type: 'message', id: 'b-1', bot: 'other-bot', conversation: 'c', text: 'hi' });
    expect(await c.next((f) => f.type === 'error', 'the refusal')).toMatchObject({ code: 'unknown_bot', id: 'b-1' });
    c.send({ type: 'message', id: 'b-2', bot: 'ws-stream', conversation: 'c', text: 'hi' });
    expect((await c.next((f) => f.type === 'reply', 'the reply')).text).toBe('hi');
    c.ws.terminate();
  });

  it('answers ping with pong, in the session numbering', async () => {
    const c = await Client.connect(wsUrl(pod));
    await c.session();
    c.send({ type: 'ping', id: 'p-1' });
    c.send({ type: 'ping' });
    await waitFor(() => c.frames.filter((f) => f.type === 'pong').length === 2, 'two pongs');
    expect(c.frames.slice(1)).toEqual([
      { v: 1, seq: 1, type: 'pong', id: 'p-1' },
      { v: 1, seq: 2, type: 'pong' },
    ]);
    c.ws.terminate();
  });

  it('answers bad frames with error frames and keeps the socket', async () => {
    const c = await Client.connect(wsUrl(pod));
    await c.session();
    c.send('{not json');
    c.send({ type: 'dance' });
    c.ws.send(JSON.stringify({ v: 2, type: 'ping' }));
    c.send({ type: 'message', id: 'x', text: 'no conversation' });
    c.send({ type: 'message', id: 'y', conversation: 'c', text: 'hi', user: 42 });
    c.send('[1, 2]');
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await waitFor(() => c.frames.filter((f) => f.type === 'error').length >= 7, 'seven errors');
    expect(c.frames.filter((f) => f.type === 'error').map((f) => f.code)).toEqual([
      'malformed_json',
      'unknown_type',
      'unsupported_version',
      'invalid_frame',
      'invalid_frame',
      'invalid_frame',
      'binary_frame',
    ]);
    c.send({ type: 'message', id: 'ok-after', conversation: 'c6', text: 'still here' });
    expect((await c.next((f) => f.type === 'reply', 'a reply')).text).toBe('still here');
    expect(seqs(c.frames)).toEqual(c.frames.map((_, i) => i));
    c.ws.terminate();
  });

  it('answers a bot that throws with bot_error, and counts the messages in knbot_requests_total', async () => {
    const c = await Client.connect(wsUrl(pod));
    await c.session();
    c.send({ type: 'message', id: 'f-1', conversation: 'c-fail', text: 'fail whisper-7781' });
    expect(await c.next((f) => f.type === 'error', 'the error')).toMatchObject({ code: 'bot_error', id: 'f-1' });
    c.ws.terminate();
    const text = await metrics(pod);
    expect(text).toMatch(/knbot_requests_total\{route="ws",code="200",bot="ws-stream"\} [1-9]/);
    expect(text).toMatch(/knbot_requests_total\{route="ws",code="500",bot="ws-stream"\} 1\b/);
    expect(pod.output()).not.toContain('whisper-7781');
  });

  it('counts handshakes under /v1/ws by how they ended, and answers one ws refuses with a 400 problem', async () => {
    const count = (text: string, code: number) => Number(new RegExp(`knbot_requests_total\\{route="/v1/ws",code="${code}",bot="ws-stream"\\} (\\d+)`).exec(text)?.[1] ?? 0);
    const before = await metrics(pod);
    const c = await Client.connect(wsUrl(pod));
    await c.session();
    c.ws.terminate();
    const bad = await handshake(wsUrl(pod), { 'sec-websocket-key': 'not a key' });
    expect(bad).toMatchObject({ status: 400, body: { type: 'urn:knbot:problem:bad_handshake', detail: expect.stringMatching(/Sec-WebSocket-Key/) } });
    const after = await metrics(pod);
    expect(count(after, 101) - count(before, 101)).toBe(1);
    expect(count(after, 400) - count(before, 400)).toBe(1);
  });

  it('closes with 1009 on a frame larger than the pod takes a body', async () => {
    const c = await Client.connect(wsUrl(pod));
    await c.session();
    c.send({ type: 'message', id: 'big', conversation: 'c', text: 'x'.repeat(20 * 1024) });
    expect((await c.waitClosed()).code).toBe(1009);
    // The pod is fine.
    expect((await fetch(`${pod.url}/health/liveness`)).status).toBe(200);
  });

  it('acknowledges a message id seen before on the session without running it again', async () => {
    const c = await Client.connect(wsUrl(pod));
    await c.session();
    c.send({ type: 'message', id: 'dup-1', conversation: 'c3', text: 'once' });
    await c.next((f) => f.type === 'reply', 'the reply');
    c.send({ type: 'message', id: 'dup-1', conversation: 'c3', text: 'once' });
    await c.next((f) => f.type === 'ack' && f.duplicate === true, 'the second ack');
    c.send({ type: 'ping', id: 'p' });
    await c.next((f) => f.type === 'pong', 'pong');
    expect(c.frames.filter((f) => f.type === 'reply')).toHaveLength(1);
    c.ws.terminate();
  });

  it('replays on resume what the pod produced while the client was away, then session {resumed}', async () => {
    const c = await Client.connect(wsUrl(pod));
    const sessionId = await c.session();
    c.send({ type: 'message', id: 'r-1', conversation: 'c5', text: 'wait=300 back again' });
    await c.next((f) => f.type === 'typing', 'typing');
    const lastSeq = c.frames.at(-1)!.seq!;
    c.ws.terminate();
    // The reply finishes with nobody connected.
    await waitFor(async () => /knbot_inflight_requests\{bot="ws-stream"\} 0\b/.test(await metrics(pod)), 'the turn to finish');
    const d = await Client.connect(wsUrl(pod));
    await d.session();
    d.send({ type: 'resume', sessionId, lastSeq });
    const resumed = await d.next((f) => f.type === 'session' && f.resumed === true, 'the resumed session frame');
    expect(resumed.sessionId).toBe(sessionId);
    const replayed = d.frames.slice(1, -1);
    expect(replayed.map((f) => f.type)).toEqual(['chunk', 'chunk', 'reply']);
    expect(replayed.at(-1)).toMatchObject({ id: 'r-1', text: 'back again' });
    expect(seqs(d.frames.slice(1))).toEqual(d.frames.slice(1).map((_, i) => lastSeq + 1 + i));
    // The session goes on on the new socket.
    d.send({ type: 'ping', id: 'after' });
    expect((await d.next((f) => f.type === 'pong', 'pong')).seq).toBe(resumed.seq! + 1);
    d.ws.terminate();
  });

  it('refuses to resume a session it does not have, and the socket keeps the session it was given', async () => {
    const c = await Client.connect(wsUrl(pod));
    const given = await c.session();
    c.send({ type: 'resume', sessionId: 'no-such-session', lastSeq: 3 });
    expect(await c.next((f) => f.type === 'error', 'error')).toMatchObject({ seq: 1, code: 'unknown_session' });
    c.send({ type: 'message', id: 'k-1', conversation: 'c', text: 'kept' });
    expect(await c.next((f) => f.type === 'reply', 'the reply')).toMatchObject({ text: 'kept' });
    c.ws.terminate();
    const d = await Client.connect(wsUrl(pod));
    d.send({ type: 'resume', sessionId: given, lastSeq: 1 });
    expect(await d.next((f) => f.type === 'session' && f.resumed === true, 'the resumed session')).toMatchObject({ sessionId: given });
    d.send({ type: 'resume', sessionId: given, lastSeq: 0 });
    expect(await d.next((f) => f.type === 'error', 'the late resume')).toMatchObject({ code: 'invalid_frame' });
    d.ws.terminate();
  });

  it.each([
    ['/v1/other', /no WebSocket endpoint at \/v1\/other/],
    ['/', /no WebSocket endpoint at \//],
  ])('answers a handshake to %s with a 404 problem', async (path, detail) => {
    const r = await handshake(`ws://127.0.0.1:${pod.port}${path}`);
    expect([r.status, r.contentType, r.body.status]).toEqual([404, 'application/problem+json', 404]);
    expect(r.body.detail).toMatch(detail);
  });
});

describe('a pod without bot.websocket: true', () => {
  let pod: Pod;
  beforeAll(async () => {
    pod = await startPod(ECHO);
  });
  afterAll(() => pod?.stop());

  it('answers the handshake to /v1/ws with a 404 problem saying how to turn it on', async () => {
    const r = await handshake(wsUrl(pod));
    expect([r.status, r.contentType, r.body.type]).toEqual([404, 'application/problem+json', 'urn:knbot:problem:not_found']);
    expect(r.body.detail).toMatch(/bot\.websocket: true/);
    expect(await metrics(pod)).toMatch(/knbot_requests_total\{route="\/v1\/ws",code="404",bot="echo"\} 1\b/);
    // Plain requests are as before.
    expect((await fetch(`${pod.url}/v1/ws`)).status).toBe(404);
    expect((await fetch(`${pod.url}/health/liveness`)).status).toBe(200);
  });
});

describe('limits', () => {
  let pod: Pod;
  beforeAll(async () => {
    pod = await startPod(fixture('ws-stream'), { KNBOT_CONTAINER_CONCURRENCY: '1', KNBOT_MAX_BODY_BYTES: String(1 << 20) });
    await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok), 'readiness');
  });
  afterAll(() => pod?.stop());

  it('answers a message over the concurrency limit with unavailable, and takes it again later', async () => {
    const c = await Client.connect(wsUrl(pod));
    await c.session();
    c.send({ type: 'message', id: 'cap-1', conversation: 'a', text: 'wait=2000 first' });
    await c.next((f) => f.type === 'ack', 'the first ack');
    c.send({ type: 'message', id: 'cap-2', conversation: 'b', text: 'second' });
    expect(await c.next((f) => f.type === 'error' && f.id === 'cap-2', 'the refusal')).toMatchObject({ code: 'unavailable' });
    await c.next((f) => f.type === 'reply' && f.id === 'cap-1', 'the first reply');
    c.send({ type: 'message', id: 'cap-2', conversation: 'b', text: 'second' });
    expect((await c.next((f) => f.type === 'reply' && f.id === 'cap-2', 'the retried reply')).text).toBe('second');
    c.ws.terminate();
  });

  it('closes a client that does not read with 1013 and where to resume', async () => {
    const c = await Client.connect(wsUrl(pod));
    const sessionId = await c.session();
    const socket = (c.ws as unknown as { _socket: import('node:net').Socket })._socket;
    socket.pause();
    c.send({ type: 'message', id: 'flood', conversation: 'f', text: Array.from({ length: 48 }, () => 'kib=512').join(' ') });
    await waitFor(() => pod.logs().some((l) => l.msg === 'closing a socket that does not read'), 'the pod to give up on the reader', 20_000);
    socket.resume();
    const closed = await c.waitClosed();
    expect(closed.code).toBe(1013);
    expect(JSON.parse(closed.reason)).toMatchObject({ sessionId, lastSeq: expect.any(Number) });
  });
});

describe('deadlines', () => {
  let pod: Pod;
  beforeAll(async () => {
    pod = await startPod(fixture('ws-stream'), { KNBOT_TIMEOUT_SECONDS: '1', KNBOT_DRAIN_TIMEOUT_MS: '300' });
    await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok), 'readiness');
  });
  afterAll(() => pod?.stop());

  it('answers a message the bot does not answer within the timeout with an error, and sends nothing of it after', async () => {
    const c = await Client.connect(wsUrl(pod));
    await c.session();
    c.send({ type: 'message', id: 't-1', conversation: 'c', text: 'wait=5000 late' });
    expect(await c.next((f) => f.type === 'error', 'the error', 5000)).toMatchObject({ code: 'bot_error', id: 't-1', message: 'no answer within 1000 ms' });
    await waitFor(async () => /knbot_requests_total\{route="ws",code="504",bot="ws-stream"\} 1\b/.test(await metrics(pod)), 'the 504 to be counted');
    c.send({ type: 'ping' });
    await c.next((f) => f.type === 'pong', 'pong');
    expect(c.frames.map((f) => f.type)).toEqual(['session', 'ack', 'typing', 'error', 'pong']);
    c.ws.terminate();
  });

  it('on SIGTERM, answers what is still running at the drain timeout with unavailable, then closes 1001', async () => {
    const c = await Client.connect(wsUrl(pod));
    await c.session();
    c.send({ type: 'message', id: 'd-1', conversation: 'c', text: 'wait=20000 never' });
    await c.next((f) => f.type === 'typing', 'typing');
    const exit = once(pod.child, 'exit');
    pod.child.kill('SIGTERM');
    expect(await c.next((f) => f.type === 'error', 'the error')).toMatchObject({ code: 'unavailable', id: 'd-1', message: 'the bot shut down before answering' });
    expect((await c.waitClosed()).code).toBe(1001);
    expect(await exit).toEqual([0, null]);
  });
});

describe('SIGTERM', () => {
  it('lets the turn in flight answer, then closes every socket with 1001 and where it was, and exits 0', async () => {
    const pod = await startPod(fixture('ws-stream'));
    try {
      await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok), 'readiness');
      const busy = await Client.connect(wsUrl(pod));
      const idle = await Client.connect(wsUrl(pod));
      const sessionId = await busy.session();
      await idle.session();
      busy.send({ type: 'message', id: 'last', conversation: 'c', text: 'wait=2500 done' });
      await busy.next((f) => f.type === 'typing', 'typing');
      const exit = once(pod.child, 'exit');
      pod.child.kill('SIGTERM');
      await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.status === 503), 'readiness to turn 503', 5000);
      expect(await handshake(wsUrl(pod))).toMatchObject({ status: 503 });
      idle.send({ type: 'message', id: 'late', conversation: 'c2', text: 'too late' });
      expect(await idle.next((f) => f.type === 'error', 'the refusal')).toMatchObject({ code: 'unavailable', id: 'late' });

      const closed = await busy.waitClosed();
      expect(closed.code).toBe(1001);
      const reply = busy.frames.find((f) => f.type === 'reply');
      expect(reply).toMatchObject({ id: 'last', text: 'done' });
      expect(JSON.parse(closed.reason)).toEqual({ reason: 'bot shutting down', resume: { sessionId, lastSeq: reply!.seq } });
      expect((await idle.waitClosed()).code).toBe(1001);
      expect(await exit).toEqual([0, null]);
    } finally {
      await pod.stop();
    }
  });
});
