import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { SpanContext } from '@opentelemetry/api';

// W3C Trace Context for CloudEvents' distributed tracing extension, and @opentelemetry/api loaded only
// once an SDK registered a tracer provider: until then every span would be a no-op, and processes that
// trace nothing do not pay for loading the API.

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

/**
 * The `traceparent` an entry point stamps on what it emits: its span's, or, when no SDK records spans,
 * fresh ids (not sampled), so the logs of everything downstream still share one trace id.
 */
export function ingressTraceparent(sc: SpanContext): string {
  if (!/^0+$/.test(sc.traceId)) return formatTraceparent(sc);
  return `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-00`;
}
