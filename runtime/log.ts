// One structured logger: JSON lines, one per event. Secrets, tokens and message text are redacted here,
// in one place, unless redaction is turned off for debugging.

export type Level = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LogOptions {
  level: Level;
  /** false shows message text and secrets (debugging only). */
  redact: boolean;
  write?: (line: string) => void;
}

/** Field names whose values never reach a log line while redaction is on. */
const SECRET = /^(text|body|data|message_text|token|.*token|.*secret|password|authorization|cookie|api[-_]?key|signature)$/i;
const REDACTED = '[redacted]';

export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET.test(k) ? REDACTED : redact(v, depth + 1);
  return out;
}

export function createLogger(options: LogOptions, base: Record<string, unknown> = {}): Logger {
  const min = RANK[options.level];
  const write = options.write ?? ((line: string) => process.stdout.write(line));
  const emit = (level: Level, msg: string, fields?: Record<string, unknown>) => {
    if (RANK[level] < min) return;
    const record = { time: new Date().toISOString(), level, msg, ...base, ...fields };
    for (const k in record) {
      const v = (record as Record<string, unknown>)[k];
      if (v instanceof Error) (record as Record<string, unknown>)[k] = { name: v.name, message: v.message, stack: options.redact ? undefined : v.stack };
    }
    write(`${JSON.stringify(options.redact ? redact(record) : record)}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (fields) => createLogger(options, { ...base, ...fields }),
  };
}

export function parseLevel(value: string | undefined): Level {
  return value === 'debug' || value === 'warn' || value === 'error' ? value : 'info';
}

/**
 * The fields that tie a log line to its trace (the OpenTelemetry names): none for a span that carries
 * no trace (no `traceparent` came in and no SDK made one).
 */
export function traceFields(context: { traceId: string; spanId: string }): Record<string, string> {
  if (/^0+$/.test(context.traceId)) return {};
  return { trace_id: context.traceId, span_id: context.spanId };
}
