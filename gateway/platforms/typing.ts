// Typing indicators (DESIGN §6 `dev.knbot.chat.typing.start`, and on every message the gateway takes):
// best effort, so one attempt, no retries, and never a wait on a rate limit. A typing call shares each
// platform's account-wide bucket with replies, leaving half of it to them, and has a bucket of its own
// per conversation; it never takes from a conversation's message bucket, since an indicator is not a
// message. When a bucket has nothing to spare the indicator is skipped: replies come first.
import { type ApiRequest, type Verdict, callApi, credentialKey, httpVerdict } from './egress.ts';
import type { BucketSpec } from './rate-limit.ts';
import type { EgressContext, TypingOutcome } from './types.ts';

/** An indicator that has not answered in this long is not worth waiting for. */
const TYPING_TIMEOUT_MS = 5_000;

/** The LINE loading animation's bounds: 5 to 60 seconds, a multiple of 5 (Messaging API reference). */
export const LINE_LOADING_SECONDS = { min: 5, max: 60, step: 5, default: 20 } as const;

/**
 * How long to show LINE's loading animation for a bot that times out after `timeoutSeconds`: that,
 * rounded up to a step of 5 within 5–60; 20 when the timeout is not known.
 */
export function loadingSeconds(timeoutSeconds: number | undefined): number {
  const { min, max, step } = LINE_LOADING_SECONDS;
  if (timeoutSeconds === undefined || !Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) return LINE_LOADING_SECONDS.default;
  return Math.min(max, Math.max(min, Math.ceil(timeoutSeconds / step) * step));
}

/** Typing's share of an account-wide bucket: the same bucket, with half of it kept for replies. */
export function shared(spec: BucketSpec): BucketSpec {
  return { ...spec, reserve: Math.floor(spec.capacity / 2) };
}

/** At most one typing call a second per conversation. */
export function perConversation(platform: string, credential: string, conversation: string): BucketSpec {
  return { key: `${credentialKey(platform, credential)}:typing:${conversation}`, capacity: 1, perSecond: 1 };
}

/**
 * One typing call: skipped when a bucket has no token to spare, else sent once. The outcome's reason is
 * the platform's error text or a network reason, never a URL (Telegram's holds the token).
 */
export async function typingCall(ctx: EgressContext, req: ApiRequest, verdict: (status: number, body: unknown) => Verdict = httpVerdict): Promise<TypingOutcome> {
  if (!(await ctx.limiter.tryTake(req.limits))) return { result: 'skipped', reason: 'rate limit: the platform budget is kept for replies' };
  const attemptTimeoutMs = Math.min(ctx.retry?.attemptTimeoutMs ?? TYPING_TIMEOUT_MS, TYPING_TIMEOUT_MS);
  const r = await callApi({ ...ctx, retry: { ...ctx.retry, maxAttempts: 1, attemptTimeoutMs } }, { ...req, limits: [] }, verdict);
  if (r.ok) return { result: 'shown' };
  return r.status === undefined ? { result: 'failed', reason: r.reason } : { result: 'failed', reason: r.reason, status: r.status };
}

export function skipped(reason: string): TypingOutcome {
  return { result: 'skipped', reason };
}
