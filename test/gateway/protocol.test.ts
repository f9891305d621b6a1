import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBinary } from '../../eventing/codec.ts';
import { ECHO, fixture, waitFor } from '../pod.ts';
import { type ChatSystem, type Frame, TestClient, startChatSystem } from './harness.ts';

let sys: ChatSystem;

beforeAll(async () => {
  sys = await startChatSystem([
    { name: 'echo', dir: ECHO },
    { name: 'stream', dir: fixture('stream') },
    { name: 'slow', dir: fixture('slow'), turnPolicy: 'reject' },
    // bot.yaml: debounce (applied by the bot's runtime).
    // A window a loaded machine cannot split a burst of two frames across.
    { name: 'turns', dir: fixture('turns'), env: { KNBOT_DEBOUNCE_MS: '1000' } },
    { name: 'buttons', dir: fixture('buttons') },
  ], { cannedReplies: (ns, event) => (ns === 'default' && event === 'hello' ? { text: 'Hi there!' } : undefined) });
}, 60_000);
afterAll(async () => sys?.stop());

const seqs = (frames: Frame[]) => frames.map((f) => f.seq);

describe('the WebSocket envelope', () => {
  it('opens with session at seq 0, then ack, typing and the reply, numbered one by one', async () => {
    const c = await TestClient.connect(sys.wsUrl);
    const sessionId = await c.session();
    expect(c.frames[0]).toEqual({ v: 1, seq: 0, type: 'session', sessionId });
    c.send({ type: 'message', id: 'e-1', bot: 'echo', conversation: 'c1', text: 'hello there' });
    const reply = await c.next((f) => f.type === 'reply', 'the reply');
    expect(reply).toMatchObject({ v: 1, type: 'reply', id: 'e-1', text: 'hello there', conversation: 'c1', bot: 'echo' });
    expect(c.frames.map((f) => f.type)).toEqual(['session', 'ack', 'typing', 'reply']);
    expect(seqs(c.frames)).toEqual([0, 1, 2, 3]);
    c.close();
  });

  it("carries a reply's buttons checked, as {label, id, value}, and leaves out buttons that are malformed", async () => {
    const c = await TestClient.connect(sys.wsUrl);
    await c.session();
    c.send({ type: 'message', id: 'b-1', bot: 'buttons', conversation: 'cb', text: 'hi' });
    const reply = await c.next((f) => f.type === 'reply' && f.id === 'b-1', 'the reply with buttons');
    expect(reply.buttons).toEqual([
      { label: 'Red', id: 'Red', value: 'Red' },
      { label: 'Green', id: 'green', value: 'Green' },
      { label: 'Blue', id: 'blue', value: '#00f' },
    ]);
    c.send({ type: 'message', id: 'b-2', bot: 'buttons', conversation: 'cb', text: 'broken' });
    const plain = await c.next((f) => f.type === 'reply' && f.id === 'b-2', 'the reply without its buttons');
    expect(plain).toMatchObject({ text: 'Pick nothing' });
    expect(plain).not.toHaveProperty('buttons');
    c.close();
  });

  it('streams a reply as chunks, in order, before the whole reply', async () => {
    const c = await TestClient.connect(sys.wsUrl);
    await c.session();
    c.send({ type: 'message', id: 's-1', bot: 'stream', conversation: 'c2', text: 'go' });
    const reply = await c.next((f) => f.type === 'reply', 'the reply');
    expect(reply.text).toBe('one two three');
    const chunks = c.frames.filter((f) => f.type === 'chunk');
    expect(chunks.length).toBeGreaterThanOrEqual(2);
    expect(chunks.map((f) => f.text).join('')).toBe('one two three');
    expect(c.frames.findIndex((f) => f.type === 'reply')).toBeGreaterThan(c.frames.findLastIndex((f) => f.type === 'chunk'));
    expect(seqs(c.frames)).toEqual(c.frames.map((_, i) => i));
    c.close();
  });

  it('acknowledges a message id seen before without sending it again', async () => {
    const c = await TestClient.connect(sys.wsUrl);
    await c.session();
    c.send({ type: 'message', id: 'dup-1', bot: 'echo', conversation: 'c3', text: 'once' });
    await c.next((f) => f.type === 'reply', 'the reply');
    c.send({ type: 'message', id: 'dup-1', bot: 'echo', conversation: 'c3', text: 'once' });
    await c.next((f) => f.type === 'ack' && f.duplicate === true, 'the second ack');
    c.send({ type: 'ping', id: 'p' });
    await c.next((f) => f.type === 'pong', 'pong');
    expect(c.frames.filter((f) => f.type === 'reply')).toHaveLength(1);
    c.close();
  });

  it('refuses an id another session already used', async () => {
    const a = await TestClient.connect(sys.wsUrl);
    const b = await TestClient.connect(sys.wsUrl);
    await Promise.all([a.session(), b.session()]);
    a.send({ type: 'message', id: 'shared-id', bot: 'echo', conversation: 'c4', text: 'a' });
    await a.next((f) => f.type === 'ack', 'ack');
    b.send({ type: 'message', id: 'shared-id', bot: 'echo', conversation: 'c4', text: 'b' });
    expect(await b.next((f) => f.type === 'error', 'error')).toMatchObject({ code: 'id_in_use', id: 'shared-id' });
    a.close();
    b.close();
  });
});

describe('resume', () => {
  it('replays what was produced while the client was away, once, after lastSeq', async () => {
    const c = await TestClient.connect(sys.wsUrl);
    const sessionId = await c.session();
    c.send({ type: 'message', id: 'r-1', bot: 'stream', conversation: 'c5', text: 'go' });
    await c.next((f) => f.type === 'ack', 'ack');
    const lastSeq = c.frames.at(-1)!.seq!;
    c.close();
    // The reply finishes with nobody connected.
    await waitFor(() => sys.broker.pending() === 0, 'the broker to deliver everything', 10_000);
    await new Promise((r) => setTimeout(r, 500));
    const d = await TestClient.connect(sys.wsUrl);
    d.send({ type: 'resume', sessionId, lastSeq });
    const resumed = await d.next((f) => f.type === 'session' && f.resumed === true, 'the resumed session frame');
    const replayed = d.frames.filter((f) => f.seq !== 0 && (f.seq ?? 0) > lastSeq && (f.seq ?? 0) < resumed.seq!);
    expect(replayed.map((f) => f.type)).toContain('reply');
    expect(replayed.filter((f) => f.type === 'reply')).toHaveLength(1);
    expect(replayed.find((f) => f.type === 'reply')!.text).toBe('one two three');
    const numbered = d.frames.filter((f) => f.seq !== 0);
    expect(seqs(numbered)).toEqual(numbered.map((_, i) => lastSeq + 1 + i));
    d.close();
  });

  it('refuses to resume an unknown session, and the socket keeps the session it was given', async () => {
    const c = await TestClient.connect(sys.wsUrl);
    const given = await c.session();
    c.send({ type: 'resume', sessionId: 'no-such-session', lastSeq: 3 });
    expect(await c.next((f) => f.type === 'error', 'error')).toMatchObject({ code: 'unknown_session' });
    c.close();
    const d = await TestClient.connect(sys.wsUrl);
    d.send({ type: 'resume', sessionId: given, lastSeq: 0 });
    expect(await d.next((f) => f.type === 'session' && f.resumed === true, 'the resumed session')).toMatchObject({ sessionId: given });
    d.close();
  });

  it('forgets the session a socket was given when its first frame resumes another', async () => {
    const a = await TestClient.connect(sys.wsUrl);
    const kept = await a.session();
    a.close();
    const b = await TestClient.connect(sys.wsUrl);
    const unused = await b.session();
    b.send({ type: 'resume', sessionId: kept, lastSeq: 0 });
    await b.next((f) => f.type === 'session' && f.resumed === true, 'the resumed session');
    b.close();
    const c = await TestClient.connect(sys.wsUrl);
    c.send({ type: 'resume', sessionId: unused, lastSeq: 0 });
    expect(await c.next((f) => f.type === 'error', 'error')).toMatchObject({ code: 'unknown_session' });
    c.close();
  });
});

describe('turn policies', () => {
  it('reject: a message while the conversation has a turn running is refused at the gateway', async () => {
    const c = await TestClient.connect(sys.wsUrl);
    await c.session();
    c.send({ type: 'message', id: 'rj-1', bot: 'slow', conversation: 'rj', text: '600' });
    await c.next((f) => f.type === 'ack' && f.id === 'rj-1', 'the first ack');
    c.send({ type: 'message', id: 'rj-2', bot: 'slow', conversation: 'rj', text: '10' });
    expect(await c.next((f) => f.type === 'error' && f.id === 'rj-2', 'the refusal')).toMatchObject({ code: 'turn_in_progress' });
    // Another conversation is not held up.
    c.send({ type: 'message', id: 'rj-3', bot: 'slow', conversation: 'other', text: '10' });
    expect((await c.next((f) => f.type === 'reply' && f.id === 'rj-3', 'the other reply')).text).toBe('slept 10');
    await c.next((f) => f.type === 'reply' && f.id === 'rj-1', 'the first reply');
    // The turn is over: the same conversation takes a message again, and the refused id may be sent again.
    c.send({ type: 'message', id: 'rj-2', bot: 'slow', conversation: 'rj', text: '10' });
    expect((await c.next((f) => f.type === 'reply' && f.id === 'rj-2', 'the retried reply')).text).toBe('slept 10');
    c.close();
  });

  it('reject: a conversation is held per user, so another user naming it is not refused', async () => {
    const c = await TestClient.connect(sys.wsUrl);
    await c.session();
    c.send({ type: 'message', id: 'rju-1', bot: 'slow', conversation: 'named', text: '2000', user: { id: 'alice' } });
    await c.next((f) => f.type === 'ack' && f.id === 'rju-1', 'alice\'s ack');
    c.send({ type: 'message', id: 'rju-2', bot: 'slow', conversation: 'named', text: '10', user: { id: 'bob' } });
    expect((await c.next((f) => (f.type === 'reply' || f.type === 'error') && f.id === 'rju-2', 'bob\'s answer')).text).toBe('slept 10');
    c.send({ type: 'message', id: 'rju-3', bot: 'slow', conversation: 'named', text: '10', user: { id: 'alice' } });
    expect(await c.next((f) => f.type === 'error' && f.id === 'rju-3', 'alice\'s refusal')).toMatchObject({ code: 'turn_in_progress' });
    await c.next((f) => f.type === 'reply' && f.id === 'rju-1', 'alice\'s first reply');
    c.close();
  });

  it('debounce: a burst is answered once, the earlier messages settled with the id that replaced them', async () => {
    const c = await TestClient.connect(sys.wsUrl);
    await c.session();
    c.send({ type: 'message', id: 'db-1', bot: 'turns', conversation: 'db', text: '0 one' });
    c.send({ type: 'message', id: 'db-2', bot: 'turns', conversation: 'db', text: '0 two' });
    const last = await c.next((f) => f.type === 'reply' && f.id === 'db-2', 'the merged reply');
    expect(last.text).toBe('got 0 one\n0 two');
    expect(await c.next((f) => f.type === 'reply' && f.id === 'db-1', 'the settled one')).toMatchObject({ text: '', skipped: 'merged', supersededBy: 'db-2' });
    c.close();
  });
});

describe('bad input', () => {
  it('answers malformed frames with error frames and keeps the socket', async () => {
    const c = await TestClient.connect(sys.wsUrl);
    await c.session();
    c.send('{not json');
    c.send({ type: 'dance' });
    c.ws.send(JSON.stringify({ v: 2, type: 'ping' }));
    c.send({ type: 'message', id: 'x', bot: 'echo', text: 'no conversation' });
    c.send({ type: 'message', id: 'y', bot: 'nobody', conversation: 'c', text: 'hi' });
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await waitFor(() => c.frames.filter((f) => f.type === 'error').length >= 6, 'six errors');
    expect(c.frames.filter((f) => f.type === 'error').map((f) => f.code)).toEqual(['malformed_json', 'unknown_type', 'unsupported_version', 'invalid_frame', 'unknown_bot', 'binary_frame']);
    c.send({ type: 'message', id: 'ok-after', bot: 'echo', conversation: 'c6', text: 'still here' });
    expect((await c.next((f) => f.type === 'reply', 'a reply')).text).toBe('still here');
    c.close();
  });

  it('closes with 1009 on an oversize frame', async () => {
    const c = await TestClient.connect(sys.wsUrl);
    await c.session();
    c.send({ type: 'message', id: 'big', bot: 'echo', conversation: 'c', text: 'x'.repeat(70 * 1024) });
    expect((await c.waitClosed()).code).toBe(1009);
  });
});

describe('POST /v1/replies/<namespace>/<event>', () => {
  it("answers a message with the Event's canned reply event, for the Broker to route back", async () => {
    const msg = encodeBinary({ specversion: '1.0', id: 'm-9', source: '/slack/T1/A1', type: 'dev.knbot.chat.message.received', subject: 'C1', chatbot: 'faq', chatplatform: 'slack', data: { text: 'hello', conversation: { id: 'C1' } } });
    const res = await fetch(`${sys.url}/v1/replies/default/hello`, { method: 'POST', headers: msg.headers, body: msg.body });
    expect(res.status).toBe(200);
    expect(res.headers.get('ce-type')).toBe('dev.knbot.chat.reply.send');
    expect(res.headers.get('ce-chatbot')).toBe('faq');
    expect(res.headers.get('ce-subject')).toBe('C1');
    expect(await res.json()).toMatchObject({ text: 'Hi there!', inReplyTo: 'm-9' });
    expect((await fetch(`${sys.url}/v1/replies/default/nope`, { method: 'POST', headers: msg.headers, body: msg.body })).status).toBe(404);
  });
});

describe('POST /v1/chat', () => {
  it('answers with the reply as JSON', async () => {
    const res = await fetch(`${sys.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ bot: 'echo', conversation: 'h1', text: 'by http' }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ text: 'by http', conversation: 'h1' });
  });

  it('streams chunks then the reply as server-sent events', async () => {
    const res = await fetch(`${sys.url}/v1/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ bot: 'stream', conversation: 'h2', text: 'go' }),
    });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const text = await res.text();
    const events = [...text.matchAll(/event: (\w+)\ndata: (.*)\n\n/g)].map((m) => ({ event: m[1], data: JSON.parse(m[2]!) }));
    expect(events.at(-1)).toMatchObject({ event: 'reply', data: { text: 'one two three' } });
    expect(events.filter((e) => e.event === 'chunk').map((e) => e.data.text).join('')).toBe('one two three');
  });

  it('streams a bot that answers in one piece as one chunk then the reply, as a pod does', async () => {
    const res = await fetch(`${sys.url}/v1/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ bot: 'echo', conversation: 'h3', text: 'all at once' }),
    });
    const events = [...(await res.text()).matchAll(/event: (\w+)\ndata: (.*)\n\n/g)].map((m) => ({ event: m[1], data: JSON.parse(m[2]!) }));
    expect(events.map((e) => e.event)).toEqual(['chunk', 'reply']);
    expect(events[0]!.data).toEqual({ text: 'all at once' });
    expect(events[1]!.data).toMatchObject({ text: 'all at once', conversation: 'h3' });
  });

  it('rejects bad bodies and unknown bots with problems', async () => {
    const post = (body: string) => fetch(`${sys.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const malformed = await post('{oops');
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { type: string }).type).toBe('urn:knbot:problem:malformed_json');
    expect((await post(JSON.stringify({ bot: 'echo', text: 'no conversation' }))).status).toBe(400);
    const unknown = await post(JSON.stringify({ bot: 'nobody', conversation: 'c', text: 'hi' }));
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { type: string }).type).toBe('urn:knbot:problem:unknown_bot');
  });
});

describe('GET /v1/stream', () => {
  /** Reads server-sent events from a streaming response as they come. */
  async function* sse(res: Response): AsyncGenerator<{ id?: string; event: string; data: Record<string, unknown> }> {
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const fields = Object.fromEntries(block.split('\n').filter((l) => !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]));
        if (fields.event) yield { id: fields.id, event: fields.event, data: JSON.parse(fields.data!) };
      }
    }
  }

  it('carries the session frames as events, and resumes from Last-Event-ID', async () => {
    const ac = new AbortController();
    const res = await fetch(`${sys.url}/v1/stream`, { signal: ac.signal });
    const events = sse(res);
    const first = (await events.next()).value!;
    expect(first.event).toBe('session');
    const sessionId = String(first.data.sessionId);
    const post = await fetch(`${sys.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sessionId, id: 'sse-1', bot: 'echo', conversation: 's1', text: 'over sse' }) });
    expect(post.status).toBe(202);
    const seen: string[] = [];
    let lastId = '';
    for await (const e of events) {
      seen.push(e.event);
      lastId = e.id ?? lastId;
      if (e.event === 'reply') {
        expect(e.data).toMatchObject({ id: 'sse-1', text: 'over sse' });
        break;
      }
    }
    expect(seen).toEqual(['ack', 'typing', 'reply']);
    expect(lastId).toBe(`${sessionId}:3`);
    ac.abort();
    // Away: a message sent meanwhile is answered into the session, and the stream picks it up.
    await fetch(`${sys.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sessionId, id: 'sse-2', bot: 'echo', conversation: 's1', text: 'while away' }) });
    // The broker settles the reply's delivery to the egress port once the gateway has appended it.
    await waitFor(() => sys.broker.pending() === 0, 'the reply to reach the session', 10_000);
    const back = new AbortController();
    const again = sse(await fetch(`${sys.url}/v1/stream`, { headers: { 'last-event-id': lastId }, signal: back.signal }));
    const replayed: string[] = [];
    for await (const e of again) {
      replayed.push(`${e.event}:${e.id ?? ''}`);
      if (e.event === 'session') break;
    }
    expect(replayed).toEqual([`ack:${sessionId}:4`, `typing:${sessionId}:5`, `reply:${sessionId}:6`, `session:${sessionId}:7`]);
    back.abort();
  });
});

describe('a message resent while the broker is still storing it', () => {
  it('is not acknowledged as a duplicate until the first attempt stored it', async () => {
    const { createServer } = await import('node:http');
    const { Gateway } = await import('../../gateway/server.ts');
    // A broker that holds the first request without answering, then takes everything.
    let held: import('node:http').ServerResponse | undefined;
    const broker = createServer((req, res) => {
      req.resume();
      if (!held) return void (held = res);
      res.writeHead(202).end();
    });
    await new Promise<void>((r) => broker.listen(0, '127.0.0.1', () => r()));
    const gateway = new Gateway({ brokerUrl: `http://127.0.0.1:${(broker.address() as { port: number }).port}/`, bots: () => [{ name: 'echo', namespace: 'default' }], auth: { open: true } });
    const { port } = await gateway.start(0);
    try {
      const c = await TestClient.connect(`ws://127.0.0.1:${port}/v1/ws`);
      await c.session();
      const message = { type: 'message', id: 'held-1', bot: 'echo', conversation: 'h', text: 'hi' };
      c.send(message);
      await waitFor(() => held, 'the broker to hold the message');
      // A second socket of the same session would see the same; here the client resends on its own.
      const d = await TestClient.connect(`ws://127.0.0.1:${port}/v1/ws`);
      d.send({ type: 'resume', sessionId: String(c.frames[0]!.sessionId), lastSeq: 0 });
      await d.next((f) => f.type === 'session' && f.resumed === true, 'resumed');
      d.send(message);
      expect(await d.next((f) => f.type === 'error' && f.id === 'held-1', 'the refusal')).toMatchObject({ code: 'unavailable' });
      expect(d.frames.some((f) => f.type === 'ack')).toBe(false);
      // The first attempt fails: nothing acknowledged, and the resend now goes through.
      held!.socket!.destroy();
      await c.next((f) => f.type === 'error' && f.id === 'held-1' && f.code === 'unavailable', 'the first attempt failing');
      d.send(message);
      expect(await d.next((f) => f.type === 'ack' && f.id === 'held-1', 'the ack')).not.toHaveProperty('duplicate');
      c.close();
      d.close();
    } finally {
      await gateway.close();
      broker.closeAllConnections();
      await new Promise<void>((r) => broker.close(() => r()));
    }
  });
});
