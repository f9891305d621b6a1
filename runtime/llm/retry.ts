import type { LlmErrorCode } from './errors.ts';

/**
 * How long the endpoint asks a client to wait: `retry-after-ms` (OpenAI's and Azure's, milliseconds),
 * else `Retry-After` in seconds or as an HTTP date (RFC 9110 §10.2.3). Undefined when it does not say,
 * or says something unreadable.
 */
export function retryAfterMs(headers: { get(name: string): string | null }, now = Date.now()): number | undefined {
  const ms = headers.get('retry-after-ms');
  if (ms !== null && /^\s*\d+(\.\d+)?\s*$/.test(ms)) return Math.ceil(Number(ms));
  const value = headers.get('retry-after');
  if (value === null) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(value)) return Math.ceil(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The wait before retry number `retry` (1 before the first retry): "full jitter" exponential backoff,
 * a random share of `base·2^(retry-1)` capped at `max`, so that clients failed by the same outage do not
 * come back together. When the endpoint said how long to wait, at least that, plus up to one base delay
 * of jitter for the same reason.
 */
export function retryDelayMs(retry: number, o: { baseMs: number; maxMs: number; retryAfterMs: number | undefined; random: () => number }): number {
  if (o.retryAfterMs !== undefined) return o.retryAfterMs + Math.floor(o.random() * o.baseMs);
  const ceiling = Math.min(o.maxMs, o.baseMs * 2 ** (retry - 1));
  return Math.floor(o.random() * ceiling);
}

/** What an HTTP status means for a call: done, worth another attempt, or a failure retrying cannot fix. */
export function classifyStatus(status: number, shouldRetry: string | null): { retry: boolean; code: LlmErrorCode; breaker: boolean } {
  // OpenAI's SDKs obey x-should-retry when the endpoint sends it.
  const forced = shouldRetry === 'true' ? true : shouldRetry === 'false' ? false : undefined;
  if (status === 429) return { retry: forced ?? true, code: 'rate_limited', breaker: false };
  if (status >= 500) return { retry: forced ?? true, code: 'server_error', breaker: true };
  // As OpenAI's SDKs: 408 and 409 (lock timeout) are worth another attempt.
  if (status === 408 || status === 409) return { retry: forced ?? true, code: status === 408 ? 'timeout' : 'server_error', breaker: false };
  if (status === 401 || status === 403) return { retry: forced ?? false, code: 'unauthorized', breaker: false };
  return { retry: forced ?? false, code: 'bad_request', breaker: false };
}
