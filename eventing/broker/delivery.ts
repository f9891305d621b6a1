import type { CloudEvent } from '../cloudevent.ts';
import { parseDuration } from '../model/duration.ts';
import type { DeliverySpec } from '../model/types.ts';

/** How a subscriber's deliveries are retried (Knative's DeliverySpec, resolved). */
export interface DeliveryPolicy {
  /** Retries after the first attempt. */
  retry: number;
  backoffPolicy?: 'exponential' | 'linear';
  backoffDelayMs?: number;
  /** Per attempt. */
  timeoutMs: number;
}

export const DEFAULT_TIMEOUT_MS = 60_000;

export function deliveryPolicy(spec: DeliverySpec | undefined): DeliveryPolicy {
  const delay = spec?.backoffDelay === undefined ? undefined : parseDuration(spec.backoffDelay);
  const timeout = spec?.timeout === undefined ? undefined : parseDuration(spec.timeout);
  return {
    retry: spec?.retry ?? 0,
    ...(spec?.backoffPolicy ? { backoffPolicy: spec.backoffPolicy } : {}),
    ...(delay !== undefined ? { backoffDelayMs: delay } : {}),
    timeoutMs: timeout ?? DEFAULT_TIMEOUT_MS,
  };
}

/**
 * Knative's SelectiveRetry (pkg/kncloudevents/retries.go): retry on a network error (no status), 5xx,
 * 404 (a pod still starting), 408, 409, 429; success is 2xx only; everything else fails at once.
 */
export function classify(status: number | undefined): 'success' | 'retry' | 'fail' {
  if (status === undefined) return 'retry';
  if (status >= 200 && status <= 299) return 'success';
  if (status >= 500 || status === 404 || status === 408 || status === 409 || status === 429) return 'retry';
  return 'fail';
}

/**
 * The wait before retry number `retryIndex` (0 before the first retry), as Knative's retry client
 * computes it: exponential `d·2^i` (d, 2d, 4d, …), linear `d·i` (0, d, 2d, …); no wait unless both the
 * policy and the delay are set.
 */
export function backoffMs(policy: DeliveryPolicy, retryIndex: number): number {
  if (!policy.backoffPolicy || policy.backoffDelayMs === undefined) return 0;
  return policy.backoffPolicy === 'exponential' ? policy.backoffDelayMs * 2 ** retryIndex : policy.backoffDelayMs * retryIndex;
}

/** Knative's KnativeErrorDataExtensionMaxLength. */
export const ERROR_DATA_MAX = 1024;

/** The original event as the dead-letter sink gets it: `knativeerrordest`, `knativeerrorcode`, `knativeerrordata`. */
export function deadLetterEvent(event: CloudEvent, destination: string, status: number | undefined, body: Uint8Array): CloudEvent {
  const out: CloudEvent = { ...event, knativeerrordest: destination, knativeerrorcode: status ?? 500 };
  if (body.length) out.knativeerrordata = Buffer.from(body.subarray(0, ERROR_DATA_MAX)).toString('base64');
  return out;
}

export const TTL_ATTRIBUTE = 'knativebrokerttl';
export const MAX_TTL = 255;

/**
 * Ingress TTL (Knative pkg/broker/ttl.go): absent or unreadable → the maximum, present → one less.
 * Returns the new TTL; the caller drops the event when it is 0 or less.
 */
export function nextTtl(value: unknown, max = MAX_TTL): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : NaN;
  return Number.isInteger(n) ? Math.max(0, n - 1) : max;
}
