import { RateLimiter } from '../../../gateway/platforms/rate-limit.ts';
import type { EgressContext, RetryInfo } from '../../../gateway/platforms/types.ts';

/** A real egress context against `apiBase`, with short backoff steps and a record of the waits. */
export function egressContext(apiBase: string, overrides: Partial<EgressContext> = {}): EgressContext & { retries: RetryInfo[] } {
  const retries: RetryInfo[] = [];
  return {
    apiBase,
    fetch: globalThis.fetch,
    now: Date.now,
    limiter: new RateLimiter(),
    retry: { baseDelayMs: 5, maxDelayMs: 40 },
    onRetry: (info) => retries.push(info),
    retries,
    ...overrides,
  };
}
