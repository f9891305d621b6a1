// The local broker as a real process (`knbot broker`), with real subscribers: durability across
// kill -9, Knative's retry schedule, dead letters, reply loops, per-conversation ordering.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type BrokerRoute, brokerRoutes } from '../../eventing/broker/index.ts';
import { compileRouting, readModelYaml } from '../../eventing/model/index.ts';
import { count, metricsOf, sample } from '../metrics.ts';
import { freePort, startKnbot, waitFor } from '../pod.ts';
import { Subscriber } from '../subscriber.ts';

interface BrokerProcess {
  url: string;
  child: ChildProcess;
  output: () => string;
}

const running: (BrokerProcess | Subscriber)[] = [];
afterEach(async () => {
  for (const r of running.splice(0)) {
    if (r instanceof Subscriber) await r.close();
    else if (r.child.exitCode === null && r.child.signalCode === null) {
      r.child.kill('SIGKILL');
      await once(r.child, 'exit');
    }
  }
});

async function startBroker(stateDir: string, routes: BrokerRoute[], port?: number, extra: string[] = []): Promise<BrokerProcess> {
  const file = join(stateDir, 'routes.json');
  writeFileSync(file, JSON.stringify(routes));
  const { child, output, ready } = await startKnbot(['broker', '--state-dir', stateDir, '--routes', file, '--port', String(port ?? 0), ...extra], { ready: 'broker listening' });
  const url = `http://127.0.0.1:${ready.port}/`;
  await waitFor(() => fetch(`${url}health`).then((r) => r.ok, () => false), 'the broker to answer /health');
  const b = { url, child, output };
  running.push(b);
  return b;
}

async function subscriber(answer?: ConstructorParameters<typeof Subscriber>[0], port?: number): Promise<Subscriber> {
  const s = await new Subscriber(answer).listen(port);
  running.push(s);
  return s;
}

const post = (url: string, id: string, extra: Record<string, string> = {}, body = '{"text":"hi"}') =>
  fetch(url, {
    method: 'POST',
    headers: { 'ce-specversion': '1.0', 'ce-id': id, 'ce-source': '/test', 'ce-type': 'dev.knbot.chat.message.received', 'ce-chatbot': 'echo', 'content-type': 'application/json', ...extra },
    body,
  });

const echoRoute = (url: string, delivery?: BrokerRoute['delivery'], more: Partial<BrokerRoute> = {}): BrokerRoute => ({ id: 'echo', filters: [{ exact: { chatbot: 'echo' } }], url, ...(delivery ? { delivery } : {}), ...more });

describe('the local broker', () => {
  it('delivers every acknowledged event after kill -9 and a restart: at least once, exactly once after dedupe on source+id', async () => {
    const state = mkdtempSync(join(tmpdir(), 'knbot-broker-'));
    const subPort = await freePort();
    // The subscriber is down while events come in: they are acknowledged and wait in the store.
    const broker = await startBroker(state, [echoRoute(`http://127.0.0.1:${subPort}/`, { retry: 1000, backoffPolicy: 'linear', backoffDelay: 'PT0.05S' })]);
    const ids = Array.from({ length: 60 }, (_, i) => `evt-${i}`);
    const statuses = await Promise.all(ids.map((id) => post(broker.url, id).then((r) => r.status)));
    expect(statuses.every((s) => s === 202)).toBe(true);
    broker.child.kill('SIGKILL');
    await once(broker.child, 'exit');

    const sub = await subscriber(undefined, subPort);
    await startBroker(state, [echoRoute(sub.url, { retry: 1000, backoffPolicy: 'linear', backoffDelay: 'PT0.05S' })]);
    await waitFor(() => new Set(sub.received.map((r) => `${r.headers['ce-source']} ${r.headers['ce-id']}`)).size === ids.length, 'all 60 events', 20_000);
    const seen = new Set(sub.received.map((r) => r.headers['ce-id']));
    expect([...seen].sort()).toEqual([...ids].sort());
    // Delivered with the broker's stamps, TTL removed before the subscriber (as Knative's filter does).
    expect(sub.received[0]!.headers['ce-knativearrivaltime']).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(sub.received[0]!.headers['ce-knativebrokerttl']).toBeUndefined();
    expect(sub.received[0]!.headers.prefer).toBe('reply');
  });

  it('retries 500, 429 and 404 on the exponential schedule, then delivers', async () => {
    const codes = [500, 429, 404, 200];
    const sub = await subscriber((_, n) => ({ status: codes[n - 1] ?? 200 }));
    const broker = await startBroker(mkdtempSync(join(tmpdir(), 'knbot-broker-')), [echoRoute(sub.url, { retry: 5, backoffPolicy: 'exponential', backoffDelay: 'PT0.2S' })]);
    expect((await post(broker.url, 'r1')).status).toBe(202);
    await waitFor(() => sub.received.length === 4, 'four attempts', 10_000);
    const gaps = sub.received.slice(1).map((r, i) => r.at - sub.received[i]!.at);
    // Knative's retry client waits d, 2d, 4d before retries 1, 2, 3.
    [200, 400, 800].forEach((want, i) => {
      expect(gaps[i]).toBeGreaterThanOrEqual(want - 20);
      // Late timers on a busy machine only lengthen a gap; the lower bounds tell the backoff apart.
      expect(gaps[i]).toBeLessThan(want * 2 + 300);
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(sub.received).toHaveLength(4);
  });

  it('does not retry a 400, and dead-letters with knativeerrordest, knativeerrorcode and knativeerrordata', async () => {
    const sub = await subscriber(() => ({ status: 503, body: 'busy, go away' }));
    const bad = await subscriber(() => ({ status: 400, body: 'no' }));
    const dls = await subscriber();
    const broker = await startBroker(mkdtempSync(join(tmpdir(), 'knbot-broker-')), [
      echoRoute(sub.url, { retry: 2 }, { deadLetterUrl: dls.url }),
      { id: 'strict', filters: [{ exact: { chatbot: 'echo' } }], url: bad.url, delivery: { retry: 5 }, deadLetterUrl: dls.url },
    ]);
    expect((await post(broker.url, 'd1')).status).toBe(202);
    await waitFor(() => dls.received.length === 2, 'two dead letters', 10_000);
    expect(sub.received).toHaveLength(3);
    expect(bad.received).toHaveLength(1);
    const byDest = Object.fromEntries(dls.received.map((r) => [r.headers['ce-knativeerrordest'], r.headers]));
    expect(byDest[sub.url]).toMatchObject({ 'ce-id': 'd1', 'ce-knativeerrorcode': '503', 'ce-knativeerrordata': Buffer.from('busy, go away').toString('base64') });
    expect(byDest[bad.url]).toMatchObject({ 'ce-knativeerrorcode': '400', 'ce-knativeerrordata': Buffer.from('no').toString('base64') });
    expect(byDest[sub.url]!['ce-knativebrokerttl']).toBe('255');
  });

  it('takes a reply back in, and stops a reply loop at the TTL', async () => {
    let n = 0;
    const sub = await subscriber(() => ({
      status: 200,
      headers: { 'ce-specversion': '1.0', 'ce-id': `reply-${++n}`, 'ce-source': '/loop', 'ce-type': 'dev.knbot.chat.message.received', 'ce-chatbot': 'echo', 'content-type': 'application/json' },
      body: '{"text":"again"}',
    }));
    const broker = await startBroker(mkdtempSync(join(tmpdir(), 'knbot-broker-')), [echoRoute(sub.url)], undefined, ['--max-ttl', '5']);
    expect((await post(broker.url, 'loop-start')).status).toBe(202);
    await waitFor(() => sub.received.length >= 5, 'five hops', 10_000);
    await new Promise((r) => setTimeout(r, 500));
    // TTL 5 at ingress, one less per reply: 5 deliveries, then the spent reply is refused.
    expect(sub.received.map((r) => r.headers['ce-id'])).toEqual(['loop-start', 'reply-1', 'reply-2', 'reply-3', 'reply-4']);
  });

  it('answers an event with a spent TTL 400, and bad input with problems', async () => {
    const sub = await subscriber();
    const broker = await startBroker(mkdtempSync(join(tmpdir(), 'knbot-broker-')), [echoRoute(sub.url)]);
    expect((await post(broker.url, 't1', { 'ce-knativebrokerttl': '1' })).status).toBe(400);
    const bad = await fetch(broker.url, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: '{"id":1}' });
    expect([bad.status, ((await bad.json()) as { type: string }).type]).toEqual([400, 'urn:knbot:problem:invalid_type']);
  });

  it('keeps one conversation in order on an ordered route while others go ahead', async () => {
    const sub = await subscriber((r) => ({ status: r.headers['ce-id'] === 'a-0' ? 503 : 202 }));
    const broker = await startBroker(mkdtempSync(join(tmpdir(), 'knbot-broker-')), [
      echoRoute(sub.url, { retry: 3, backoffPolicy: 'linear', backoffDelay: 'PT0.3S' }, { ordered: true }),
    ]);
    for (const id of ['a-0', 'a-1', 'b-0', 'a-2']) expect((await post(broker.url, id, { 'ce-partitionkey': id.split('-')[0]! })).status).toBe(202);
    await waitFor(() => sub.received.filter((r) => String(r.headers['ce-id']).startsWith('a-')).length >= 6, 'conversation a', 10_000);
    const a = sub.received.filter((r) => r.headers['ce-partitionkey'] === 'a').map((r) => r.headers['ce-id']);
    // a-0 fails until its retries run out; a-1 and a-2 wait behind it, in order. b goes at once.
    expect(a).toEqual(['a-0', 'a-0', 'a-0', 'a-0', 'a-1', 'a-2']);
    const firstB = sub.received.findIndex((r) => r.headers['ce-id'] === 'b-0');
    const firstA1 = sub.received.findIndex((r) => r.headers['ce-id'] === 'a-1');
    expect(firstB).toBeLessThan(firstA1);
  });

  it('serves /metrics: ingress requests, every delivery by route and result, pending and dead deliveries', async () => {
    const ok = await subscriber();
    const seen = new Set<string>();
    // Each event fails its first attempt here, and is taken on the second.
    const flaky = await subscriber((r) => {
      const id = String(r.headers['ce-id']);
      if (seen.has(id)) return { status: 202 };
      seen.add(id);
      return { status: 500 };
    });
    const refuses = await subscriber(() => ({ status: 400 }));
    const busy = await subscriber(() => ({ status: 503 }));
    const dls = await subscriber();
    const broker = await startBroker(mkdtempSync(join(tmpdir(), 'knbot-broker-')), [
      echoRoute(ok.url),
      { id: 'flaky', filters: [{ exact: { chatbot: 'echo' } }], url: flaky.url, delivery: { retry: 3, backoffPolicy: 'linear', backoffDelay: 'PT0.05S' } },
      { id: 'strict', filters: [{ exact: { chatbot: 'echo' } }], url: refuses.url, deadLetterUrl: dls.url },
      { id: 'nowhere', filters: [{ exact: { chatbot: 'echo' } }], url: refuses.url },
      // Retried long after the test: its deliveries stay pending.
      { id: 'later', filters: [{ exact: { chatbot: 'echo' } }], url: busy.url, delivery: { retry: 5, backoffPolicy: 'exponential', backoffDelay: 'PT1H' } },
    ]);
    const metrics = () => metricsOf(`${broker.url}metrics`);
    const before = await metrics();
    expect(sample(before, 'knbot_broker_pending_deliveries')).toBe(0);
    expect(sample(before, 'process_resident_memory_bytes')).toBeGreaterThan(0);

    const n = 5;
    const statuses = await Promise.all(Array.from({ length: n }, (_, i) => post(broker.url, `m-${i}`).then((r) => r.status)));
    expect(statuses).toEqual(Array(n).fill(202));
    expect((await fetch(broker.url, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: '{"id":1}' })).status).toBe(400);
    await waitFor(() => ok.received.length === n && flaky.received.length === 2 * n && dls.received.length === n && busy.received.length === n, 'every route to have had its attempts', 10_000);
    // A subscriber has an attempt before the broker has its answer: wait for every outcome to be counted.
    const outcomes = [['echo', 'delivered'], ['flaky', 'retry'], ['flaky', 'delivered'], ['strict', 'dead-lettered'], ['strict#dls', 'delivered'], ['nowhere', 'dead'], ['later', 'retry']] as const;
    const text = await waitFor(async () => {
      const t = await metrics();
      return outcomes.every(([route, result]) => count(t, 'knbot_events_delivered_total', { route, result }) >= n) && t;
    }, 'the outcomes to be counted');
    const delivered = (route: string, result: string) => count(text, 'knbot_events_delivered_total', { route, result });
    expect(delivered('echo', 'delivered')).toBe(n);
    expect(delivered('flaky', 'retry')).toBe(n);
    expect(delivered('flaky', 'delivered')).toBe(n);
    expect(delivered('strict', 'dead-lettered')).toBe(n);
    expect(delivered('nowhere', 'dead')).toBe(n);
    expect(sample(text, 'knbot_broker_dead_deliveries')).toBe(n);
    expect(sample(text, 'knbot_broker_pending_deliveries')).toBe(n);
    expect(count(text, 'knbot_requests_total', { route: 'ingress', code: '202' })).toBe(n);
    expect(count(text, 'knbot_requests_total', { route: 'ingress', code: '400' })).toBe(1);
    expect(count(text, 'knbot_request_duration_seconds_count', { route: 'ingress' })).toBe(n + 1);
  });
});

describe('the local broker with routes compiled from the model', () => {
  it('answers an Event with a canned reply itself, without waking the bot', async () => {
    const bot = await subscriber();
    const egress = await subscriber();
    const model = readModelYaml(
      `apiVersion: knbot.dev/v1alpha1
kind: Event
metadata: { name: chat, labels: { bot: faq } }
spec: { types: [dev.knbot.chat.message.received] }
---
apiVersion: knbot.dev/v1alpha1
kind: Event
metadata: { name: hello, labels: { bot: faq } }
spec: { keywords: [hello], reply: { text: "Hi there!" } }
---
apiVersion: knbot.dev/v1alpha1
kind: EventBinding
metadata: { name: faq }
spec: { botRef: { name: faq }, eventSelector: { matchLabels: { bot: faq } } }
`,
      'model.yaml',
    );
    expect(model.errors).toEqual([]);
    const { triggers } = compileRouting({ bots: [{ name: 'faq', namespace: 'default', broker: 'default' }], events: model.events, bindings: model.bindings });
    const routes = brokerRoutes(triggers, model.events, (d) => (d.ref?.kind === 'Service' && d.ref.name === 'faq' ? bot.url : undefined));
    // The gateway's egress takes every reply.
    routes.push({ id: 'egress', filters: [{ exact: { type: 'dev.knbot.chat.reply.send' } }], url: egress.url });
    const broker = await startBroker(mkdtempSync(join(tmpdir(), 'knbot-broker-')), routes);
    const chat = (id: string, keyword?: string) =>
      post(broker.url, id, { 'ce-chatbot': 'faq', 'ce-subject': 'C1', ...(keyword ? { 'ce-chatkeyword': keyword } : {}) }, `{"text":"${keyword ?? 'question'}"}`);
    expect((await chat('k1', 'hello')).status).toBe(202);
    expect((await chat('q1')).status).toBe(202);
    await waitFor(() => egress.received.length === 1 && bot.received.length === 1, 'the canned reply and the question', 10_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(bot.received.map((r) => r.headers['ce-id'])).toEqual(['q1']);
    const reply = egress.received[0]!;
    expect(reply.headers).toMatchObject({ 'ce-type': 'dev.knbot.chat.reply.send', 'ce-subject': 'C1', 'ce-chatbot': 'faq', 'ce-source': '/knbot/broker' });
    expect(JSON.parse(reply.body)).toMatchObject({ text: 'Hi there!', inReplyTo: 'k1', conversation: { id: 'C1' } });
  });
});
