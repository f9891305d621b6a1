import { createServer, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ECHO, type Pod, chatHeaders, fixture, jsonOf, startPod, waitFor } from '../pod.ts';
import { ROOT } from '../shared.ts';

const chat = (text: string, id = 'm1', extra: Record<string, string> = {}) => ({ method: 'POST', headers: chatHeaders(id, extra), body: JSON.stringify({ text }) });

describe('the echo bot over HTTP', () => {
  let pod: Pod;
  beforeAll(async () => {
    pod = await startPod(ECHO);
    await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok), 'readiness');
  });
  afterAll(() => pod.stop());

  it('answers a binary-mode chat message with a binary-mode reply event', async () => {
    const res = await fetch(`${pod.url}/`, chat('hello there', 'm1', { 'ce-subject': 'C1/T9', 'ce-chatbot': 'echo', 'ce-chatplatform': 'slack', 'ce-chattenant': 'T1' }));
    expect(res.status).toBe(200);
    const h = Object.fromEntries(res.headers);
    expect(h).toMatchObject({
      'ce-specversion': '1.0', 'ce-type': 'dev.knbot.chat.reply.send', 'ce-source': '/bots/echo', 'ce-subject': 'C1/T9',
      'ce-chatbot': 'echo', 'ce-chatplatform': 'slack', 'ce-chattenant': 'T1', 'content-type': 'application/json',
    });
    expect(h['ce-id']).not.toBe('m1');
    const body = await res.text();
    expect(JSON.parse(body)).toEqual({ text: 'hello there', conversation: { id: 'C1', thread: 'T9' }, inReplyTo: 'm1' });
    // A sized reply, not a chunked one.
    expect([h['content-length'], h['transfer-encoding']]).toEqual([String(Buffer.byteLength(body)), undefined]);
  });

  it('answers a structured-mode message too, and a batch with a batch', async () => {
    const ev = (id: string, text: string) => ({ specversion: '1.0', id, source: '/s', type: 'dev.knbot.chat.message.received', subject: 'c', data: { text } });
    const one = await fetch(`${pod.url}/`, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json; charset=utf-8' }, body: JSON.stringify(ev('s1', 'structured')) });
    expect([one.status, one.headers.get('ce-type'), (await jsonOf(one)).text]).toEqual([200, 'dev.knbot.chat.reply.send', 'structured']);
    const batch = await fetch(`${pod.url}/`, { method: 'POST', headers: { 'content-type': 'application/cloudevents-batch+json' }, body: JSON.stringify([ev('b1', 'first'), ev('b2', 'second')]) });
    expect(batch.headers.get('content-type')).toBe('application/cloudevents-batch+json; charset=utf-8');
    const replies = (await jsonOf(batch)) as { data: { text: string; inReplyTo: string } }[];
    expect(replies.map((r) => [r.data.text, r.data.inReplyTo])).toEqual([['first', 'b1'], ['second', 'b2']]);
  });

  it('answers 202 with no body to an event the bot does not reply to', async () => {
    const res = await fetch(`${pod.url}/`, { method: 'POST', headers: { ...chatHeaders('x'), 'ce-type': 'com.example.other' }, body: '{}' });
    expect([res.status, await res.text()]).toEqual([202, '']);
  });

  it('serves /v1/chat as JSON and as server-sent events', async () => {
    const json = await fetch(`${pod.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ conversation: 'c1', text: 'hi', user: 'u1' }) });
    expect(await jsonOf(json)).toMatchObject({ conversation: 'c1', text: 'hi' });
    const sse = await fetch(`${pod.url}/v1/chat`, { method: 'POST', headers: { accept: 'text/event-stream' }, body: JSON.stringify({ conversation: 'c1', text: 'streamed' }) });
    expect(sse.headers.get('content-type')).toBe('text/event-stream');
    expect(await sse.text()).toMatch(/^event: chunk\ndata: {"text":"streamed"}\n\nevent: reply\ndata: {"text":"streamed","conversation":"c1","inReplyTo":"[^"]+"}\n\n$/);
  });

  it('serves health and Prometheus metrics with knbot and process metrics', async () => {
    expect((await fetch(`${pod.url}/health/liveness`)).status).toBe(200);
    const text = await (await fetch(`${pod.url}/metrics`)).text();
    expect(text).toMatch(/knbot_requests_total\{route="event",code="200",bot="echo"\} [1-9]/);
    expect(text).toMatch(/knbot_request_duration_seconds_bucket\{(?=[^}]*le="\+Inf")(?=[^}]*route="event")(?=[^}]*bot="echo")[^}]*\} [1-9]/);
    expect(text).toMatch(/knbot_request_duration_seconds_count\{route="event",bot="echo"\} [1-9]/);
    // One cold start, observed once however often it is scraped.
    expect(text).toMatch(/^knbot_cold_start_seconds_count\{bot="echo"\} 1$/m);
    expect(Number(/^knbot_cold_start_seconds_sum\{bot="echo"\} (\S+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(await (await fetch(`${pod.url}/metrics`)).text()).toMatch(/^knbot_cold_start_seconds_count\{bot="echo"\} 1$/m);
    expect(text).toContain('knbot_inflight_requests{bot="echo"}');
    expect(text).toMatch(/^knbot_init_duration_seconds_count\{bot="echo"\} 1$/m);
    expect(text).toMatch(/process_resident_memory_bytes\{bot="echo"\} \d+/);
  });

  it.each([
    ['malformed JSON data', chatHeaders(), '{"text":', 400, 'invalid_data'],
    ['a missing specversion', { ...chatHeaders(), 'ce-specversion': undefined }, '{}', 400, 'missing_attribute'],
    ['an unknown specversion', { ...chatHeaders(), 'ce-specversion': '0.3' }, '{}', 400, 'unsupported_specversion'],
    ['a bad attribute type', { ...chatHeaders(), 'ce-time': 'yesterday' }, '{}', 400, 'invalid_value'],
    ['an invalid extension name', { ...chatHeaders(), 'ce-not_valid': 'x' }, '{}', 400, 'invalid_extension_name'],
    ['an empty body', {}, '', 400, 'empty_body'],
    ['a wrong content type', { 'content-type': 'text/html' }, '<p>hi</p>', 415, 'not_cloudevent'],
    ['a structured body that is not JSON', { 'content-type': 'application/cloudevents+json' }, '{]', 400, 'malformed_json'],
    ['a chat message without text', chatHeaders(), '{"txt":"x"}', 400, 'invalid_chat_message'],
  ])('answers %s with a problem body, and keeps serving', async (_, headers, body, status, code) => {
    const res = await fetch(`${pod.url}/`, { method: 'POST', headers: JSON.parse(JSON.stringify(headers)), body });
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(await jsonOf(res)).toMatchObject({ type: `urn:knbot:problem:${code}`, title: expect.any(String), status, detail: expect.any(String) });
    expect((await fetch(`${pod.url}/`, chat('still up'))).status).toBe(200);
  });

  it('logs a bad request once, without its text', async () => {
    const before = pod.logs().length;
    await fetch(`${pod.url}/`, { method: 'POST', headers: { ...chatHeaders('secret-id'), 'ce-time': 'nope' }, body: '{"text":"my secret message"}' });
    await waitFor(() => pod.logs().length > before, 'a log line');
    const lines = pod.logs().slice(before);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'warn', code: 'invalid_value', status: 400 });
    expect(pod.output()).not.toContain('my secret message');
  });

  it('answers 404 and 405 with problems', async () => {
    expect((await fetch(`${pod.url}/nope`)).status).toBe(404);
    const res = await fetch(`${pod.url}/`);
    expect([res.status, res.headers.get('allow')]).toEqual([405, 'POST']);
  });
});

describe('limits', () => {
  let pod: Pod;
  beforeAll(async () => {
    pod = await startPod(fixture('slow'), { KNBOT_MAX_BODY_BYTES: '1000', KNBOT_BODY_TIMEOUT_MS: '300', KNBOT_CONTAINER_CONCURRENCY: '2' });
    await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok), 'readiness');
  });
  afterAll(() => pod.stop());

  it('answers a body past the limit with 413, declared or streamed', async () => {
    const big = JSON.stringify({ text: 'x'.repeat(2000) });
    const declared = await fetch(`${pod.url}/`, { method: 'POST', headers: chatHeaders(), body: big });
    expect([declared.status, (await jsonOf(declared)).type]).toEqual([413, 'urn:knbot:problem:body_too_large']);
    const streamed = await fetch(`${pod.url}/`, {
      method: 'POST',
      headers: chatHeaders(),
      body: new ReadableStream({ start: (c) => { c.enqueue(new TextEncoder().encode(big)); c.close(); } }),
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(413);
  });

  it('answers a client that sends its body too slowly with 408', async () => {
    const socket = connect(pod.port, '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => (answer += d));
    socket.write(`POST / HTTP/1.1\r\nhost: x\r\nce-specversion: 1.0\r\nce-id: 1\r\nce-source: /s\r\nce-type: t\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"te`);
    await waitFor(() => answer.includes('\r\n\r\n{'), 'an answer', 5000);
    socket.destroy();
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('"type":"urn:knbot:problem:body_timeout"');
  });

  it('answers a malformed HTTP request with 400 and a problem', async () => {
    const socket = connect(pod.port, '127.0.0.1');
    let answer = '';
    socket.on('data', (d) => (answer += d));
    socket.write('POST / HTTP/1.1\r\nhost: x\r\nbad header line\r\n\r\n');
    await waitFor(() => answer.includes('}'), 'an answer', 5000);
    socket.destroy();
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('"type":"urn:knbot:problem:bad_http"');
  });

  it('answers a turn past the revision timeout with 504', async () => {
    const timed = await startPod(fixture('slow'), { KNBOT_TIMEOUT_SECONDS: '1' });
    try {
      await waitFor(() => fetch(`${timed.url}/health/readiness`).then((r) => r.ok), 'readiness');
      const t0 = Date.now();
      const res = await fetch(`${timed.url}/`, chat('5000'));
      expect([res.status, (await jsonOf(res)).type]).toEqual([504, 'urn:knbot:problem:timeout']);
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      await timed.stop();
    }
  });

  it('answers past the concurrency limit with 503 and Retry-After', async () => {
    const slow = [fetch(`${pod.url}/`, chat('3000', 'a')), fetch(`${pod.url}/`, chat('3000', 'b'))];
    await waitFor(async () => /knbot_inflight_requests\{bot="slow"\} 2/.test(await (await fetch(`${pod.url}/metrics`)).text()), 'two in flight');
    const over = await fetch(`${pod.url}/`, chat('1', 'c'));
    expect([over.status, over.headers.get('retry-after'), (await jsonOf(over)).type]).toEqual([503, '1', 'urn:knbot:problem:overloaded']);
    expect((await Promise.all(slow)).map((r) => r.status)).toEqual([200, 200]);
  });
});

describe('the bot API', () => {
  let pod: Pod;
  let sink: ReturnType<typeof createServer>;
  const received: { headers: IncomingMessage['headers']; body: string }[] = [];
  beforeAll(async () => {
    sink = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d)).on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(202).end();
      });
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    const sinkUrl = `http://127.0.0.1:${(sink.address() as { port: number }).port}/`;
    pod = await startPod(fixture('kitchen'), { K_SINK: sinkUrl, K_CE_OVERRIDES: '{"extensions":{"origin":"kitchen-pod"}}', K_REVISION: 'kitchen-00001' });
    await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok), 'readiness');
  });
  afterAll(async () => {
    await pod.stop();
    sink.close();
  });

  const say = async (text: string, conversation = 'c1') => {
    const res = await fetch(`${pod.url}/v1/chat`, { method: 'POST', body: JSON.stringify({ conversation, text }) });
    return { status: res.status, body: await jsonOf(res) };
  };

  it('keeps session state per conversation across turns', async () => {
    expect((await say('x', 'session-a')).body).toMatchObject({ text: 'count 1', buttons: ['a', 'b'] });
    expect((await say('x', 'session-a')).body.text).toBe('count 2');
    expect((await say('x', 'session-b')).body.text).toBe('count 1');
  });

  it('serializes the turns of one conversation', async () => {
    const texts = await Promise.all(Array.from({ length: 10 }, () => say('x', 'serial').then((r) => r.body.text as string)));
    expect(texts.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `count ${i + 1}`).sort());
  });

  it("exposes the bot's own metrics on the pod's /metrics", async () => {
    await say('x', 'metrics');
    expect(await (await fetch(`${pod.url}/metrics`)).text()).toMatch(/kitchen_turns_total\{bot="kitchen"\} [1-9]/);
  });

  it('gives the bot its bot.yaml config and run.envs', async () => {
    expect((await say('config')).body.text).toBe('hello from bot.yaml');
    expect((await say('env')).body.text).toBe('set');
  });

  it('emits to K_SINK with K_CE_OVERRIDES and continues the incoming trace', async () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const res = await fetch(`${pod.url}/`, chat('emit', 'e1', { traceparent }));
    expect(res.status).toBe(200);
    const got = await waitFor(() => received.find((r) => r.headers['ce-type'] === 'test.emitted'), 'the emitted event');
    expect(got.headers).toMatchObject({ 'ce-specversion': '1.0', 'ce-source': '/bots/kitchen', 'ce-origin': 'kitchen-pod', 'content-type': 'application/json' });
    expect(got.headers['ce-traceparent']).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(JSON.parse(got.body)).toEqual({ from: 'e1' });
    expect(await (await fetch(`${pod.url}/metrics`)).text()).toMatch(/knbot_events_delivered_total\{result="ok",bot="kitchen"\} 1/);
  });

  it('answers a button pressed (chat.action.invoked) with onMessage, in the conversation', async () => {
    const press = (action: unknown) =>
      fetch(`${pod.url}/`, {
        method: 'POST',
        headers: chatHeaders('p1', { 'ce-type': 'dev.knbot.chat.action.invoked', 'ce-subject': 'C7' }),
        body: JSON.stringify({ text: 'Yes please', conversation: { id: 'C7' }, action }),
      });
    const res = await press({ type: 'button', id: 'yes', value: 'Yes please' });
    expect([res.status, res.headers.get('ce-type'), res.headers.get('ce-subject')]).toEqual([200, 'dev.knbot.chat.reply.send', 'C7']);
    expect(await jsonOf(res)).toMatchObject({ text: 'pressed yes (Yes please)', inReplyTo: 'p1' });
    const bad = await press({ type: 'button' });
    expect([bad.status, (await jsonOf(bad)).type]).toEqual([400, 'urn:knbot:problem:invalid_chat_message']);
  });

  it('shows the bot typing where the message came from, through K_SINK, with ctx.typing()', async () => {
    const extra = { 'ce-chatbot': 'kitchen', 'ce-chatplatform': 'telegram', 'ce-chattenant': 'bot1', 'ce-subject': '1111111' };
    const res = await fetch(`${pod.url}/`, { method: 'POST', headers: chatHeaders('t1', extra), body: JSON.stringify({ text: 'typing', conversation: { id: '1111111' } }) });
    expect(res.status).toBe(200);
    const got = await waitFor(() => received.find((r) => r.headers['ce-type'] === 'dev.knbot.chat.typing.start'), 'the typing event');
    expect(got.headers).toMatchObject({ 'ce-chatbot': 'kitchen', 'ce-chatplatform': 'telegram', 'ce-chattenant': 'bot1', 'ce-subject': '1111111', 'ce-source': '/bots/kitchen' });
    expect(JSON.parse(got.body)).toEqual({ conversation: { id: '1111111' }, inReplyTo: 't1' });
    // A turn that did not come as a chat event has nowhere to show it.
    const before = received.length;
    expect((await say('typing', 'no-event')).body.text).toBe('typed');
    expect(received.slice(before).some((r) => r.headers['ce-type'] === 'dev.knbot.chat.typing.start')).toBe(false);
  });

  it('ties what the bot logs to the trace of its turn, and to the Knative revision', async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    expect((await fetch(`${pod.url}/`, chat('log', 'l1', { traceparent }))).status).toBe(200);
    const line = await waitFor(() => pod.logs().find((l) => l.msg === 'kitchen turn'), 'the bot\'s log line');
    expect(line).toMatchObject({ level: 'info', bot: 'kitchen', revision: 'kitchen-00001', trace_id: '0af7651916cd43dd8448eb211c80319c', n: expect.any(Number) });
    expect(line.span_id).toMatch(/^[0-9a-f]{16}$/);
    // Without a trace coming in, there is none to name.
    expect((await say('log', 'l2')).status).toBe(200);
    await waitFor(() => pod.logs().filter((l) => l.msg === 'kitchen turn').length === 2, 'the second line');
    expect(pod.logs().filter((l) => l.msg === 'kitchen turn')[1]).not.toHaveProperty('trace_id');
  });

  it('answers 500 with a problem when the bot throws, and logs it', async () => {
    const res = await fetch(`${pod.url}/`, chat('boom', 'b1'));
    expect([res.status, (await jsonOf(res)).type]).toEqual([500, 'urn:knbot:problem:bot_error']);
    await waitFor(() => pod.logs().some((l) => l.msg === 'bot failed'), 'the error log');
  });

  it('routes other events to onEvent: an event, data, or nothing', async () => {
    const ev = (type: string) => ({ method: 'POST', headers: { ...chatHeaders('o1'), 'ce-type': type, 'ce-subject': 'sub' }, body: '{"n":1}' });
    const pong = await fetch(`${pod.url}/`, ev('test.ping'));
    expect([pong.status, pong.headers.get('ce-type'), pong.headers.get('ce-source'), await jsonOf(pong)]).toEqual([200, 'test.pong', '/kitchen', { n: 1 }]);
    const data = await fetch(`${pod.url}/`, ev('test.data'));
    expect([data.headers.get('ce-type'), data.headers.get('ce-subject'), await jsonOf(data)]).toEqual(['dev.knbot.event.reply', 'sub', { echoed: { n: 1 } }]);
    expect((await fetch(`${pod.url}/`, ev('test.nothing'))).status).toBe(202);
  });
});

describe('tracing with an OpenTelemetry SDK registered', () => {
  it('makes a server span under the incoming traceparent, parents the bot\'s spans on it, and propagates it', async () => {
    const spans = join(mkdtempSync(join(tmpdir(), 'knbot-spans-')), 'spans.jsonl');
    const events: IncomingMessage['headers'][] = [];
    const sink = createServer((req, res) => void req.resume().on('end', () => (events.push(req.headers), res.writeHead(202).end())));
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    const pod = await startPod(fixture('kitchen'), {
      NODE_OPTIONS: `--import ${join(ROOT, 'test', 'fixtures', 'otel-setup.mjs')}`,
      KNBOT_TEST_SPANS: spans,
      K_SINK: `http://127.0.0.1:${(sink.address() as { port: number }).port}/`,
    });
    try {
      await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok), 'readiness');
      const res = await fetch(`${pod.url}/`, chat('emit', 't1', { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' }));
      expect(res.status).toBe(200);
      const lines = await waitFor(() => {
        const text = existsSync(spans) ? readFileSync(spans, 'utf8') : '';
        const all = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
        return all.length >= 2 && all;
      }, 'two spans');
      const server = lines.find((l) => l.name === 'dev.knbot.chat.message.received')!;
      expect(server).toMatchObject({ kind: 1, traceId: '0af7651916cd43dd8448eb211c80319c', parentSpanId: 'b7ad6b7169203331', attributes: { 'knbot.bot': 'kitchen' } });
      expect(lines.find((l) => l.name === 'kitchen.emit')).toMatchObject({ traceId: server.traceId, parentSpanId: server.spanId });
      expect(events[0]!['ce-traceparent']).toBe(`00-0af7651916cd43dd8448eb211c80319c-${server.spanId}-01`);
    } finally {
      await pod.stop();
      sink.close();
    }
  });
});

describe('streaming', () => {
  let pod: Pod;
  beforeAll(async () => {
    pod = await startPod(fixture('stream'));
    await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok), 'readiness');
  });
  afterAll(() => pod.stop());

  it('sends each chunk as it is produced, then the whole reply', async () => {
    const res = await fetch(`${pod.url}/v1/chat`, { method: 'POST', headers: { accept: 'text/event-stream' }, body: JSON.stringify({ conversation: 'c', text: 'go' }) });
    const reader = res.body!.getReader();
    const arrivals: [number, string][] = [];
    const t0 = Date.now();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arrivals.push([Date.now() - t0, new TextDecoder().decode(value)]);
    }
    const all = arrivals.map((a) => a[1]).join('');
    expect(all.match(/event: chunk\ndata: (.*)\n/g)!.map((l) => JSON.parse(l.split('data: ')[1]!).text)).toEqual(['one ', 'two ', 'three']);
    expect(all).toMatch(/event: reply\ndata: {"text":"one two three",/);
    // The first chunk arrived well before the end: it was streamed, not buffered.
    expect(arrivals.length).toBeGreaterThan(2);
    expect(arrivals.at(-1)![0] - arrivals[0]![0]).toBeGreaterThan(150);
  });

  it('collects the stream into one reply event for CloudEvent callers', async () => {
    const res = await fetch(`${pod.url}/`, chat('go'));
    expect((await jsonOf(res)).text).toBe('one two three');
  });
});

describe('readiness is gated on init', () => {
  it('answers 503 on readiness and work until init is done, liveness 200 throughout', async () => {
    const gate = join(mkdtempSync(join(tmpdir(), 'knbot-gate-')), 'open');
    const pod = await startPod(fixture('gated'), { GATE_FILE: gate });
    try {
      expect((await fetch(`${pod.url}/health/readiness`)).status).toBe(503);
      expect((await fetch(`${pod.url}/health/liveness`)).status).toBe(200);
      expect((await fetch(`${pod.url}/`, chat('early'))).status).toBe(503);
      writeFileSync(gate, '');
      await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.status === 200), 'readiness after init');
      expect((await fetch(`${pod.url}/`, chat('late'))).status).toBe(200);
    } finally {
      await pod.stop();
    }
  });
});

describe('Knative func modules run unchanged', () => {
  it('handle(context, cloudevent) returning a CloudEvent (CommonJS, cloudevents SDK)', async () => {
    const pod = await startPod(fixture('func-event'));
    try {
      await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok), 'readiness');
      const res = await fetch(`${pod.url}/`, { method: 'POST', headers: { ...chatHeaders('f1'), 'ce-type': 'com.example.in' }, body: '{"a":1}' });
      expect([res.status, res.headers.get('ce-type'), res.headers.get('ce-source')]).toEqual([200, 'func.reply', '/func-event']);
      expect(await jsonOf(res)).toEqual({ got: { a: 1 }, type: 'com.example.in', isCloudEvent: true });
      const http = await fetch(`${pod.url}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"plain":true}' });
      expect(await jsonOf(http)).toEqual({ message: 'no cloudevent', got: { plain: true } });
    } finally {
      await pod.stop();
    }
  });

  it('handle(context, body) for HTTP (TypeScript, named export, init)', async () => {
    const pod = await startPod(fixture('func-http'));
    try {
      await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok), 'readiness');
      const res = await fetch(`${pod.url}/?name=kn`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"b":2}' });
      expect([res.status, res.headers.get('x-func')]).toEqual([201, 'yes']);
      expect(await jsonOf(res)).toEqual({ query: { name: 'kn' }, body: { b: 2 }, started: true, method: 'POST' });
      expect((await fetch(`${pod.url}/anything`)).status).toBe(204);
    } finally {
      await pod.stop();
    }
  });
});
