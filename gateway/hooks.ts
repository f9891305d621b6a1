import express from 'express';
import { ACTION_INVOKED, CARRIED_EXTENSIONS, MESSAGE_RECEIVED, REPLY_CHUNK, REPLY_SEND, STREAM_EXTENSION, TYPING_START, conversationOfEvent } from '../eventing/chat.ts';
import type { CloudEvent } from '../eventing/codec.ts';
import { ingressTraceparent } from '../eventing/trace-context.ts';
import { Tracing, failSpan } from '../runtime/tracing.ts';
import { BrokerUnavailableError } from './broker-client.ts';
import {
  CHAT_ADAPTERS,
  INGRESS_ADAPTERS,
  type ChatPlatform,
  type DeliveryOutcome,
  type EgressContext,
  type EgressLimiter,
  type IngressPlatform,
  RateLimiter,
  type ReplyHandle,
  type Secrets,
  type SendFailure,
  WebhookError,
  apiBasesFromEnv,
  isChatPlatform,
  isIngressPlatform,
  replyButtons,
  replyOutcomeEvent,
} from './platforms/index.ts';
import { rememberButtons, restoreAction } from './platform-buttons.ts';
import { PlatformStreams } from './platform-stream.ts';
import { type PlatformTyping, ingressTypingTarget, typingRequest } from './platform-typing.ts';
import type { GatewayStore } from './store.ts';

/** A bot's channel keys for one platform, resolved from `bot.channels` (DESIGN §7); undefined: no such channel. */
export type ChannelSecrets = (bot: string, platform: IngressPlatform) => Secrets | undefined;

export interface HookOptions {
  store: GatewayStore;
  send: (event: CloudEvent) => Promise<void>;
  channels: ChannelSecrets;
  namespace: string;
  maxBodyBytes: number;
  /** How long a platform event id is remembered: at least the platform's retry horizon. */
  dedupeTtlMs: number;
  /** Shows each platform's typing indicator once a message is handed to a bot; absent: none. */
  typing?: PlatformTyping;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

const PENDING = 'pending';
const STORED = 'stored';
/** How long an event may be `pending`: past it, a gateway that died while storing it no longer blocks its retries. */
const PENDING_TTL_MS = 30_000;
const handleKey = (platform: string, bot: string, id: string) => `h:${platform}:${bot}:${id}`;
/** Set once a message's final reply went out (or failed for good): its typing indicator stops. */
const answeredKey = (platform: string, bot: string, id: string) => `a:${platform}:${bot}:${id}`;
const ANSWERED_TTL_MS = 3600_000;
/** A message sent on a platform that may report it failed later: the reply it was, by the platform's message id. */
const sentKey = (platform: string, bot: string, messageId: string) => `s:${platform}:${bot}:${messageId}`;
/** Late failures come in seconds or minutes (131047 at once); a day covers a phone that was off. */
const SENT_TTL_MS = 24 * 3600_000;
/** `source` of the outcome events the gateway emits. */
export const GATEWAY_SOURCE = '/knbot/gateway';

/** Keeps a reply handle for as long as the platform honours it, and a minute more. */
async function keepHandle(store: GatewayStore, key: string, handle: ReplyHandle): Promise<void> {
  await store.put(key, JSON.stringify(handle), Math.max(1000, handle.expiresAt - Date.now() + 60_000));
}

/**
 * `/hooks/<platform>/<bot>` (DESIGN §7): the signature checked on the raw bytes first, then every event
 * of the payload stored in the broker (raw and normalized), each platform event once whatever the
 * platform's retries, and only then the platform's answer — never after the bot, so a cold start
 * never makes a platform wait past its deadline.
 */
export function webhookRoutes(o: HookOptions): express.Router {
  const router = express.Router();
  const tracing = new Tracing({ 'knbot.component': 'gateway' });
  const raw = express.raw({ type: () => true, limit: o.maxBodyBytes });
  const handle = async (req: express.Request, res: express.Response) => {
    const platform = String(req.params.platform);
    const bot = String(req.params.bot);
    if (!isIngressPlatform(platform)) return problem(res, 404, 'unknown_platform', `no platform ${platform}: one of ${Object.keys(INGRESS_ADAPTERS).join(', ')}`);
    const secrets = o.channels(bot, platform);
    if (!secrets) return problem(res, 404, 'unknown_channel', `bot ${bot} has no ${platform} channel here`);
    let result;
    try {
      result = INGRESS_ADAPTERS[platform].handleWebhook(
        {
          method: req.method === 'GET' ? 'GET' : 'POST',
          headers: req.headers,
          query: new URL(req.originalUrl, 'http://gateway').searchParams,
          rawBody: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
          bot,
          namespace: o.namespace,
        },
        secrets,
        Date.now(),
      );
    } catch (err) {
      if (!(err instanceof WebhookError)) throw err;
      o.log('webhook refused', { platform, bot, status: err.status, code: err.code });
      return problem(res, err.status, err.code, err.message, err.headers);
    }
    // An event id is claimed as `pending` while it is being stored, and marked `stored` only once the
    // broker has it: a retry that finds it pending (the first attempt still at work, or a gateway that
    // died meanwhile) is asked to come back rather than acknowledged as a duplicate of nothing.
    const claimed: string[] = [];
    try {
      for (const e of result.events) {
        const key = `d:${e.dedupeKey}`;
        const held = await o.store.claim(key, PENDING, PENDING_TTL_MS);
        if (held === STORED) continue;
        if (held !== undefined) {
          await Promise.all(claimed.map((k) => o.store.delete(k).catch(() => {})));
          return problem(res, 503, 'in_progress', 'this event is being stored: try again shortly', { 'retry-after': '2' });
        }
        claimed.push(key);
        if (e.replyHandle && e.normalized) await keepHandle(o.store, handleKey(platform, bot, e.normalized.id), e.replyHandle);
        // One trace per platform event starts here: the bot's turn, and what it calls, continue it.
        const span = tracing.start(`webhook ${platform}`, undefined);
        span.setAttribute('knbot.bot', bot);
        span.setAttribute('knbot.platform', platform);
        const traceparent = ingressTraceparent(span.spanContext());
        try {
          await o.send({ ...e.raw, traceparent });
          if (e.sendFailed && isChatPlatform(platform)) await sendLateFailure(o, platform, bot, e.sendFailed);
          if (e.normalized && isChatPlatform(platform)) await restoreButton(o, platform, bot, e.normalized);
          if (e.normalized) {
            // Where the platform can edit a message, the bot streams its reply (to a message, or to a button
            // pressed) and the gateway edits as it comes.
            if ((e.normalized.type === MESSAGE_RECEIVED || e.normalized.type === ACTION_INVOKED) && PlatformStreams.streams(platform)) e.normalized[STREAM_EXTENSION] = 'true';
            await o.send({ ...e.normalized, traceparent });
          }
          span.end();
        } catch (err) {
          failSpan(span, err);
          throw err;
        }
      }
    } catch (err) {
      // Nothing is acknowledged: the platform sends again, and the claims must not make that a duplicate.
      await Promise.all(claimed.map((k) => o.store.delete(k).catch(() => {})));
      if (!(err instanceof BrokerUnavailableError)) throw err;
      o.log('webhook not stored', { platform, bot, error: err.message });
      return problem(res, 503, 'unavailable', 'the event could not be stored: try again', { 'retry-after': '1' });
    }
    // The bot has its messages: the platform shows it typing while it wakes and answers. Not awaited,
    // so the acknowledgement never waits on a platform API; the indicator never fails the webhook.
    if (o.typing && isChatPlatform(platform)) {
      for (const e of result.events) {
        if (!claimed.includes(`d:${e.dedupeKey}`)) continue;
        const target = ingressTypingTarget(e);
        if (target) void o.typing.keepShowing(platform, bot, secrets, target, async () => (await o.store.get(answeredKey(platform, bot, target.messageId!))) !== undefined);
      }
    }
    for (const key of claimed) await o.store.put(key, STORED, o.dedupeTtlMs);
    const { status, headers, body } = result.response;
    res.status(status).set(headers ?? {});
    if (body === undefined) return void res.end();
    if (typeof body === 'string') return void res.send(body);
    res.json(body);
  };
  router.post('/hooks/:platform/:bot', raw, handle);
  router.get('/hooks/:platform/:bot', handle);
  return router;
}

/**
 * A message the platform took and now reports failed: the reply it belonged to fails, as a
 * `reply.failed` with `late: true` after its `reply.delivered`. One per reply, whichever of its messages
 * failed (the outcome's id is the reply's). A message this gateway did not send, or sent over a day ago,
 * stays a raw status event only.
 */
async function sendLateFailure(o: HookOptions, platform: ChatPlatform, bot: string, failure: SendFailure): Promise<void> {
  const sent = await o.store.get(sentKey(platform, bot, failure.messageId));
  if (sent === undefined) return;
  const outcome: DeliveryOutcome = { ok: false, reason: failure.reason, retryable: false };
  if (failure.platformErrorCode !== undefined) outcome.platformErrorCode = failure.platformErrorCode;
  const event = replyOutcomeEvent(JSON.parse(sent) as CloudEvent, outcome, GATEWAY_SOURCE, Date.now());
  Object.assign(event.data as Record<string, unknown>, { platformMessageId: failure.messageId, late: true });
  await o.send(event);
  o.log('reply failed after delivery', { platform, bot, id: event.id, code: failure.platformErrorCode });
}

/** What a late failure needs of a reply to name it: its id, source, subject, chat extensions and `inReplyTo`; no text. */
function sentReply(reply: CloudEvent): string {
  const kept: CloudEvent = { specversion: '1.0', id: reply.id, source: reply.source, type: reply.type };
  if (reply.subject !== undefined) kept.subject = reply.subject;
  for (const name of CARRIED_EXTENSIONS) if (reply[name] !== undefined) kept[name] = reply[name];
  const inReplyTo = (reply.data as { inReplyTo?: unknown } | undefined)?.inReplyTo;
  if (typeof inReplyTo === 'string') kept.data = { inReplyTo };
  return JSON.stringify(kept);
}

/** A press on a button the gateway sent names the bot's own id and value; the store failing only loses that. */
async function restoreButton(o: HookOptions, platform: ChatPlatform, bot: string, event: CloudEvent): Promise<void> {
  try {
    await restoreAction(o.store, platform, bot, event);
  } catch (err) {
    o.log('button press not mapped back', { platform, bot, id: event.id, error: (err as Error).message });
  }
}

export interface EgressOptions {
  store: GatewayStore;
  send: (event: CloudEvent) => Promise<void>;
  channels: ChannelSecrets;
  /** Each platform's API base and the gateway's one rate limiter (`egressContexts`). */
  context: (platform: ChatPlatform) => EgressContext;
  typing: PlatformTyping;
  /** `source` of the outcome events. */
  source: string;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

/**
 * Each platform's egress context, from `KNBOT_<PLATFORM>_API_URL` (read once), all sharing one rate
 * limiter, so replies and typing indicators count against the same platform limits whichever
 * conversation they belong to: this process's buckets, or the store's when replicas share one (Redis).
 */
export function egressContexts(
  env: Readonly<Record<string, string | undefined>>,
  log: (msg: string, fields?: Record<string, unknown>) => void,
  limiter: EgressLimiter = new RateLimiter(),
): (platform: ChatPlatform) => EgressContext {
  const bases = apiBasesFromEnv(env);
  const made = new Map<ChatPlatform, EgressContext>();
  const make = (platform: ChatPlatform): EgressContext => ({
    apiBase: bases[platform],
    fetch,
    now: Date.now,
    limiter,
    onRetry: (info) => log('platform retry', { platform, attempt: info.attempt, delayMs: info.delayMs, status: info.status }),
  });
  return (platform) => made.get(platform) ?? made.set(platform, make(platform)).get(platform)!;
}

/**
 * Bot output for chat platforms. Replies are delivered through the platform's API with the reply
 * handle kept at ingress, once per reply whatever the broker's redeliveries, then a `reply.delivered`
 * or `reply.failed` event. A failure that may pass (network, 429, 5xx, after the adapter's own retries)
 * is thrown, so the broker retries with its backoff and finally dead-letters it. A typing indicator is
 * shown once, and acknowledged whatever the platform said (it is best effort); a malformed one is
 * rejected (`EgressRejection`, a 400).
 */
export function platformEgress(o: EgressOptions): (event: CloudEvent) => Promise<'delivered' | 'ignored'> {
  const context = o.context;
  const handleOf = async (platform: ChatPlatform, bot: string, inReplyTo: string): Promise<ReplyHandle | undefined> => {
    const stored = await o.store.get(handleKey(platform, bot, inReplyTo));
    return stored ? (JSON.parse(stored) as ReplyHandle) : undefined;
  };
  const streams = new PlatformStreams({
    store: o.store,
    context,
    handle: handleOf,
    keepHandle: (platform, bot, inReplyTo, handle) => keepHandle(o.store, handleKey(platform, bot, inReplyTo), handle),
    log: o.log,
  });
  const typing = async (event: CloudEvent): Promise<'delivered' | 'ignored'> => {
    const { platform, bot, target } = typingRequest(event);
    if (!isChatPlatform(platform)) return 'ignored';
    const secrets = o.channels(bot, platform);
    if (!secrets) {
      o.log('typing for a channel not configured here', { platform, bot, id: event.id });
      return 'ignored';
    }
    // Only Discord's indicator depends on the reply handle (none while a command shows "thinking…").
    let handle: ReplyHandle | undefined;
    if (platform === 'discord' && target.messageId !== undefined) {
      handle = await handleOf(platform, bot, target.messageId).catch((err: Error) => {
        o.log('typing: reply handle not read', { platform, bot, error: err.message });
        return undefined;
      });
    }
    await o.typing.show(platform, bot, secrets, handle ? { ...target, handle } : target);
    return 'delivered';
  };
  return async (event) => {
    if (event.type === TYPING_START) return typing(event);
    const platform = String(event.chatplatform ?? '');
    const bot = String(event.chatbot ?? '');
    if ((event.type !== REPLY_SEND && event.type !== REPLY_CHUNK) || !isChatPlatform(platform) || !bot) return 'ignored';
    const data = (event.data ?? {}) as { text?: unknown; inReplyTo?: unknown };
    if (typeof data.text !== 'string' || data.text === '') return 'ignored';
    const secrets = o.channels(bot, platform);
    if (!secrets) {
      o.log('reply for a channel not configured here', { platform, bot, id: event.id });
      return 'ignored';
    }
    if (event.type === REPLY_CHUNK) {
      await streams.chunk(event, platform, bot, secrets);
      return 'delivered';
    }
    const doneKey = `r:${event.source}:${event.id}`;
    if ((await o.store.get(doneKey)) !== undefined) return 'delivered';
    // Buttons the adapters cannot use leave the reply as text; the log names the field, not the text.
    const { buttons, problem } = replyButtons(data);
    if (problem) o.log('reply buttons left out', { platform, bot, id: event.id, code: problem.code, path: problem.path });
    // Remembered before they are sent, so the quickest press finds them.
    if (buttons.length) await rememberButtons(o.store, platform, bot, conversationOfEvent(event).id, buttons);
    // Marked only where an indicator is being kept up until the reply.
    const answered = () =>
      typeof data.inReplyTo === 'string' && o.typing.refreshMs(platform) !== undefined ? o.store.claim(answeredKey(platform, bot, data.inReplyTo), '1', ANSWERED_TTL_MS).then(() => {}) : Promise.resolve();
    if (await streams.finish(event, platform, bot, secrets)) {
      await o.store.claim(doneKey, '1', 24 * 3600_000);
      await answered();
      await o.send(replyOutcomeEvent(event, { ok: true }, o.source, Date.now())).catch((err: Error) => o.log('outcome event not stored', { error: err.message }));
      return 'delivered';
    }
    const hKey = typeof data.inReplyTo === 'string' ? handleKey(platform, bot, data.inReplyTo) : undefined;
    const handle = typeof data.inReplyTo === 'string' ? await handleOf(platform, bot, data.inReplyTo) : undefined;
    const outcome = await CHAT_ADAPTERS[platform].deliverReply(event, handle, secrets, context(platform));
    if (hKey && outcome.handle !== undefined) {
      if (outcome.handle) await keepHandle(o.store, hKey, outcome.handle);
      else await o.store.delete(hKey);
    }
    if (!outcome.ok && outcome.retryable) {
      o.log('reply not delivered yet', { platform, bot, id: event.id, status: outcome.status, reason: outcome.reason });
      throw new Error(`${platform} did not take the reply yet: ${outcome.reason}`);
    }
    if (outcome.ok) {
      await o.store.claim(doneKey, '1', 24 * 3600_000);
      if (CHAT_ADAPTERS[platform].reportsLateFailures) {
        const ids = outcome.sentMessageIds ?? (outcome.platformMessageId !== undefined ? [outcome.platformMessageId] : []);
        const kept = sentReply(event);
        // The reply went out: failing to remember it only loses a late failure, never the outcome event.
        await Promise.all(ids.map((id) => o.store.put(sentKey(platform, bot, id), kept, SENT_TTL_MS))).catch((err: Error) => o.log('sent message not remembered', { platform, bot, id: event.id, error: err.message }));
      }
    }
    await answered();
    await o.send(replyOutcomeEvent(event, outcome, o.source, Date.now())).catch((err: Error) => o.log('outcome event not stored', { error: err.message }));
    if (!outcome.ok) o.log('reply failed', { platform, bot, id: event.id, status: outcome.status, reason: outcome.reason });
    return 'delivered';
  };
}

function problem(res: express.Response, status: number, code: string, detail: string, headers: Record<string, string> = {}): void {
  res.status(status).set(headers).type('application/problem+json').send(JSON.stringify({ type: `urn:knbot:problem:${code}`, title: code.replace(/_/g, ' '), status, detail }));
}
