import type { Context } from '@opentelemetry/api';
import type { InitContext } from '../bot.ts';
import type { Logger } from '../log.ts';
import type { BotMetrics } from '../metrics.ts';
import { type BreakerState, CircuitBreaker } from './breaker.ts';
import { type Usage, estimateTokens } from './cost.ts';
import { LlmError } from './errors.ts';
import { Semaphore, TokenBucket, aborted, sleep } from './limits.ts';
import { classifyStatus, retryAfterMs, retryDelayMs } from './retry.ts';
import { type LlmSettings, resolveLlmSettings } from './settings.ts';
import { SseParser } from './sse.ts';
import { LlmStream } from './stream.ts';
import { AttemptError, type AttemptResult, completion, errorSummary, streamChunk } from './wire.ts';
import { type CallInfo, type CallSpan, LlmTelemetry } from './telemetry.ts';

/** One message of a conversation with the model (OpenAI's chat-completions roles). */
export interface LlmMessage {
  role: 'system' | 'developer' | 'user' | 'assistant';
  content: string;
  name?: string;
}

export interface ChatRequest {
  messages: readonly LlmMessage[];
  /** Default: the bot's `bot.config.llm.model`. */
  model?: string;
  temperature?: number;
  maxTokens?: number;
  /** Labels tokens, cost and the span; default: the turn's conversation (`ctx.session.id`). */
  conversation?: string;
  /** Cancels the call, besides the turn's own signal. */
  signal?: AbortSignal;
  /** This call's total timeout, instead of the bot's `totalTimeoutMs`. */
  timeoutMs?: number;
  /** More fields for the request body (`top_p`, `stop`, `response_format`, …), sent as they are. */
  body?: Record<string, unknown>;
}

/** What a call needs from the turn: its signal (client gone, interrupted, shutdown) and its conversation. */
export interface CallContext {
  readonly signal?: AbortSignal;
  readonly session?: { readonly id: string };
}

export interface ChatResult {
  text: string;
  /** `stop`, `length`, `content_filter`, … as the endpoint said. */
  finishReason: string | undefined;
  /** The model that answered, as the endpoint names it. */
  model: string;
  id: string | undefined;
  usage: Usage;
  costUsd: number;
  attempts: number;
}

export interface LlmDeps {
  log: Logger;
  metrics: BotMetrics;
  /** For the backoff's jitter; Math.random by default. */
  random?: () => number;
}

/**
 * An OpenAI-compatible chat-completions client for one bot: streaming over SSE, per-attempt and total
 * timeouts, retries with jittered backoff (honouring Retry-After), a concurrency and a token-rate limit,
 * a circuit breaker, cancellation, token and cost accounting, gen_ai spans. Make one in `init` and use
 * it for every turn: the limits and the breaker are the client's.
 */
export class Llm {
  readonly #s: LlmSettings;
  readonly #telemetry: LlmTelemetry;
  readonly #random: () => number;
  readonly #slots: Semaphore;
  readonly #tokens: TokenBucket | undefined;
  readonly #breaker: CircuitBreaker;
  readonly #url: string;

  constructor(settings: LlmSettings, deps: LlmDeps) {
    this.#s = settings;
    this.#telemetry = new LlmTelemetry(settings, deps.metrics, deps.log);
    this.#random = deps.random ?? Math.random;
    this.#slots = new Semaphore(settings.concurrency);
    this.#tokens = settings.tokensPerMinute > 0 ? new TokenBucket(settings.tokensPerMinute) : undefined;
    const endpoint = new URL(settings.baseUrl).host;
    this.#breaker = new CircuitBreaker({
      failures: settings.breakerFailures,
      openMs: settings.breakerOpenMs,
      onChange: (from, to) => deps.log[to === 'open' ? 'warn' : 'info']('llm circuit', { from, to, endpoint }),
    });
    this.#url = `${settings.baseUrl}/chat/completions`;
    if (!settings.apiKey && new URL(settings.baseUrl).hostname === 'api.openai.com') {
      deps.log.warn('llm: no API key for api.openai.com: set OPENAI_API_KEY (or bot.config.llm.apiKey), or OPENAI_BASE_URL for another endpoint');
    }
  }

  /** The settings in use, the key left out. */
  get settings(): Readonly<Omit<LlmSettings, 'apiKey'>> {
    const { apiKey: _, ...rest } = this.#s;
    return rest;
  }

  get breaker(): BreakerState {
    return this.#breaker.state;
  }

  /** Calls in flight, and calls waiting for a slot. */
  get load(): { inFlight: number; waiting: number } {
    return { inFlight: this.#slots.inUse, waiting: this.#slots.waiting };
  }

  /** The answer as a stream of text; `onMessage` may return it as it is. */
  stream(request: ChatRequest, ctx?: CallContext): LlmStream {
    return new LlmStream(this.#call(request, ctx, true, this.#telemetry.parentContext()));
  }

  /** The whole answer at once (a request that does not stream). */
  async complete(request: ChatRequest, ctx?: CallContext): Promise<ChatResult> {
    const call = this.#call(request, ctx, false, this.#telemetry.parentContext());
    for (;;) {
      const r = await call.next();
      if (r.done) return r.value;
    }
  }

  async *#call(request: ChatRequest, ctx: CallContext | undefined, streaming: boolean, parent: Context | undefined): AsyncGenerator<string, ChatResult> {
    const s = this.#s;
    if (!Array.isArray(request.messages) || request.messages.length === 0) throw new TypeError('a chat request needs messages');
    const info: CallInfo = {
      model: request.model ?? s.model,
      conversation: request.conversation ?? ctx?.session?.id,
      messages: request.messages,
      temperature: request.temperature ?? s.temperature,
      maxTokens: request.maxTokens ?? s.maxTokens,
    };
    const totalMs = request.timeoutMs ?? s.totalTimeoutMs;
    let release: (() => void) | undefined;
    const started = Date.now();
    const deadline = started + totalMs;
    const total = new AbortController();
    const timer = setTimeout(() => total.abort(new Error(`no answer within ${totalMs} ms`)), totalMs);
    const signal = AbortSignal.any([total.signal, ...(ctx?.signal ? [ctx.signal] : []), ...(request.signal ? [request.signal] : [])]);
    // A cancelled call leaves the endpoint at once, and its slot with it, even while its reader is not reading.
    signal.addEventListener('abort', () => release?.(), { once: true });
    const span = this.#telemetry.start(info, parent);
    const body = JSON.stringify(this.#body(request, info, streaming));
    const estimate = request.messages.reduce((n, m) => n + 4 + estimateTokens(m.content), 0);
    let attempts = 0;
    let text = '';
    let attempt: AsyncGenerator<string, AttemptResult> | undefined;
    let settled = false;
    try {
      release = await this.#slots.acquire(signal, deadline);
      await this.#tokens?.take(estimate, signal, deadline);
      for (;;) {
        const admission = this.#breaker.admit();
        if (!admission.ok) {
          throw new LlmError('circuit_open', `${new URL(s.baseUrl).host} failed ${s.breakerFailures} times in a row: failing fast for ${admission.retryAfterMs} ms`, {
            attempts,
            retryAfterMs: admission.retryAfterMs,
          });
        }
        attempts++;
        let out: AttemptResult;
        try {
          attempt = this.#attempt(body, streaming, signal, span);
          for (;;) {
            const r = await attempt.next();
            if (r.done) {
              out = r.value;
              break;
            }
            text += r.value;
            yield r.value;
          }
        } catch (err) {
          if (signal.aborted || !(err instanceof AttemptError)) {
            this.#breaker.release(admission.probe);
            throw err;
          }
          if (err.breaker) this.#breaker.failure(admission.probe);
          else this.#breaker.success(admission.probe);
          const partial = text !== '';
          if (!err.retry || partial || attempts >= s.maxAttempts) throw final(err, attempts, partial);
          const wait = retryDelayMs(attempts, { baseMs: s.retryBaseDelayMs, maxMs: s.retryMaxDelayMs, retryAfterMs: err.retryAfterMs, random: this.#random });
          if (Date.now() + wait >= deadline) throw final(err, attempts, false, `; the next attempt, in ${wait} ms, would pass the total timeout of ${totalMs} ms`);
          span.retry(attempts, err, wait);
          this.#telemetry.retrying(info, attempts, err, wait);
          await sleep(wait, signal);
          continue;
        }
        this.#breaker.success(admission.probe);
        const usage: Usage = out.usage
          ? { ...out.usage, estimated: false }
          : { inputTokens: estimate, outputTokens: estimateTokens(out.text), estimated: true };
        this.#tokens?.adjust(usage.inputTokens + usage.outputTokens - estimate);
        const result = { text: out.text, finishReason: out.finishReason, model: out.model ?? info.model, id: out.id, usage, attempts };
        const costUsd = this.#telemetry.done(info, result, Date.now() - started);
        const whole: ChatResult = { ...result, costUsd };
        settled = true;
        span.ok(whole);
        return whole;
      }
    } catch (err) {
      const e = asLlmError(err, signal, total.signal, totalMs, attempts, text !== '');
      settled = true;
      this.#telemetry.failed(info, e, Date.now() - started);
      span.fail(e);
      throw e;
    } finally {
      if (!settled) {
        // The reader stopped reading before the end (`break` out of `for await`, or the stream closed).
        const e = new LlmError('aborted', 'the reader stopped before the end of the answer', { attempts, partial: text !== '' });
        this.#telemetry.failed(info, e, Date.now() - started);
        span.fail(e);
      }
      clearTimeout(timer);
      release?.();
      // A reader that broke off leaves the attempt suspended: closing it cancels the response.
      await attempt?.return(undefined as never).catch(() => {});
    }
  }

  #body(request: ChatRequest, info: CallInfo, streaming: boolean): Record<string, unknown> {
    return {
      ...request.body,
      model: info.model,
      messages: request.messages.map((m) => (m.name === undefined ? { role: m.role, content: m.content } : { role: m.role, content: m.content, name: m.name })),
      ...(info.temperature === undefined ? {} : { temperature: info.temperature }),
      ...(info.maxTokens === undefined ? {} : { max_completion_tokens: info.maxTokens }),
      ...(streaming ? { stream: true, stream_options: { include_usage: true } } : { stream: false }),
    };
  }

  /**
   * One HTTP request. The attempt's own timer covers the wait for the response's headers, then each
   * silence between pieces of the stream (the whole body, for an answer that does not stream).
   */
  async *#attempt(body: string, streaming: boolean, signal: AbortSignal, span: CallSpan): AsyncGenerator<string, AttemptResult> {
    const timeoutMs = this.#s.attemptTimeoutMs;
    const own = new AbortController();
    let timer = setTimeout(() => own.abort(), timeoutMs);
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => own.abort(), timeoutMs);
    };
    const both = AbortSignal.any([signal, own.signal]);
    const broken = (err: unknown, what: string): AttemptError | unknown => {
      if (signal.aborted) return err;
      if (own.signal.aborted) return new AttemptError('timeout', `no ${what} within the attempt timeout of ${timeoutMs} ms`, { retry: true, breaker: true, cause: err });
      return new AttemptError('network', `${what} failed: ${describe(err)}`, { retry: true, breaker: true, cause: err });
    };
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: streaming ? 'text/event-stream' : 'application/json',
      'user-agent': 'knbot',
    };
    if (this.#s.apiKey) headers.authorization = `Bearer ${this.#s.apiKey}`;
    const traceparent = span.traceparent;
    if (traceparent) headers.traceparent = traceparent;
    try {
      let res: Response;
      try {
        res = await fetch(this.#url, { method: 'POST', headers, body, signal: both });
      } catch (err) {
        throw broken(err, 'the request');
      }
      if (!res.ok) {
        let detail = '';
        try {
          detail = await res.text();
        } catch {}
        const c = classifyStatus(res.status, res.headers.get('x-should-retry'));
        const wait = retryAfterMs(res.headers);
        throw new AttemptError(c.code, `the endpoint answered ${res.status}${errorSummary(detail)}`, { retry: c.retry, breaker: c.breaker, status: res.status, ...(wait === undefined ? {} : { retryAfterMs: wait }) });
      }
      const type = res.headers.get('content-type') ?? '';
      if (!streaming || !/^text\/event-stream/i.test(type)) {
        // An endpoint that ignores `stream: true` answers the whole completion: passed on as one piece.
        let json: unknown;
        try {
          json = await res.json();
        } catch (err) {
          throw signal.aborted || own.signal.aborted ? broken(err, 'the answer') : new AttemptError('bad_response', `the answer is not JSON (${type || 'no content-type'})`, { retry: false, breaker: false, status: res.status });
        }
        const out = completion(json);
        if (out.text !== '') yield out.text;
        return out;
      }
      const out: AttemptResult = { text: '', model: undefined, id: undefined, finishReason: undefined, usage: undefined };
      const parser = new SseParser();
      const decoder = new TextDecoder();
      const reader = res.body!.getReader();
      try {
        for (;;) {
          arm();
          let chunk: Awaited<ReturnType<typeof reader.read>>;
          try {
            chunk = await reader.read();
          } catch (err) {
            throw broken(err, 'the stream');
          }
          if (chunk.done) break;
          for (const event of parser.push(decoder.decode(chunk.value, { stream: true }))) {
            if (event.data === '[DONE]') return out;
            const piece = streamChunk(event.data, out);
            if (piece !== '') {
              out.text += piece;
              // The timer stops while the reader holds the piece: a slow reader is not a silent endpoint.
              clearTimeout(timer);
              yield piece;
            }
          }
        }
      } finally {
        reader.cancel().catch(() => {});
      }
      // OpenAI ends every stream with [DONE]; one that stops short was cut off.
      throw new AttemptError('network', 'the stream broke off before its end', { retry: true, breaker: true });
    } finally {
      clearTimeout(timer);
      own.abort();
    }
  }
}

function describe(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

function final(err: AttemptError, attempts: number, partial: boolean, suffix = ''): LlmError {
  const note = partial ? ' (after part of the answer was streamed: not retried)' : attempts > 1 ? ` (${attempts} attempts)` : '';
  return new LlmError(err.code, `${err.message}${note}${suffix}`, {
    attempts,
    partial,
    ...(err.status === undefined ? {} : { status: err.status }),
    ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }),
    cause: err,
  });
}

/** Whatever ended a call, as an LlmError: the total timeout, the caller's cancellation, or the error itself. */
function asLlmError(err: unknown, signal: AbortSignal, total: AbortSignal, totalMs: number, attempts: number, partial: boolean): LlmError {
  if (total.aborted) return new LlmError('timeout', `no answer within the total timeout of ${totalMs} ms (${attempts} attempts)`, { attempts, partial, cause: err });
  if (signal.aborted) {
    const e = aborted(signal);
    return new LlmError('aborted', e.message, { attempts, partial, cause: signal.reason });
  }
  if (err instanceof LlmError) return err;
  if (err instanceof AttemptError) return final(err, attempts, partial);
  throw err;
}

export interface CreateLlmOptions extends Partial<LlmSettings> {
  /** Where `OPENAI_BASE_URL`, `OPENAI_API_KEY` and `{env: NAME}` settings are read; process.env by default. */
  env?: Readonly<Record<string, string | undefined>>;
  random?: () => number;
}

/**
 * The bot's model client, from its `bot.config.llm` and the environment (runtime/llm/settings.ts),
 * logging and counting through the bot's own logger and metrics. Call it in `init`.
 */
export function createLlm(ctx: Pick<InitContext, 'config' | 'log' | 'metrics'>, options: CreateLlmOptions = {}): Llm {
  const { env = process.env, random, ...overrides } = options;
  const settings = resolveLlmSettings(ctx.config, env, overrides);
  return new Llm(settings, { log: ctx.log, metrics: ctx.metrics, ...(random ? { random } : {}) });
}
