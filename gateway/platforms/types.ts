// The contract between the gateway and its chat-platform adapters (DESIGN §6, §7). Adapters are pure
// on the way in (a signed request in, CloudEvents and the answer out) and do their own HTTP on the way
// out, through the `fetch` the gateway hands them.
import type { IncomingHttpHeaders } from 'node:http';
import type { Conversation } from '../../eventing/chat.ts';
import type { CloudEvent } from '../../eventing/codec.ts';
import type { EgressLimiter } from './rate-limit.ts';

export type ChatPlatform = 'slack' | 'telegram' | 'discord' | 'line' | 'whatsapp';
export type IngressPlatform = ChatPlatform | 'cloudevents';

/** The channel keys of one platform, resolved from `bot.channels.<platform>` (DESIGN §7). */
export type Secrets = Readonly<Record<string, string | undefined>>;

/** A webhook as the gateway received it, before anything is parsed. */
export interface WebhookRequest {
  method: 'GET' | 'POST';
  /** As Node gives them (lower-case names); adapters also find a name given in another case. */
  headers: IncomingHttpHeaders;
  query: URLSearchParams;
  /** The exact bytes received: signatures are computed over them, never over re-serialized JSON. */
  rawBody: Buffer;
  /** The bot named in the path `/hooks/<platform>/<bot>`: the `chatbot` extension of every event. */
  bot: string;
  namespace: string;
}

/** What to answer the platform once the events are durably stored. */
export interface WebhookResponse {
  status: number;
  headers?: Record<string, string>;
  /** A string is sent as is; anything else as JSON. Absent: an empty body. */
  body?: unknown;
}

/**
 * A capability to answer one inbound event, kept by the gateway keyed by the normalized event's id and
 * never put in attributes, data or logs (DESIGN §6). JSON-serializable so any replica can store it.
 */
export interface ReplyHandle {
  platform: ChatPlatform;
  kind: 'slack.response_url' | 'telegram.reply_to' | 'discord.interaction' | 'line.reply_token';
  /** The response_url, interaction token or reply token (secret); for `telegram.reply_to` a message id. */
  value: string;
  /** When the platform stops honouring it, in ms since the epoch (also the event's `chatreplyby`). */
  expiresAt: number;
  uses: number;
  maxUses: number;
  /** Discord: the initial response was deferred ("thinking…"), so the first reply edits it. */
  editOriginal?: boolean;
}

/** One inbound platform event: its raw and normalized CloudEvents, stored and deduplicated together. */
export interface IngressEvent {
  raw: CloudEvent;
  normalized?: CloudEvent;
  replyHandle?: ReplyHandle;
  /** The platform says a message the gateway sent was not delivered after all (WhatsApp's `failed` status). */
  sendFailed?: SendFailure;
  /** `<source> <id>` of the platform's own event id: retries of the same event share it. */
  dedupeKey: string;
}

/** A sent message's late failure, as the platform reports it; names no text. */
export interface SendFailure {
  /** The platform's id of the message that failed (a `wamid`). */
  messageId: string;
  /** As a reply's own failure would be reported: `outside_customer_service_window`, or the platform's title. */
  reason: string;
  platformErrorCode?: number;
}

export interface WebhookResult {
  response: WebhookResponse;
  events: IngressEvent[];
}

/** A rejected webhook: `status` and `code` go into the problem answer; the message names no secret. */
export class WebhookError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string> | undefined;

  constructor(status: number, code: string, message: string, headers?: Record<string, string>) {
    super(message);
    this.name = 'WebhookError';
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A `Retry-After` longer than this is not waited for: the outcome is a retryable failure. */
  maxRetryAfterMs: number;
  /** Each attempt is abandoned after this long and counts as a network error. */
  attemptTimeoutMs: number;
}

export interface RetryInfo {
  attempt: number;
  delayMs: number;
  status?: number;
  reason: string;
}

/** What an egress call needs from the gateway: all I/O and time come from here. */
export interface EgressContext {
  /** The platform's API base URL, from `KNBOT_<PLATFORM>_API_URL` or the public default. */
  apiBase: string;
  fetch: typeof fetch;
  signal?: AbortSignal;
  now: () => number;
  /** Shared by every delivery (and, with Redis, by every replica), so limits hold across conversations. */
  limiter: EgressLimiter;
  retry?: Partial<RetryPolicy>;
  /** Told before each wait between attempts (for metrics; carries no secret and no text). */
  onRetry?: (info: RetryInfo) => void;
}

export type DeliveryOutcome =
  | {
      ok: true;
      platformMessageId?: string;
      /** Every message the reply went out as, where the platform may report one failed later (`reportsLateFailures`). */
      sentMessageIds?: string[];
      /** What to keep for the next reply: a new handle, or `null` to forget it. Absent: keep it as it is. */
      handle?: ReplyHandle | null;
    }
  | {
      ok: false;
      status?: number;
      reason: string;
      /** True when the same delivery may succeed later (network, 429, 5xx); false for 4xx and bad replies. */
      retryable: boolean;
      retryAfterMs?: number;
      /** The platform's own error code, where it names the case (Graph `error.code`: 131047 = outside the 24-hour window). */
      platformErrorCode?: number;
      handle?: ReplyHandle | null;
    };

/** Where a typing indicator goes: the conversation, and what is known of the message being answered. */
export interface TypingTarget {
  conversation: Conversation;
  /** The platform's id of the message being answered (WhatsApp's `wamid`, which its indicator needs). */
  messageId?: string;
  /** The message's reply handle: a Discord interaction deferred with "thinking…" needs no indicator. */
  handle?: ReplyHandle;
  /**
   * How long the bot may take to answer, in seconds, when known: where the platform asks how long to
   * show the indicator (LINE), it is that, within the platform's bounds.
   */
  seconds?: number;
}

/**
 * What became of a typing indicator. It is best effort: `skipped` when the platform has none for this
 * conversation or its rate limit has no token to spare, `failed` when the platform refused it.
 */
export type TypingOutcome = { result: 'shown' } | { result: 'skipped'; reason: string } | { result: 'failed'; reason: string; status?: number };

export interface IngressAdapter {
  readonly platform: IngressPlatform;
  /** Verifies, parses and normalizes one webhook. Throws `WebhookError` and nothing else. */
  handleWebhook(req: WebhookRequest, secrets: Secrets, nowMs: number): WebhookResult;
}

export interface ChatAdapter extends IngressAdapter {
  readonly platform: ChatPlatform;
  /** Environment variable that overrides the API base URL, and the public default. */
  readonly apiBaseEnv: string;
  readonly defaultApiBase: string;
  /**
   * The platform may take a message and report later, in a webhook, that it failed (WhatsApp: a `failed`
   * status, 131047 among others). The gateway then remembers what it sent, to turn that into `reply.failed`.
   */
  readonly reportsLateFailures?: boolean;
  /** Delivers a `dev.knbot.chat.reply.send` event. Never throws: failures are outcomes. */
  deliverReply(reply: CloudEvent, handle: ReplyHandle | undefined, secrets: Secrets, ctx: EgressContext): Promise<DeliveryOutcome>;
  /** Shows the platform's typing indicator once: one attempt, never waiting for a rate limit. Never throws. */
  startTyping(target: TypingTarget, secrets: Secrets, ctx: EgressContext): Promise<TypingOutcome>;
}
