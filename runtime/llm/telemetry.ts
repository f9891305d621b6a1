import type { Attributes, Context, Span } from '@opentelemetry/api';
import type { Logger } from '../log.ts';
import type { BotMetrics } from '../metrics.ts';
import { formatTraceparent, otel, tracerRegistered } from '../tracing.ts';
import { type Usage, costUsd, priceFor } from './cost.ts';
import type { LlmError } from './errors.ts';
import type { LlmSettings } from './settings.ts';

/** SpanKind.CLIENT and SpanStatusCode.ERROR, without loading the API for them. */
const KIND_CLIENT = 2;
const STATUS_ERROR = 2;

export interface CallInfo {
  model: string;
  conversation: string | undefined;
  messages: readonly { role: string; content: string }[];
  temperature: number | undefined;
  maxTokens: number | undefined;
}

export interface CallOutcome {
  text: string;
  model: string;
  id: string | undefined;
  finishReason: string | undefined;
  usage: Usage;
  costUsd: number;
  attempts: number;
}

/**
 * One model call's span (OpenTelemetry gen_ai semantic conventions, `chat {model}`, kind CLIENT).
 * Prompts and answers become attributes only when `capturePrompts` is on. A no-op until an SDK
 * registers a tracer provider, like the pod's own spans.
 */
export class CallSpan {
  readonly #span: Span | undefined;
  readonly #capture: boolean;

  constructor(span: Span | undefined, capture: boolean) {
    this.#span = span;
    this.#capture = capture;
  }

  /** The `traceparent` to send to the endpoint, so a tracing proxy or server continues the trace. */
  get traceparent(): string | undefined {
    return this.#span?.isRecording() ? formatTraceparent(this.#span.spanContext()) : undefined;
  }

  retry(attempt: number, error: { code: string; status: number | undefined }, delayMs: number): void {
    this.#span?.addEvent('gen_ai.retry', {
      'knbot.llm.attempt': attempt,
      'error.type': error.code,
      ...(error.status === undefined ? {} : { 'http.response.status_code': error.status }),
      'knbot.llm.retry_delay_ms': delayMs,
    });
  }

  ok(o: CallOutcome): void {
    const span = this.#span;
    if (!span) return;
    span.setAttributes({
      'gen_ai.response.model': o.model,
      ...(o.id === undefined ? {} : { 'gen_ai.response.id': o.id }),
      ...(o.finishReason === undefined ? {} : { 'gen_ai.response.finish_reasons': [o.finishReason] }),
      'gen_ai.usage.input_tokens': o.usage.inputTokens,
      'gen_ai.usage.output_tokens': o.usage.outputTokens,
      'knbot.llm.usage_estimated': o.usage.estimated,
      'knbot.llm.cost_usd': o.costUsd,
      'knbot.llm.attempts': o.attempts,
    });
    if (this.#capture) {
      span.setAttribute('gen_ai.output.messages', JSON.stringify([{ role: 'assistant', parts: [{ type: 'text', content: o.text }], finish_reason: o.finishReason ?? null }]));
    }
    span.end();
  }

  fail(err: LlmError): void {
    const span = this.#span;
    if (!span) return;
    span.setAttributes({ 'error.type': err.code, 'knbot.llm.attempts': err.attempts, ...(err.status === undefined ? {} : { 'http.response.status_code': err.status }) });
    // The error's message is safe to record: it never holds the prompt (runtime/llm/errors.ts).
    span.recordException({ name: err.name, message: err.message });
    span.setStatus({ code: STATUS_ERROR, message: err.code });
    span.end();
  }
}

interface Counters {
  tokens: ReturnType<BotMetrics['counter']>;
  cost: ReturnType<BotMetrics['counter']>;
  requests: ReturnType<BotMetrics['counter']>;
}

/** The client's metrics, spans and log lines; nothing in them holds a prompt or a key. */
export class LlmTelemetry {
  readonly #settings: LlmSettings;
  readonly #metrics: BotMetrics;
  readonly #log: Logger;
  readonly #server: { address: string; port: number };
  readonly #unpriced = new Set<string>();
  #counters: Counters | undefined;

  constructor(settings: LlmSettings, metrics: BotMetrics, log: Logger) {
    this.#settings = settings;
    this.#metrics = metrics;
    this.#log = log;
    const url = new URL(settings.baseUrl);
    this.#server = { address: url.hostname, port: Number(url.port) || (url.protocol === 'https:' ? 443 : 80) };
  }

  get log(): Logger {
    return this.#log;
  }

  /** The caller's active context, captured when the call is made (before any of it runs). */
  parentContext(): Context | undefined {
    return tracerRegistered() ? otel().context.active() : undefined;
  }

  start(call: CallInfo, parent: Context | undefined): CallSpan {
    if (!tracerRegistered()) return new CallSpan(undefined, false);
    const attributes: Attributes = {
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      // The attribute semantic conventions before 1.37 name the provider by.
      'gen_ai.system': 'openai',
      'gen_ai.request.model': call.model,
      ...(call.temperature === undefined ? {} : { 'gen_ai.request.temperature': call.temperature }),
      ...(call.maxTokens === undefined ? {} : { 'gen_ai.request.max_tokens': call.maxTokens }),
      ...(call.conversation === undefined ? {} : { 'gen_ai.conversation.id': call.conversation }),
      'server.address': this.#server.address,
      'server.port': this.#server.port,
    };
    if (this.#settings.capturePrompts) {
      attributes['gen_ai.input.messages'] = JSON.stringify(call.messages.map((m) => ({ role: m.role, parts: [{ type: 'text', content: m.content }] })));
    }
    const tracer = otel().trace.getTracer('knbot.llm');
    const span = tracer.startSpan(`chat ${call.model}`, { kind: KIND_CLIENT, attributes }, parent ?? otel().context.active());
    return new CallSpan(span, this.#settings.capturePrompts);
  }

  /** Cost of a finished call, counted with its tokens. */
  done(call: CallInfo, o: Omit<CallOutcome, 'costUsd'>, durationMs: number): number {
    const price = priceFor(this.#settings.prices, o.model) ?? priceFor(this.#settings.prices, call.model);
    if (!price && !this.#unpriced.has(o.model)) {
      this.#unpriced.add(o.model);
      this.#log.warn('llm model has no price: its cost counts as 0', { model: o.model, field: 'bot.config.llm.prices' });
    }
    const cost = costUsd(o.usage, price);
    const c = this.#load();
    const conversation = this.#settings.conversationMetrics ? (call.conversation ?? '') : '';
    c.tokens.labels('input', call.model, conversation).inc(o.usage.inputTokens);
    c.tokens.labels('output', call.model, conversation).inc(o.usage.outputTokens);
    c.cost.labels(call.model, conversation).inc(cost);
    c.requests.labels(call.model, 'ok').inc();
    this.#log.debug('llm call', {
      model: o.model,
      conversation: call.conversation,
      inputTokens: o.usage.inputTokens,
      outputTokens: o.usage.outputTokens,
      usageEstimated: o.usage.estimated,
      costUsd: cost,
      finishReason: o.finishReason,
      attempts: o.attempts,
      durationMs: Math.round(durationMs),
    });
    return cost;
  }

  failed(call: CallInfo, err: LlmError, durationMs: number): void {
    this.#load().requests.labels(call.model, err.code).inc();
    const fields = { model: call.model, conversation: call.conversation, code: err.code, status: err.status, attempts: err.attempts, partial: err.partial, durationMs: Math.round(durationMs) };
    if (err.code === 'aborted') this.#log.debug('llm call cancelled', fields);
    else this.#log.warn('llm call failed', { ...fields, error: err.message });
  }

  retrying(call: CallInfo, attempt: number, err: { code: string; status: number | undefined; message: string }, delayMs: number): void {
    this.#log.info('llm retry', { model: call.model, conversation: call.conversation, attempt, code: err.code, status: err.status, delayMs, error: err.message });
  }

  #load(): Counters {
    if (this.#counters) return this.#counters;
    const m = this.#metrics;
    this.#counters = {
      tokens: m.counter('knbot_llm_tokens_total', 'Language-model tokens, by direction (input: the prompt, output: the answer).', ['direction', 'model', 'conversation']),
      cost: m.counter('knbot_llm_cost_usd_total', 'Language-model cost in US dollars, from the price table in bot.config.llm.prices.', ['model', 'conversation']),
      requests: m.counter('knbot_llm_requests_total', 'Language-model calls, by result (ok, or the error code).', ['model', 'result']),
    };
    return this.#counters;
  }
}
