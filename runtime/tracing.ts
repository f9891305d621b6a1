import type { Context, Span, SpanContext, Tracer } from '@opentelemetry/api';
import { formatTraceparent, otel, parseTraceparent, tracerRegistered } from '../eventing/trace-context.ts';

// Traces go through @opentelemetry/api. Until an OpenTelemetry SDK registers a tracer provider, every
// span the API makes is a no-op, so the API is loaded only when one has (or when a bot asks for
// ctx.tracer): the pod starts faster, and an incoming trace is still continued to what it emits, by
// the W3C Trace Context code in eventing/trace-context.ts.

export { formatTraceparent, otel, parseTraceparent, tracerRegistered };

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
