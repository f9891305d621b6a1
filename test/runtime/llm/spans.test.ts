// The client's spans with a real OpenTelemetry SDK registered in this test's process (each test file
// runs in a process of its own), collected by the SDK's in-memory exporter.
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeLlm } from '../../../cli/fake-llm/server.ts';
import { type CreateLlmOptions, createLlm } from '../../../runtime/llm/index.ts';
import { createLogger } from '../../../runtime/log.ts';
import { PodMetrics } from '../../../runtime/metrics.ts';

const exporter = new InMemorySpanExporter();
const fake = new FakeLlm({ tokenLatencyMs: 1, firstTokenMs: 1 });
let url: string;

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  url = await fake.start();
});
afterAll(async () => {
  await fake.close();
  trace.disable();
  context.disable();
});
afterEach(() => {
  exporter.reset();
  fake.requests.length = 0;
  fake.clearFaults();
});

const SECRET = 'correct-horse-battery-staple';

function llm(o: CreateLlmOptions = {}) {
  const metrics = new PodMetrics('span-bot', () => 0);
  const log = createLogger({ level: 'error', redact: true, write: () => {} });
  return createLlm({ config: { llm: { prices: { 'gpt-4o-mini': { input: 1, output: 2 } } } }, log, metrics }, { env: { OPENAI_BASE_URL: url }, retryBaseDelayMs: 10, ...o });
}

const messages = [
  { role: 'system' as const, content: `[1] vault.md\nThe vault code is ${SECRET}.` },
  { role: 'user' as const, content: `What is the vault code? I think it is ${SECRET}.` },
];

/** Runs `fn` inside a `turn` span, as the pod runs a bot's onMessage. */
async function inTurn<T>(fn: () => Promise<T>): Promise<{ turn: ReadableSpan; llm: ReadableSpan; value: T }> {
  const tracer = trace.getTracer('test');
  const span = tracer.startSpan('turn');
  const value = await context.with(trace.setSpan(context.active(), span), fn);
  span.end();
  const spans = exporter.getFinishedSpans();
  return { turn: spans.find((s) => s.name === 'turn')!, llm: spans.find((s) => s.name.startsWith('chat '))!, value };
}

const values = (s: ReadableSpan) => JSON.stringify([s.attributes, s.events, s.status]);

describe('gen_ai spans', () => {
  it('makes a client span under the turn, with the gen_ai attributes, and sends its traceparent to the endpoint', async () => {
    const client = llm();
    const { turn, llm: span, value } = await inTurn(async () => {
      const stream = client.stream({ messages }, { session: { id: 'conv-7' } });
      let text = '';
      for await (const p of stream) text += p;
      return { text, result: await stream.result };
    });
    expect(span.name).toBe('chat gpt-4o-mini');
    expect(span.kind).toBe(2);
    expect(span.spanContext().traceId).toBe(turn.spanContext().traceId);
    expect(span.parentSpanContext?.spanId).toBe(turn.spanContext().spanId);
    const port = Number(new URL(url).port);
    expect(span.attributes).toEqual({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.system': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.conversation.id': 'conv-7',
      'server.address': '127.0.0.1',
      'server.port': port,
      'gen_ai.response.model': 'gpt-4o-mini',
      'gen_ai.response.id': value.result.id,
      'gen_ai.response.finish_reasons': ['stop'],
      'gen_ai.usage.input_tokens': value.result.usage.inputTokens,
      'gen_ai.usage.output_tokens': value.result.usage.outputTokens,
      'knbot.llm.usage_estimated': false,
      'knbot.llm.cost_usd': value.result.costUsd,
      'knbot.llm.attempts': 1,
    });
    expect(value.text).toContain(SECRET);
    expect(values(span)).not.toContain(SECRET);
    expect(fake.requests[0]!.traceparent).toBe(`00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`);
  });

  it('records retries as events, and a failed call as an error with its type', async () => {
    fake.inject({ status: 500 });
    const ok = await inTurn(() => llm().complete({ messages }));
    expect(ok.llm.events.map((e) => [e.name, e.attributes?.['error.type'], e.attributes?.['http.response.status_code']])).toEqual([['gen_ai.retry', 'server_error', 500]]);
    expect(ok.llm.attributes['knbot.llm.attempts']).toBe(2);
    exporter.reset();

    fake.inject({ status: 429 }, 'always');
    const failed = await inTurn(() => llm({ maxAttempts: 2 }).complete({ messages }).catch((e: Error) => e));
    expect(failed.llm.status).toMatchObject({ code: 2, message: 'rate_limited' });
    expect(failed.llm.attributes).toMatchObject({ 'error.type': 'rate_limited', 'http.response.status_code': 429, 'knbot.llm.attempts': 2 });
    expect(values(failed.llm)).not.toContain(SECRET);
  });

  it('puts prompts and answers in the span only when capturePrompts is on', async () => {
    const { llm: span } = await inTurn(() => llm({ capturePrompts: true }).complete({ messages }));
    const input = JSON.parse(span.attributes['gen_ai.input.messages'] as string);
    expect(input[1]).toEqual({ role: 'user', parts: [{ type: 'text', content: messages[1]!.content }] });
    expect(JSON.parse(span.attributes['gen_ai.output.messages'] as string)[0]).toMatchObject({ role: 'assistant', finish_reason: 'stop' });
  });
});
