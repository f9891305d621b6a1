// Calling a platform API: rate limit, attempt, judge the answer, back off and try again. Retries cover
// network errors, timeouts, 429 and 5xx, honouring `Retry-After` (header in seconds or as an HTTP date,
// or the platform's own body field); any other 4xx is final. Nothing here logs: reasons carry the
// platform's error code or message, never a URL (Telegram's holds the token) or message text.
import { createHash } from 'node:crypto';
import { CARRIED_EXTENSIONS, REPLY_DELIVERED, REPLY_FAILED } from '../../eventing/chat.ts';
import type { CloudEvent } from '../../eventing/codec.ts';
import { type BucketSpec, sleep } from './rate-limit.ts';
import type { DeliveryOutcome, EgressContext, RetryPolicy } from './types.ts';

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 4,
  baseDelayMs: 250,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 60_000,
  attemptTimeoutMs: 10_000,
};

export interface ApiRequest {
  method: 'POST' | 'PATCH';
  url: string;
  headers?: Record<string, string>;
  /** Sent as JSON; undefined sends no body (and no content type). */
  body: unknown;
  limits: readonly BucketSpec[];
}

export type Verdict = 'ok' | 'retry' | { fail: string };

export type ApiResult =
  | { ok: true; status: number; body: unknown }
  | { ok: false; status?: number; reason: string; retryable: boolean; retryAfterMs?: number; body?: unknown };

/** The default verdict: 2xx succeeds, 429 and 5xx are retried, anything else fails. */
export function httpVerdict(status: number, body: unknown): Verdict {
  if (status >= 200 && status < 300) return 'ok';
  if (status === 429 || status >= 500) return 'retry';
  return { fail: errorText(body) ?? `HTTP ${status}` };
}

/** Sends `req` until it succeeds, fails for good, or the attempts run out. */
export async function callApi(ctx: EgressContext, req: ApiRequest, verdict: (status: number, body: unknown) => Verdict = httpVerdict): Promise<ApiResult> {
  const policy = { ...DEFAULT_RETRY, ...ctx.retry };
  let last: ApiResult = { ok: false, reason: 'not attempted', retryable: true };
  for (let attempt = 1; attempt <= policy.maxAttempts; attempt++) {
    let retryAfterMs: number | undefined;
    try {
      await ctx.limiter.acquire(req.limits, ctx.signal);
      const res = await ctx.fetch(req.url, {
        method: req.method,
        headers: req.body === undefined ? { ...req.headers } : { 'content-type': 'application/json; charset=utf-8', ...req.headers },
        body: req.body === undefined ? null : JSON.stringify(req.body),
        signal: ctx.signal ? AbortSignal.any([ctx.signal, AbortSignal.timeout(policy.attemptTimeoutMs)]) : AbortSignal.timeout(policy.attemptTimeoutMs),
      });
      const body = await readBody(res);
      const v = verdict(res.status, body);
      if (v === 'ok') return { ok: true, status: res.status, body };
      if (v !== 'retry') return { ok: false, status: res.status, reason: v.fail, retryable: false, body };
      retryAfterMs = retryAfter(res.headers.get('retry-after'), body, ctx.now());
      last = { ok: false, status: res.status, reason: errorText(body) ?? `HTTP ${res.status}`, retryable: true, body };
      if (retryAfterMs !== undefined) last.retryAfterMs = retryAfterMs;
    } catch (e) {
      if (ctx.signal?.aborted) return { ok: false, reason: 'aborted', retryable: true };
      last = { ok: false, reason: networkReason(e), retryable: true };
    }
    if (attempt === policy.maxAttempts) break;
    if (retryAfterMs !== undefined && retryAfterMs > policy.maxRetryAfterMs) return last;
    const delayMs = retryAfterMs ?? backoff(attempt, policy);
    ctx.onRetry?.({ attempt, delayMs, reason: last.reason, ...(last.status !== undefined ? { status: last.status } : {}) });
    try {
      await sleep(delayMs, ctx.signal);
    } catch {
      return { ok: false, reason: 'aborted', retryable: true };
    }
  }
  return last;
}

/** Exponential backoff with "equal jitter": half the step fixed, half random (AWS architecture blog). */
export function backoff(attempt: number, policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>, random: () => number = Math.random): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(step / 2 + random() * (step / 2));
}

/**
 * How long the platform asked us to wait, in ms: `Retry-After` as delta-seconds or an HTTP date (RFC
 * 9110 §10.2.3), Telegram's `parameters.retry_after` or Discord's `retry_after` (seconds, may have a
 * fraction) in the body. The longest of them wins; undefined when none is given.
 */
export function retryAfter(header: string | null, body: unknown, nowMs: number): number | undefined {
  let ms: number | undefined;
  const take = (v: number) => {
    if (Number.isFinite(v) && v >= 0) ms = Math.max(ms ?? 0, Math.ceil(v));
  };
  if (header !== null) {
    const h = header.trim();
    if (/^\d+(\.\d+)?$/.test(h)) take(Number(h) * 1000);
    else if (/^[A-Za-z]{3}/.test(h)) {
      // Every HTTP-date form starts with a day name; Date.parse alone would take "-5" for a year.
      const at = Date.parse(h);
      if (!Number.isNaN(at)) take(Math.max(0, at - nowMs));
    }
  }
  if (body !== null && typeof body === 'object') {
    const b = body as { retry_after?: unknown; parameters?: { retry_after?: unknown } };
    if (typeof b.parameters?.retry_after === 'number') take(b.parameters.retry_after * 1000);
    if (typeof b.retry_after === 'number') take(b.retry_after * 1000);
  }
  return ms;
}

async function readBody(res: Response): Promise<unknown> {
  const text = await res.text();
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text.length > 200 ? text.slice(0, 200) : text;
  }
}

/** The platform's own error text: Slack `error`, Telegram `description`, Discord/LINE `message`, Graph `error.message`. */
export function errorText(body: unknown): string | undefined {
  if (typeof body === 'string') return body === '' ? undefined : body.slice(0, 200);
  if (body === null || typeof body !== 'object') return undefined;
  const b = body as Record<string, unknown>;
  const nested = b.error !== null && typeof b.error === 'object' ? (b.error as Record<string, unknown>).message : undefined;
  for (const v of [b.error, b.description, b.message, nested]) if (typeof v === 'string' && v !== '') return v.slice(0, 200);
  return undefined;
}

function networkReason(e: unknown): string {
  const err = e as { name?: string; cause?: { code?: string } };
  if (err?.name === 'TimeoutError') return 'timeout';
  return err?.cause?.code ? `network error (${err.cause.code})` : 'network error';
}

/** A stable, short stand-in for a credential in bucket keys: never the credential itself. */
export function credentialKey(platform: string, credential: string): string {
  return `${platform}:${createHash('sha256').update(credential).digest('hex').slice(0, 16)}`;
}

/**
 * Splits text into pieces of at most `max` UTF-16 units, preferring a line break, then a space, in the
 * second half of a piece; never inside a surrogate pair. The break itself is dropped, so a text whose
 * break falls right at the limit ends without an empty piece (platforms refuse empty messages). Text
 * that only grows keeps its earlier cuts: a piece, once followed by another, stays as it is.
 */
export function splitText(text: string, max: number): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.length > max) {
    let cut = rest.lastIndexOf('\n', max);
    if (cut < max / 2) cut = rest.lastIndexOf(' ', max);
    let skip = 1;
    if (cut < max / 2) {
      cut = max;
      skip = 0;
      const code = rest.charCodeAt(cut - 1);
      if (code >= 0xd800 && code <= 0xdbff) cut -= 1;
    }
    out.push(rest.slice(0, cut));
    rest = rest.slice(cut + skip);
  }
  if (rest !== '' || out.length === 0) out.push(rest);
  return out;
}

/** The reply's text, or why it cannot be sent. */
export function replyText(reply: CloudEvent): string | { ok: false; reason: string; retryable: false } {
  const data = reply.data as { text?: unknown } | undefined;
  if (!data || typeof data.text !== 'string') return { ok: false, reason: 'the reply has no data.text string', retryable: false };
  if (data.text.trim() === '') return { ok: false, reason: 'the reply text is empty', retryable: false };
  return data.text;
}

export function missingSecret(platform: string, key: string): DeliveryOutcome {
  return { ok: false, reason: `the ${platform} channel has no ${key} configured`, retryable: false };
}

/** An `ApiResult` failure as a delivery outcome. */
export function failed(r: Extract<ApiResult, { ok: false }>): Extract<DeliveryOutcome, { ok: false }> {
  const out: Extract<DeliveryOutcome, { ok: false }> = { ok: false, reason: r.reason, retryable: r.retryable };
  if (r.status !== undefined) out.status = r.status;
  if (r.retryAfterMs !== undefined) out.retryAfterMs = r.retryAfterMs;
  return out;
}

export { REPLY_DELIVERED, REPLY_FAILED };

/**
 * The outcome event for a delivered or failed reply (DESIGN §6): same subject and chat extensions as the
 * reply; data names the reply and, when delivered, the platform's message id (for later edits). It
 * carries no text and no handle.
 */
export function replyOutcomeEvent(reply: CloudEvent, outcome: DeliveryOutcome, source: string, nowMs: number): CloudEvent {
  const ok = outcome.ok;
  const event: CloudEvent = {
    specversion: '1.0',
    id: `${reply.id}:${ok ? 'delivered' : 'failed'}`,
    source,
    type: ok ? REPLY_DELIVERED : REPLY_FAILED,
    time: new Date(nowMs).toISOString(),
    datacontenttype: 'application/json',
  };
  if (reply.subject !== undefined) event.subject = reply.subject;
  for (const name of CARRIED_EXTENSIONS) if (reply[name] !== undefined) event[name] = reply[name];
  const data: Record<string, unknown> = { replyId: reply.id, replySource: reply.source };
  const inReplyTo = (reply.data as { inReplyTo?: unknown } | undefined)?.inReplyTo;
  if (typeof inReplyTo === 'string') data.inReplyTo = inReplyTo;
  if (outcome.ok) {
    if (outcome.platformMessageId !== undefined) data.platformMessageId = outcome.platformMessageId;
  } else {
    data.reason = outcome.reason;
    data.retryable = outcome.retryable;
    if (outcome.status !== undefined) data.status = outcome.status;
    if (outcome.platformErrorCode !== undefined) data.platformErrorCode = outcome.platformErrorCode;
  }
  event.data = data;
  return event;
}
