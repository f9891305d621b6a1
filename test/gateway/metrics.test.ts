// The gateway's /metrics (DESIGN §8): served in the Prometheus text format, on the egress port always
// and on the public port only where it does not face the internet; each series moves with the traffic.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPLY_SEND } from '../../eventing/chat.ts';
import { type CloudEvent, encodeBinary } from '../../eventing/codec.ts';
import { parseTokens } from '../../gateway/auth.ts';
import { Gateway } from '../../gateway/server.ts';
import { type FakePlatform, startFakeTelegram } from '../fakes/platforms.ts';
import { count, metricsOf, sample, scrape } from '../metrics.ts';
import { ECHO, startKnbot, waitFor } from '../pod.ts';
import { handshake } from '../ws-client.ts';
import { type ChatSystem, TestClient, startChatSystem } from './harness.ts';

const TELEGRAM_TOKEN = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const CHAT = '1111111';
let sys: ChatSystem;
let telegram: FakePlatform;

beforeAll(async () => {
  telegram = await startFakeTelegram(TELEGRAM_TOKEN, [CHAT]);
  sys = await startChatSystem([{ name: 'echo', dir: ECHO }], {
    channels: (bot, platform) => (bot === 'echo' && platform === 'telegram' ? { botToken: TELEGRAM_TOKEN } : undefined),
    env: { KNBOT_TELEGRAM_API_URL: telegram.url },
  });
}, 60_000);
afterAll(async () => {
  await sys?.stop();
  await telegram?.close();
});

const chat = (text: string) => fetch(`${sys.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ bot: 'echo', conversation: 'm1', text }) });

/** A bot's reply as the broker delivers it to the egress port. */
const reply = (id: string, platform: string, extra: Partial<CloudEvent> = {}): CloudEvent => ({
  specversion: '1.0',
  id,
  source: '/bots/echo',
  type: REPLY_SEND,
  subject: CHAT,
  chatbot: 'echo',
  chatplatform: platform,
  chattenant: 'default',
  datacontenttype: 'application/json',
  data: { text: `reply ${id}`, conversation: { id: CHAT }, inReplyTo: `in-${id}` },
  ...extra,
});
const toEgress = async (event: CloudEvent) => {
  const { headers, body } = encodeBinary(event);
  return (await fetch(sys.egressUrl, { method: 'POST', headers, body })).status;
};

describe("a local gateway's /metrics", () => {
  it('answers on the public port and on the egress port, in the Prometheus text format', async () => {
    for (const url of [`${sys.url}/metrics`, `${sys.egressUrl}metrics`]) {
      const text = await metricsOf(url);
      for (const family of ['knbot_requests_total', 'knbot_request_duration_seconds', 'knbot_inflight_requests', 'knbot_events_delivered_total', 'knbot_gateway_connections', 'knbot_gateway_sessions', 'knbot_platform_requests_total']) {
        expect(text).toContain(`# TYPE ${family} `);
      }
    }
  });

  it('counts requests under their route template, never the raw path', async () => {
    const before = await metricsOf(`${sys.url}/metrics`);
    for (const text of ['one', 'two', 'three']) expect((await chat(text)).status).toBe(200);
    expect((await fetch(`${sys.url}/hooks/telegram/nobody-${Date.now()}`, { method: 'POST', body: '{}' })).status).toBeGreaterThanOrEqual(400);
    expect((await fetch(`${sys.url}/no/such/path`)).status).toBe(404);
    await waitFor(async () => count(await metricsOf(`${sys.url}/metrics`), 'knbot_requests_total', { route: '/v1/chat', code: '200' }) === count(before, 'knbot_requests_total', { route: '/v1/chat', code: '200' }) + 3, 'three chats counted');
    const after = await metricsOf(`${sys.url}/metrics`);
    const delta = (name: string, labels: Record<string, string>) => count(after, name, labels) - count(before, name, labels);
    expect(delta('knbot_request_duration_seconds_count', { route: '/v1/chat' })).toBe(3);
    expect(delta('knbot_request_duration_seconds_bucket', { route: '/v1/chat', le: '+Inf' })).toBe(3);
    expect(delta('knbot_requests_total', { route: 'unmatched', code: '404' })).toBe(1);
    expect(after).toMatch(/knbot_requests_total\{route="\/hooks\/:platform\/:bot",code="4\d\d"\} [1-9]/);
    expect(after).not.toMatch(/nobody-|\/no\/such\/path/);
    // The scrapes themselves are not requests the gateway serves.
    expect(after).not.toMatch(/route="\/metrics"/);
    // The broker's deliveries of the replies to the egress port.
    expect(count(after, 'knbot_requests_total', { route: 'egress', code: '202' })).toBeGreaterThan(0);
    expect(sample(after, 'knbot_inflight_requests')).toBe(0);
  });

  it('counts what the egress port hands on: to sockets, to a platform, to nobody', async () => {
    const before = await metricsOf(`${sys.egressUrl}metrics`);
    // Replies for WebSocket sessions this gateway never had.
    const n = 4;
    const statuses = await Promise.all(Array.from({ length: n }, (_, i) => toEgress(reply(`gone-${Date.now()}-${i}`, 'ws'))));
    expect(statuses).toEqual(Array(n).fill(202));
    // Replies for a Telegram chat, through its (fake) API.
    const sent = telegram.requests.length;
    expect(await Promise.all([1, 2].map((i) => toEgress(reply(`tg-${Date.now()}-${i}`, 'telegram'))))).toEqual([202, 202]);
    // A reply whose platform is no platform, and an event that is no bot output.
    expect(await toEgress(reply(`odd-${Date.now()}`, 'carrier-pigeon'))).toBe(202);
    expect(await toEgress(reply(`other-${Date.now()}`, 'ws', { type: 'dev.knbot.something.else' }))).toBe(202);

    const after = await metricsOf(`${sys.egressUrl}metrics`);
    const delta = (name: string, labels: Record<string, string>) => count(after, name, labels) - count(before, name, labels);
    expect(delta('knbot_events_delivered_total', { route: 'ws', result: 'no_session' })).toBe(n);
    expect(delta('knbot_events_delivered_total', { route: 'telegram', result: 'delivered' })).toBe(2);
    expect(delta('knbot_events_delivered_total', { route: 'other', result: 'ignored' })).toBe(1);
    expect(delta('knbot_events_delivered_total', { route: 'ws', result: 'ignored' })).toBe(1);
    expect(telegram.requests.length - sent).toBe(2);
    expect(delta('knbot_platform_requests_total', { platform: 'telegram', result: 'ok' })).toBe(2);
    expect(after).not.toContain('carrier-pigeon');
  });

  it('counts a reply a socket got, and the open connections by transport', async () => {
    const before = await metricsOf(`${sys.url}/metrics`);
    const a = await TestClient.connect(sys.wsUrl);
    const b = await TestClient.connect(sys.wsUrl);
    await Promise.all([a.session(), b.session()]);
    const stream = new AbortController();
    const sse = await fetch(`${sys.url}/v1/stream`, { signal: stream.signal });
    expect(sse.status).toBe(200);
    let text = await metricsOf(`${sys.url}/metrics`);
    expect(sample(text, 'knbot_gateway_connections', { transport: 'ws' })).toBe(2);
    expect(sample(text, 'knbot_gateway_connections', { transport: 'sse' })).toBe(1);
    // The open stream is a request in flight.
    expect(sample(text, 'knbot_inflight_requests')).toBe(1);
    expect(sample(text, 'knbot_gateway_sessions')).toBeGreaterThanOrEqual(3);

    a.send({ type: 'message', id: `m-${Date.now()}`, bot: 'echo', conversation: 'sock', text: 'hello' });
    await a.next((f) => f.type === 'reply', 'the reply');
    text = await metricsOf(`${sys.url}/metrics`);
    expect(count(text, 'knbot_events_delivered_total', { route: 'ws', result: 'delivered' })).toBeGreaterThan(count(before, 'knbot_events_delivered_total', { route: 'ws', result: 'delivered' }));

    a.close();
    b.close();
    stream.abort();
    await waitFor(async () => {
      const t = await metricsOf(`${sys.url}/metrics`);
      return sample(t, 'knbot_gateway_connections', { transport: 'ws' }) === 0 && sample(t, 'knbot_gateway_connections', { transport: 'sse' }) === 0 && sample(t, 'knbot_inflight_requests') === 0;
    }, 'the connections to close');
    expect(count(await metricsOf(`${sys.url}/metrics`), 'knbot_requests_total', { route: '/v1/stream', code: '200' })).toBe(count(before, 'knbot_requests_total', { route: '/v1/stream', code: '200' }) + 1);
  });
});

describe('a gateway that asks clients who they are', () => {
  it('keeps /metrics off its public port unless told otherwise', async () => {
    const make = (metrics?: { public: boolean }) => new Gateway({ brokerUrl: 'http://127.0.0.1:9/', bots: () => [], auth: { tokens: parseTokens('t=u') }, ...(metrics ? { metrics } : {}) });
    for (const [gateway, publicStatus] of [[make(), 404], [make({ public: true }), 200]] as const) {
      const { port, egressPort } = await gateway.start(0);
      try {
        expect((await scrape(`http://127.0.0.1:${port}/metrics`)).status).toBe(publicStatus);
        expect((await scrape(`http://127.0.0.1:${egressPort}/metrics`)).status).toBe(200);
      } finally {
        await gateway.close();
      }
    }
  });
});

describe('a gateway with KNBOT_METRICS_TOKEN', () => {
  it('answers /metrics on either port only to a scrape bearing the token', async () => {
    const gateway = new Gateway({ brokerUrl: 'http://127.0.0.1:9/', bots: () => [], auth: { tokens: parseTokens('t=u') }, metrics: { public: true, token: 'scrape-secret' } });
    const { port, egressPort } = await gateway.start(0);
    try {
      for (const url of [`http://127.0.0.1:${port}/metrics`, `http://127.0.0.1:${egressPort}/metrics`]) {
        const bare = await fetch(url);
        expect([bare.status, bare.headers.get('www-authenticate'), ((await bare.json()) as { type: string }).type]).toEqual([401, 'Bearer', 'urn:knbot:problem:unauthorized']);
        expect((await fetch(url, { headers: { authorization: 'Bearer scrape-secreT' } })).status).toBe(401);
        // A client's token is not the scrape token, and a query string is not a header.
        expect((await fetch(url, { headers: { authorization: 'Bearer t' } })).status).toBe(401);
        expect((await fetch(`${url}?token=scrape-secret`)).status).toBe(401);
        const ok = await fetch(url, { headers: { authorization: 'Bearer scrape-secret' } });
        expect(ok.status).toBe(200);
        expect(await ok.text()).toContain('# TYPE knbot_requests_total ');
      }
    } finally {
      await gateway.close();
    }
  });
});

describe('WebSocket handshakes', () => {
  it('are counted in knbot_requests_total by how they ended, and refused ones answered with problems', async () => {
    const gateway = new Gateway({ brokerUrl: 'http://127.0.0.1:9/', bots: () => [], auth: { tokens: parseTokens('t=u') } });
    const { port, egressPort } = await gateway.start(0);
    try {
      const ws = `http://127.0.0.1:${port}/v1/ws`;
      expect(await handshake(`${ws}?token=t`)).toEqual({ status: 101 });
      expect(await handshake(`${ws}?token=wrong`)).toMatchObject({ status: 401, body: { type: 'urn:knbot:problem:unauthorized', status: 401 } });
      expect(await handshake(`${ws}?token=t`, { 'sec-websocket-key': 'not a key' })).toMatchObject({ status: 400, body: { type: 'urn:knbot:problem:bad_handshake', detail: expect.stringMatching(/Sec-WebSocket-Key/) } });
      expect(await handshake(`http://127.0.0.1:${port}/v1/nowhere-${Date.now()}`)).toMatchObject({ status: 404, body: { status: 404 } });
      const text = await metricsOf(`http://127.0.0.1:${egressPort}/metrics`);
      expect(count(text, 'knbot_requests_total', { route: '/v1/ws', code: '101' })).toBe(1);
      expect(count(text, 'knbot_requests_total', { route: '/v1/ws', code: '401' })).toBe(1);
      expect(count(text, 'knbot_requests_total', { route: '/v1/ws', code: '400' })).toBe(1);
      expect(count(text, 'knbot_requests_total', { route: 'unmatched', code: '404' })).toBe(1);
      expect(text).not.toContain('nowhere-');
      expect(sample(text, 'knbot_inflight_requests')).toBe(0);
    } finally {
      await gateway.close();
    }
  });
});

describe('knbot gateway', () => {
  let child: ChildProcess | undefined;
  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });

  it("serves its metrics and Node's process metrics on the egress port only", async () => {
    const gateway = await startKnbot(['gateway', '--bots', 'echo', '--broker', 'http://127.0.0.1:9/', '--port', '0', '--egress-port', '0', '--host', '127.0.0.1'], {
      ready: 'gateway listening',
      env: { KNBOT_GATEWAY_TOKENS: 'secret=alice' },
    });
    child = gateway.child;
    const { port, egressPort } = gateway.ready;
    expect((await scrape(`http://127.0.0.1:${port}/metrics`)).status).toBe(404);
    const bots = await fetch(`http://127.0.0.1:${port}/v1/bots`, { headers: { authorization: 'Bearer secret' } });
    expect(bots.status).toBe(200);
    const text = await metricsOf(`http://127.0.0.1:${egressPort}/metrics`);
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
    expect(count(text, 'knbot_requests_total', { route: '/v1/bots', code: '200' })).toBe(1);
  });
});
