import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authenticator } from '../../gateway/auth.ts';
import { ECHO, waitFor } from '../pod.ts';
import { type ChatSystem, TestClient, startChatSystem } from './harness.ts';

// Auth, rate limits, heartbeats, slow readers, floods and shutdown, against the real gateway.

const SECRET = 'ticket-signing-secret-for-tests';
let sys: ChatSystem;

beforeAll(async () => {
  sys = await startChatSystem([{ name: 'echo', dir: ECHO }], {
    auth: { tokens: new Map([['alice-token', { id: 'alice' }]]), ticketSecret: SECRET },
    limits: { clientRate: 2, clientBurst: 3, heartbeatMs: 1000, authTimeoutMs: 500, maxBufferedBytes: 64 * 1024, maxRefusedInRow: 20 },
  });
}, 60_000);
afterAll(async () => sys?.stop());

const withToken = () => `${sys.wsUrl}?token=alice-token`;

describe('authentication', () => {
  it('refuses the upgrade for a bad token or an expired ticket, before any event', async () => {
    await expect(TestClient.connect(`${sys.wsUrl}?token=wrong`)).rejects.toThrow(/401/);
    const expired = new Authenticator({ ticketSecret: SECRET }).issue({ id: 'bob' }, 60, Date.now() - 120_000).ticket;
    await expect(TestClient.connect(`${sys.wsUrl}?ticket=${expired}`)).rejects.toThrow(/401/);
    const forged = new Authenticator({ ticketSecret: 'another-secret' }).issue({ id: 'bob' }, 60).ticket;
    await expect(TestClient.connect(`${sys.wsUrl}?ticket=${forged}`)).rejects.toThrow(/401/);
  });

  it('takes a bearer header, a ticket from POST /v1/tickets, or a first auth frame', async () => {
    const header = await TestClient.connect(sys.wsUrl, { headers: { authorization: 'Bearer alice-token' } });
    await header.session();
    header.close();
    const res = await fetch(`${sys.url}/v1/tickets`, { method: 'POST', headers: { authorization: 'Bearer alice-token' } });
    expect(res.status).toBe(201);
    const { ticket } = (await res.json()) as { ticket: string };
    const byTicket = await TestClient.connect(`${sys.wsUrl}?ticket=${ticket}`);
    await byTicket.session();
    byTicket.send({ type: 'message', id: 'auth-1', bot: 'echo', conversation: 'a', text: 'hi' });
    expect((await byTicket.next((f) => f.type === 'reply', 'reply')).text).toBe('hi');
    byTicket.close();
    const byFrame = await TestClient.connect(sys.wsUrl);
    byFrame.send({ type: 'auth', token: 'alice-token' });
    await byFrame.session();
    byFrame.close();
    expect((await fetch(`${sys.url}/v1/tickets`, { method: 'POST' })).status).toBe(401);
  });

  it('closes a socket that does not authenticate in time, or sends something else first', async () => {
    const silent = await TestClient.connect(sys.wsUrl);
    expect((await silent.waitClosed()).code).toBe(1008);
    const eager = await TestClient.connect(sys.wsUrl);
    eager.send({ type: 'message', id: 'x', bot: 'echo', conversation: 'a', text: 'hi' });
    expect((await eager.waitClosed()).code).toBe(1008);
    const bad = await TestClient.connect(sys.wsUrl);
    bad.send({ type: 'auth', token: 'nope' });
    expect((await bad.waitClosed()).code).toBe(1008);
    expect(bad.frames.filter((f) => f.type === 'session')).toHaveLength(0);
  });

  it('does not let another principal resume a session', async () => {
    const a = await TestClient.connect(withToken());
    const sessionId = await a.session();
    a.close();
    const ticket = new Authenticator({ ticketSecret: SECRET }).issue({ id: 'mallory' }, 60).ticket;
    const m = await TestClient.connect(`${sys.wsUrl}?ticket=${ticket}`);
    await m.session();
    m.send({ type: 'resume', sessionId, lastSeq: 0 });
    expect(await m.next((f) => f.type === 'error', 'error')).toMatchObject({ code: 'unknown_session' });
    m.close();
  });
});

describe('limits', () => {
  it('answers messages over the rate with rate_limited, and other clients are unaffected', async () => {
    const flood = await TestClient.connect(withToken());
    await flood.session();
    for (let i = 0; i < 8; i++) flood.send({ type: 'message', id: `f-${i}`, bot: 'echo', conversation: 'f', text: `m${i}` });
    await waitFor(() => flood.frames.filter((f) => f.type === 'ack' || (f.type === 'error' && f.code === 'rate_limited')).length === 8, 'every message answered');
    const limited = flood.frames.filter((f) => f.type === 'error' && f.code === 'rate_limited');
    expect(limited.length).toBeGreaterThanOrEqual(4);
    expect(limited[0]!.id).toMatch(/^f-/);
    const calm = await TestClient.connect(withToken());
    await calm.session();
    calm.send({ type: 'message', id: 'calm-1', bot: 'echo', conversation: 'g', text: 'fine' });
    expect((await calm.next((f) => f.type === 'reply', 'reply')).text).toBe('fine');
    flood.close();
    calm.close();
  });

  it('closes a flooding client with 1008', async () => {
    const flood = await TestClient.connect(withToken());
    await flood.session();
    for (let i = 0; i < 40; i++) flood.send({ type: 'message', id: `ff-${i}`, bot: 'echo', conversation: 'ff', text: 'x' });
    expect((await flood.waitClosed()).code).toBe(1008);
  });

  it('terminates a peer that stops answering pings', async () => {
    const c = await TestClient.connect(withToken());
    await c.session();
    const before = sys.gateway.sockets;
    // Stop reading: the client answers no ping from now on.
    (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await waitFor(() => sys.gateway.sockets < before, 'the gateway to drop the dead peer', 10_000);
  });

});

// No rate limit and a slow heartbeat here, so what is measured is the buffer bound and the parser.
describe('slow readers and random frames', () => {
  let open: ChatSystem;
  const logs: { msg: string; fields?: Record<string, unknown> }[] = [];
  beforeAll(async () => {
    open = await startChatSystem([{ name: 'echo', dir: ECHO }], { log: (msg, fields) => logs.push({ msg, fields }), limits: { clientRate: 1e6, clientBurst: 1e6, ipRate: 1e6, ipBurst: 1e6, maxRefusedInRow: 1e9, heartbeatMs: 60_000, maxBufferedBytes: 64 * 1024 } });
  }, 60_000);
  afterAll(async () => open?.stop());

  it('disconnects a reader that falls too far behind with 1013, and it can resume', async () => {
    const c = await TestClient.connect(open.wsUrl);
    const sessionId = await c.session();
    const socket = (c.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    // The client reads nothing while the bot echoes 24 MB back: replies pile up in the kernel's
    // buffers, then in the gateway's, until the bound.
    socket.pause();
    const text = 'z'.repeat(60_000);
    for (let i = 0; i < 400; i++) c.send({ type: 'message', id: `slow-${i}`, bot: 'echo', conversation: 'slow', text });
    await waitFor(() => logs.find((l) => l.msg === 'closing socket' && l.fields?.code === 1013), 'the gateway to cut the slow reader off', 30_000);
    socket.resume();
    const closed = await c.waitClosed(20_000);
    expect(closed.code).toBe(1013);
    expect(JSON.parse(closed.reason)).toMatchObject({ sessionId });
    expect(c.frames.filter((f) => f.type === 'reply').length).toBeLessThan(400);
    const again = await TestClient.connect(open.wsUrl);
    again.send({ type: 'resume', sessionId, lastSeq: c.frames.at(-1)!.seq! });
    await again.next((f) => f.type === 'session' && f.resumed === true, 'resumed', 20_000);
    again.close();
  }, 60_000);

  it('survives thousands of random frames, and other clients keep working', async () => {
    const c = await TestClient.connect(open.wsUrl);
    await c.session();
    const frame = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.json({ maxDepth: 3 }),
      fc.record({ v: fc.constantFrom(1, 2, '1', null), type: fc.constantFrom('message', 'resume', 'ping', 'auth', 'x', ''), id: fc.oneof(fc.string(), fc.integer()), bot: fc.constantFrom('echo', 'Echo', '', 'x'.repeat(70)), conversation: fc.oneof(fc.string(), fc.constant('/abs')), text: fc.oneof(fc.string(), fc.integer()), sessionId: fc.string(), lastSeq: fc.oneof(fc.integer(), fc.double()) }, { requiredKeys: [] }).map((r) => JSON.stringify(r)),
      fc.uint8Array({ maxLength: 64 }),
    );
    const samples = fc.sample(frame, 3000);
    for (const s of samples) {
      if (c.closed) break;
      if (typeof s === 'string') c.ws.send(s);
      else c.ws.send(s, { binary: true });
    }
    expect(c.closed).toBeUndefined();
    const other = await TestClient.connect(open.wsUrl);
    await other.session();
    other.send({ type: 'message', id: 'after-fuzz', bot: 'echo', conversation: 'z', text: 'alive' });
    expect((await other.next((f) => f.type === 'reply', 'reply')).text).toBe('alive');
    expect((await fetch(`${open.url}/health/liveness`)).status).toBe(200);
    await waitFor(() => c.frames.length > samples.length / 2, 'answers to the fuzz frames');
    // Every frame the fuzzer got back is a well-formed envelope frame.
    for (const f of c.frames) expect(f).toMatchObject({ v: 1, type: expect.any(String) });
    c.close();
    other.close();
  }, 60_000);
});

describe('shutdown', () => {
  it('closes sockets with 1001 and a resume hint', async () => {
    const own = await startChatSystem([{ name: 'echo', dir: ECHO }]);
    try {
      const c = await TestClient.connect(own.wsUrl);
      const sessionId = await c.session();
      c.send({ type: 'message', id: 'bye-1', bot: 'echo', conversation: 'q', text: 'last' });
      await c.next((f) => f.type === 'reply', 'reply');
      await own.gateway.close();
      const closed = await c.waitClosed();
      expect(closed.code).toBe(1001);
      expect(JSON.parse(closed.reason)).toMatchObject({ resume: { sessionId, lastSeq: c.frames.at(-1)!.seq } });
    } finally {
      await own.stop();
    }
  }, 60_000);
});
