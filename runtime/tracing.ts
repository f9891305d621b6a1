import { createRequire } from 'node:module';
import type { Context, Span, SpanContext, Tracer } from '@opentelemetry/api';

// Traces go through @opentelemetry/api. Until an OpenTelemetry SDK registers a tracer provider, every
// span the API makes is a no-op, so the API is loaded only when one has (or when a bot asks for
// ctx.tracer): the pod starts faster, and an incoming trace is still continued to what it emits, by
// the W3C Trace Context code here.

type Api = typeof import('@opentelemetry/api');
const require = createRequire(import.meta.url);
let api: Api | undefined;

/** @opentelemetry/api, loaded on first use (synchronously: its CommonJS build). */
export function otel(): Api {
  return (api ??= require('@opentelemetry/api') as Api);
}

/** The key under which @opentelemetry/api 1.x keeps its registered globals. */
const OTEL_GLOBAL = Symbol.for('opentelemetry.js.api.1');

/** True once an SDK has registered a tracer provider. */
export function tracerRegistered(): boolean {
  return (globalThis as Record<symbol, { trace?: unknown } | undefined>)[OTEL_GLOBAL]?.trace !== undefined;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const SAMPLED = 1;

/** Parses a `traceparent` (W3C Trace Context §3.2); undefined for invalid or all-zero ids, version ff. */
export function parseTraceparent(value: string | undefined): SpanContext | undefined {
  if (value === undefined) return undefined;
  const m = TRACEPARENT.exec(value.trim());
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[5] !== undefined)) return undefined;
  const traceId = m[2]!;
  const spanId = m[3]!;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, traceFlags: parseInt(m[4]!, 16) & SAMPLED, isRemote: true };
}

export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${sc.traceFlags & SAMPLED ? '01' : '00'}`;
}

const INVALID: SpanContext = { traceId: '00000000000000000000000000000000', spanId: '0000000000000000', traceFlags: 0 };

/** What the API's no-op tracer would return: a span that records nothing and carries its parent's context. */
class PassThroughSpan implements Span {
  readonly #context: SpanContext;

  constructor(context: SpanContext | undefined) {
    this.#context = context ?? INVALID;
  }

  spanContext(): SpanContext {
    return this.#context;
  }
  setAttribute(): this { return this; }
  setAttributes(): this { return this; }
  addEvent(): this { return this; }
  addLink(): this { return this; }
  addLinks(): this { return this; }
  setStatus(): this { return this; }
  updateName(): this { return this; }
  end(): void {}
  isRecording(): boolean { return false; }
  recordException(): void {}
}

/** SpanStatusCode.ERROR, without loading the API for it. */
const STATUS_ERROR = 2;
/** SpanKind.SERVER. */
const KIND_SERVER = 1;

/** The pod's spans: one per turn, child of the incoming `traceparent`. */
export class Tracing {
  #tracer: Tracer | undefined;
  readonly #attributes: Record<string, string>;

  constructor(attributes: Record<string, string>) {
    this.#attributes = attributes;
  }

  get tracer(): Tracer {
    return (this.#tracer ??= otel().trace.getTracer('knbot'));
  }

  /** A server span under `traceparent` (a header or the event's extension). */
  start(name: string, traceparent: unknown): Span {
    const parent = typeof traceparent === 'string' ? parseTraceparent(traceparent) : undefined;
    if (!tracerRegistered()) return new PassThroughSpan(parent);
    const { trace, ROOT_CONTEXT } = otel();
    const ctx: Context = parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
    return this.tracer.startSpan(name, { kind: KIND_SERVER, attributes: this.#attributes }, ctx);
  }

  /** Runs `fn` with `span` active, so the bot's own spans are its children. */
  within<T, A>(span: Span, fn: (arg: A) => T, arg: A): T {
    if (span instanceof PassThroughSpan) return fn(arg);
    const { context, trace, ROOT_CONTEXT } = otel();
    return context.with(trace.setSpan(ROOT_CONTEXT, span), fn, undefined, arg);
  }
}

export function failSpan(span: Span, err: unknown): void {
  span.recordException(err as Error);
  span.setStatus({ code: STATUS_ERROR });
  span.end();
}
