import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBinary } from '../../eventing/codec.ts';
import { count, metricsOf, sample } from '../metrics.ts';
import { waitFor } from '../pod.ts';
import { ROOT } from '../shared.ts';
import { type DevProcess, type DevState, startDev } from './dev-host.ts';

// `knbot dev` as users run it: real processes, scaled as Knative would, on one machine.

const FIXTURE = join(ROOT, 'test', 'fixtures', 'dev-project');
const work = mkdtempSync(join(tmpdir(), 'knbot-dev-'));
const project = join(work, 'project');
const recorded = join(work, 'recorded.txt');
cpSync(FIXTURE, project, { recursive: true });
let dev: DevProcess;

const botOf = (s: DevState, name: string) => s.bots.find((b) => b.name === name)!;
const ready = (s: DevState, name: string) => botOf(s, name).instances.filter((i) => i.state === 'ready').length;

beforeAll(async () => {
  dev = await startDev(project, join(work, 'state'), { FLAKY_DIR: work, RECORDER_FILE: recorded });
}, 60_000);
afterAll(async () => {
  await dev?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('knbot dev', () => {
  it('serves the chat page, the dashboard and metrics on one port', async () => {
    expect((await fetch(`${dev.url}/`)).headers.get('content-type')).toMatch(/html/);
    expect(await (await fetch(`${dev.url}/dashboard`)).text()).toMatch(/knbot dev/);
    expect(await (await fetch(`${dev.url}/metrics`)).text()).toMatch(/knbot_cold_start_seconds/);
  });

  it('starts a bot from zero on its first message, the message held until it is ready', async () => {
    expect(ready(await dev.state(), 'greet')).toBe(0);
    const { status, body } = await dev.chat('greet', 'world');
    expect(status).toBe(200);
    expect(body.text).toBe('hello, world');
    const s = await dev.state();
    expect(ready(s, 'greet')).toBe(1);
    expect(botOf(s, 'greet').coldStarts).toHaveLength(1);
    expect(await (await fetch(`${dev.url}/metrics`)).text()).toMatch(/knbot_cold_start_seconds_count\{bot="greet"\} 1/);
  });

  it('answers a canned reply Event without waking the bot', async () => {
    const before = botOf(await dev.state(), 'greet').coldStarts.length;
    const { body } = await dev.chat('greet', 'Ping', 'canned');
    expect(body.text).toBe('pong (canned)');
    expect(botOf(await dev.state(), 'greet').coldStarts.length).toBe(before);
  });

  it('keeps min-scale instances warm: a slow init answers without a cold start', async () => {
    await waitFor(async () => ready(await dev.state(), 'warm') === 1, 'the warm instance', 20_000);
    const { body } = await dev.chat('warm', 'quick');
    expect(body.text).toBe('warm: quick');
    // The instance had finished its init (1.5 s) before the message: no start was waited for.
    const s = await dev.state();
    expect(botOf(s, 'warm').coldStarts).toHaveLength(1);
    expect(ready(s, 'warm')).toBe(1);
  });

  it('serves the metrics of the whole host on one registry: requests by route, init durations, deliveries, the store', async () => {
    await waitFor(async () => ready(await dev.state(), 'warm') === 1, 'the warm instance', 20_000);
    const url = `${dev.url}/metrics`;
    const before = await metricsOf(url);
    for (const text of ['a', 'b', 'c']) expect((await dev.chat('greet', text, 'metered')).status).toBe(200);
    const msg = encodeBinary({ specversion: '1.0', id: 'metered-1', source: '/test', type: 'test.recorded', chatbot: 'recorder' });
    expect((await fetch(`${dev.url}/v1/events`, { method: 'POST', headers: msg.headers, body: msg.body })).status).toBe(202);
    const chats = (t: string) => count(t, 'knbot_requests_total', { route: '/v1/chat', code: '200' });
    // Each chat went through the activator to the bot, which answered with the reply (200).
    const activated = (t: string) => count(t, 'knbot_requests_total', { route: 'activator', code: '200' });
    await waitFor(async () => {
      const t = await metricsOf(url);
      return chats(t) === chats(before) + 3 && activated(t) >= activated(before) + 3;
    }, 'the three chats counted, here and at the activator');
    const after = await metricsOf(url);
    const delta = (name: string, labels: Record<string, string>) => count(after, name, labels) - count(before, name, labels);
    expect(delta('knbot_request_duration_seconds_count', { route: '/v1/chat' })).toBe(3);
    expect(delta('knbot_request_duration_seconds_count', { route: 'activator' })).toBeGreaterThanOrEqual(3);
    expect(delta('knbot_requests_total', { route: '/v1/events', code: '202' })).toBe(1);
    // Each chat is a message into the broker (its reply comes back in the delivery's response); /v1/events one more.
    expect(delta('knbot_requests_total', { route: 'ingress', code: '202' })).toBeGreaterThanOrEqual(4);
    expect(delta('knbot_events_delivered_total', { route: 'gateway-egress', result: 'delivered' })).toBeGreaterThanOrEqual(3);
    expect(delta('knbot_events_delivered_total', { route: 'ws', result: 'delivered' })).toBeGreaterThanOrEqual(3);
    // The warm bot's init takes 1.5 s, as its log lines say.
    expect(sample(after, 'knbot_init_duration_seconds_count', { bot: 'warm' })).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'knbot_init_duration_seconds_sum', { bot: 'warm' })).toBeGreaterThanOrEqual(1.4);
    expect(sample(after, 'knbot_inflight_requests', { bot: 'greet' })).toBe(0);
    expect(sample(after, 'knbot_instances', { bot: 'warm', state: 'ready' })).toBe(1);
    expect(sample(after, 'knbot_broker_pending_deliveries')).toBeGreaterThanOrEqual(0);
    expect(sample(after, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
  });

  it('scales out under load up to maxScale and not past it, then back to zero after the delay', async () => {
    let most = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const s = await dev.state();
        most = Math.max(most, botOf(s, 'busy').instances.filter((i) => i.state !== 'draining').length);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => dev.chat('busy', `job ${i}`, `load-${i}`)));
    sampling = false;
    await sampler;
    expect(answers.every((a) => a.status === 200 && String(a.body.text).startsWith('done: job'))).toBe(true);
    expect(new Set(answers.map((a) => String(a.body.text).split(' by ')[1])).size).toBe(2);
    expect(most).toBe(2);
    // Idle for scaleDownDelay (1 s here): drained back to zero, min-scale 0.
    await waitFor(async () => botOf(await dev.state(), 'busy').instances.length === 0, 'busy to scale to zero', 15_000);
    expect(ready(await dev.state(), 'warm')).toBe(1);
  }, 60_000);

  it('replaces an instance that dies mid-request, and the broker delivers the event again', async () => {
    const { status, body } = await dev.chat('flaky', 'crash once-1');
    expect(status).toBe(200);
    expect(body.text).toBe('survived once-1');
    expect(existsSync(join(work, 'once-1'))).toBe(true);
    expect(dev.output(), dev.output().slice(-3000)).toMatch(/"msg":"instance died","bot":"flaky"/);
  }, 30_000);

  it('takes any CloudEvent on POST /v1/events (202 once stored) and rejects bad ones', async () => {
    const msg = encodeBinary({ specversion: '1.0', id: 'ev-1', source: '/test', type: 'test.recorded', chatbot: 'recorder' });
    const res = await fetch(`${dev.url}/v1/events`, { method: 'POST', headers: msg.headers, body: msg.body });
    expect(res.status).toBe(202);
    await waitFor(() => existsSync(recorded) && readFileSync(recorded, 'utf8').includes('ev-1'), 'the event to be delivered');
    const notAnEvent = await fetch(`${dev.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(notAnEvent.status).toBe(415);
    const incomplete = await fetch(`${dev.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: '{"specversion":"1.0"}' });
    expect(incomplete.status).toBe(400);
    expect(((await incomplete.json()) as { detail: string }).detail).toMatch(/id|source|type/);
  });

  it('backs off a bot that cannot start, and says why', async () => {
    const msg = encodeBinary({ specversion: '1.0', id: 'br-1', source: '/test', type: 'dev.knbot.chat.message.received', chatbot: 'broken', data: { text: 'hi' } });
    expect((await fetch(`${dev.url}/v1/events`, { method: 'POST', headers: msg.headers, body: msg.body })).status).toBe(202);
    const broken = await waitFor(async () => {
      const b = botOf(await dev.state(), 'broken');
      return b.lastError ? b : undefined;
    }, 'the start failure to show', 20_000);
    expect(broken.lastError).toMatch(/BROKEN_SETTING is not set/);
    // Attempts wait 0.5 s, 1 s, 2 s, … apart: a few seconds see a handful, not a storm.
    await new Promise((r) => setTimeout(r, 3000));
    const attempts = (dev.output().match(/"msg":"instance failed to start","bot":"broken"/g) ?? []).length;
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThanOrEqual(6);
  }, 30_000);

  it('rolls a bot when its file changes, with no failed request', async () => {
    await dev.chat('greet', 'before');
    const file = join(project, 'functions', 'greet', 'index.ts');
    let failures = 0;
    let answered = 0;
    let running = true;
    const load = (async () => {
      while (running) {
        const r = await dev.chat('greet', 'x', `roll-${answered}`).catch(() => ({ status: 0, body: {} }));
        if (r.status === 200) answered++;
        else failures++;
      }
    })();
    writeFileSync(file, readFileSync(file, 'utf8').replace('`hello, ${msg.text}`', '`hi again, ${msg.text}`'));
    await waitFor(async () => (await dev.chat('greet', 'after')).body.text === 'hi again, after', 'the new revision', 30_000);
    running = false;
    await load;
    expect(failures).toBe(0);
    expect(answered).toBeGreaterThan(0);
    expect(botOf(await dev.state(), 'greet').revision).toBe('greet-00002');
  }, 60_000);
});

describe('knbot dev after kill -9', () => {
  it('delivers every acknowledged event after the whole host is killed and restarted', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'knbot-dev-kill-'));
    const file = join(dir, 'recorded.txt');
    const state = join(dir, 'state');
    let host = await startDev(project, state, { RECORDER_FILE: file, KNBOT_DEV_SCALE_DOWN_DELAY: '30s' });
    const acked: string[] = [];
    try {
      let killed = false;
      const sender = (async () => {
        for (let i = 0; i < 400 && !killed; i++) {
          const id = `k-${i}`;
          const msg = encodeBinary({ specversion: '1.0', id, source: '/kill-test', type: 'test.recorded', chatbot: 'recorder' });
          const res = await fetch(`${host.url}/v1/events`, { method: 'POST', headers: msg.headers, body: msg.body }).catch(() => undefined);
          if (res?.status === 202) acked.push(id);
        }
      })();
      await waitFor(() => acked.length >= 50, 'some events acknowledged', 20_000);
      killed = true;
      await host.killAll();
      await sender;
      host = await startDev(project, state, { RECORDER_FILE: file, KNBOT_DEV_SCALE_DOWN_DELAY: '30s' });
      await waitFor(() => {
        const seen = new Set(existsSync(file) ? readFileSync(file, 'utf8').split('\n') : []);
        return acked.every((id) => seen.has(id));
      }, 'every acknowledged event delivered', 30_000);
    } finally {
      await host.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
