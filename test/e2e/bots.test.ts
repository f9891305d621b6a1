// The project's own bots through `knbot dev` (what `npm start` runs), as real processes: no model is
// configured, so knbot dev starts the fake one. Every process registers an OpenTelemetry SDK whose spans
// go to one file (test/fixtures/otel-setup.mjs), so one user turn can be followed across them.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DevProcess, type DevState, startDev } from '../cli/dev-host.ts';
import { waitFor } from '../pod.ts';
import { ROOT } from '../shared.ts';

const work = mkdtempSync(join(tmpdir(), 'knbot-e2e-bots-'));
const spansFile = join(work, 'spans.jsonl');
let dev: DevProcess;
let fakeUrl: string;

interface SpanLine {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  attributes: Record<string, unknown>;
}

const spans = (): SpanLine[] => (existsSync(spansFile) ? readFileSync(spansFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as SpanLine) : []);
const botOf = (s: DevState, name: string) => s.bots.find((b) => b.name === name)!;

beforeAll(async () => {
  dev = await startDev(ROOT, join(work, 'state'), {
    // No model configured, whatever the machine's environment says.
    OPENAI_BASE_URL: '',
    OPENAI_API_KEY: '',
    NODE_OPTIONS: `--import ${join(ROOT, 'test', 'fixtures', 'otel-setup.mjs')}`,
    KNBOT_TEST_SPANS: spansFile,
  });
  const ready = dev.output().split('\n').find((l) => l.includes('"dev host ready"'))!;
  fakeUrl = (JSON.parse(ready) as { fakeLlm: string }).fakeLlm;
}, 60_000);
afterAll(async () => {
  await dev?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function chat(bot: string, text: string, conversation: string): Promise<Record<string, any>> {
  const res = await fetch(`${dev.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ bot, conversation, text }) });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, any>;
}

describe('npm start with no model configured', () => {
  it('starts a fake model and says where it is', () => {
    expect(fakeUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    expect(dev.output()).toContain(`model      ${fakeUrl} (fake`);
  });

  it('keeps the faq bot warm, and it answers from the docs with its sources', async () => {
    // min-scale 1: an instance starts with the system, before any message.
    await waitFor(async () => botOf(await dev.state(), 'faq').instances.some((i) => i.state === 'ready'), 'the warm faq instance', 20_000);
    const starts = botOf(await dev.state(), 'faq').coldStarts.length;
    const body = await chat('faq', 'How do I write a bot?', 'e2e-faq');
    expect(body.text).toContain('(source: README.md › Writing a bot)');
    expect(botOf(await dev.state(), 'faq').coldStarts).toHaveLength(starts);
  });

  it('streams the llm bot\'s grounded answer from the fake model, and remembers the conversation', async () => {
    const res = await fetch(`${dev.url}/v1/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ bot: 'llm', conversation: 'e2e-llm', text: 'How does the circuit breaker work?' }),
    });
    const text = await res.text();
    const chunks = [...text.matchAll(/^event: chunk\ndata: (.*)$/gm)].map((m) => (JSON.parse(m[1]!) as { text: string }).text);
    const reply = JSON.parse(/^event: reply\ndata: (.*)$/m.exec(text)![1]!) as { text: string };
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.join('')).toBe(reply.text);
    expect(reply.text).toMatch(/The circuit breaker counts attempts that failed with a network error, a timeout or a 5xx\. \[\d\]/);
    const second = await chat('llm', 'And when does it close again?', 'e2e-llm');
    expect(second.text).toContain('(Message 2 of this conversation; it began with "How does the circuit breaker work?".)');
  });
});

describe('one trace per user turn', () => {
  it('gateway → (broker) → bot turn → model call → the model endpoint, parent to child, one trace', async () => {
    const before = new Set(spans().map((s) => s.spanId));
    await chat('llm', 'How do bots scale to zero?', 'e2e-trace');
    const call = await waitFor(() => spans().find((s) => !before.has(s.spanId) && s.name === 'chat gpt-4o-mini' && s.attributes['gen_ai.conversation.id'] === 'e2e-trace'), 'the model call span');
    const trace = await waitFor(() => {
      const all = spans().filter((s) => s.traceId === call.traceId);
      return all.length >= 3 && all;
    }, 'the spans of the turn');
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    const chain: string[] = [];
    for (let s: SpanLine | undefined = call; s; s = s.parentSpanId ? byId.get(s.parentSpanId) : undefined) chain.unshift(`${s.name}/${s.kind}`);
    // The gateway's span (SERVER), the broker's delivery to the bot (PRODUCER), the bot's turn (SERVER),
    // the model call (CLIENT).
    expect(chain).toEqual(['chat.message/1', 'deliver default/llm-default/3', 'dev.knbot.chat.message.received/1', 'chat gpt-4o-mini/2']);
    // And on to the reply reaching its client: the gateway's egress, under the broker's delivery of the
    // reply,
    const egress = await waitFor(() => spans().find((s) => s.traceId === call.traceId && s.name === 'egress reply'), 'the egress span');
    const delivery = spans().find((s) => s.spanId === egress.parentSpanId)!;
    expect(delivery.name).toBe('deliver gateway-egress');
    // whose parent is the turn that wrote the reply.
    const turn = trace.find((s) => s.name === 'dev.knbot.chat.message.received')!;
    expect(delivery.parentSpanId).toBe(turn.spanId);
    // One root: every span of the trace has its parent in it, once every process has written its spans
    // (each writes a span when it ends, a parent after its children).
    await waitFor(() => {
      const all = spans().filter((s) => s.traceId === call.traceId);
      const ids = new Set(all.map((s) => s.spanId));
      return all.filter((s) => !s.parentSpanId || !ids.has(s.parentSpanId)).length === 1;
    }, 'the trace to have one root');
    expect(trace.find((s) => s.name === 'chat.message')!.attributes).toMatchObject({ 'knbot.bot': 'llm' });
    expect(trace.find((s) => s.name === 'dev.knbot.chat.message.received')!.attributes).toMatchObject({ 'knbot.bot': 'llm' });
    const requests = (await (await fetch(fakeUrl.replace(/\/v1$/, '/_fake/requests'))).json()) as { traceparent?: string }[];
    expect(requests.map((r) => r.traceparent)).toContain(`00-${call.traceId}-${call.spanId}-01`);
  });
});
