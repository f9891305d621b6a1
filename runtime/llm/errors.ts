/**
 * What went wrong with a model call, as a machine-readable code:
 * - `timeout`: no answer within the total timeout (or the last attempt's own);
 * - `rate_limited`: the endpoint answered 429 and retrying would pass the deadline or the attempts,
 *   or the bot's own token-rate limit would make the call wait past its deadline;
 * - `server_error`: 5xx on every attempt; `network`: the connection failed or broke off;
 * - `circuit_open`: the endpoint failed repeatedly, and calls fail fast until a probe succeeds;
 * - `aborted`: the caller's signal (the client went away, the turn was interrupted, shutdown);
 * - `unauthorized` (401, 403), `bad_request` (other 4xx): not retried;
 * - `bad_response`: the endpoint answered something that is not the chat-completions format.
 */
export type LlmErrorCode =
  | 'timeout'
  | 'rate_limited'
  | 'server_error'
  | 'network'
  | 'circuit_open'
  | 'aborted'
  | 'unauthorized'
  | 'bad_request'
  | 'bad_response';

export interface LlmErrorDetails {
  /** The endpoint's HTTP status, when it answered. */
  status?: number;
  /** Attempts made (0 when the call failed before the first one, e.g. circuit open). */
  attempts?: number;
  /** How long the endpoint (429 Retry-After) or the breaker asks to wait. */
  retryAfterMs?: number;
  /** True when part of a streamed answer had already been passed on: such a call is never retried. */
  partial?: boolean;
  cause?: unknown;
}

/**
 * A failed model call. The message never holds the prompt, the answer or the key, so it may be
 * logged: it names the endpoint's status and, for errors, the endpoint's own error code and message.
 */
export class LlmError extends Error {
  readonly code: LlmErrorCode;
  readonly status: number | undefined;
  readonly attempts: number;
  readonly retryAfterMs: number | undefined;
  readonly partial: boolean;

  constructor(code: LlmErrorCode, message: string, details: LlmErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = code === 'aborted' ? 'AbortError' : 'LlmError';
    this.code = code;
    this.status = details.status;
    this.attempts = details.attempts ?? 0;
    this.retryAfterMs = details.retryAfterMs;
    this.partial = details.partial ?? false;
  }
}

/** A setting of `bot.config.llm` (or the environment) that cannot be used; `field` is its path. */
export class LlmConfigError extends Error {
  readonly code = 'invalid_llm_config';
  readonly field: string;

  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'LlmConfigError';
    this.field = field;
  }
}
