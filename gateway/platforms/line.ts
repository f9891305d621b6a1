// LINE Messaging API webhooks: `{destination, events[]}` signed with base64 HMAC-SHA256 of the body
// under the channel secret (no timestamp, so no replay window beyond deduplication on webhookEventId).
// Replies use the event's replyToken (single use, about one minute), else push with a retry key.
// https://developers.line.biz/en/docs/messaging-api/verify-webhook-signature,
// https://developers.line.biz/en/reference/messaging-api/#webhook-event-objects
import { createHash } from 'node:crypto';
import { conversationOfEvent } from '../../eventing/chat.ts';
import type { CloudEvent } from '../../eventing/codec.ts';
import { type Button, fit, replyButtons, wireId, withNumberedList } from './buttons.ts';
import { type ApiResult, type Verdict, callApi, credentialKey, failed, httpVerdict, missingSecret, replyText, splitText } from './egress.ts';
import { ACTION_INVOKED, type Attachment, type ChatData, type ChatUser, type EventParts, MEMBER_JOINED, MESSAGE_RECEIVED, type Mention, ingressEvent, msToTime, str, typeSegment, without } from './events.ts';
import type { BucketSpec } from './rate-limit.ts';
import type { ChatAdapter, DeliveryOutcome, EgressContext, IngressEvent, ReplyHandle, Secrets, TypingOutcome, TypingTarget, WebhookRequest, WebhookResult } from './types.ts';
import { loadingSeconds, perConversation, shared, skipped, typingCall } from './typing.ts';
import { hmacSha256, headerValue, isObject, malformed, parseBase64, parseJson, requirePost, requireSecret, safeEqual, unauthorized } from './verify.ts';

type Obj = Record<string, unknown>;

/** "The reply token must be used within one minute of receiving the webhook." */
export const REPLY_TOKEN_TTL_MS = 60_000;
/** A text message holds at most 5000 characters; one request carries at most 5 messages. */
const MAX_TEXT = 5000;
const MAX_MESSAGES = 5;

export function handleLineWebhook(req: WebhookRequest, secrets: Secrets, nowMs: number): WebhookResult {
  requirePost(req.method);
  const secret = requireSecret(secrets, 'channelSecret', 'line');
  const given = headerValue(req.headers, 'x-line-signature');
  const mac = given === undefined ? undefined : parseBase64(given, 32);
  if (!mac || !safeEqual(mac, hmacSha256(secret, req.rawBody))) throw unauthorized('bad_signature', 'X-Line-Signature is missing or does not match the body');
  const body = parseJson(req.rawBody);
  if (!isObject(body) || typeof body.destination !== 'string' || !Array.isArray(body.events)) throw malformed('a LINE webhook is {destination, events[]}');
  // The console's "Verify" button sends no events: it only wants the 200.
  const events = body.events.map((e, i) => fromEvent(e, i, body.destination as string, req, nowMs));
  return { response: { status: 200 }, events };
}

function fromEvent(event: unknown, index: number, destination: string, req: WebhookRequest, nowMs: number): IngressEvent {
  if (!isObject(event) || typeof event.type !== 'string') throw malformed(`events[${index}] needs a type`);
  const id = str(event.webhookEventId);
  if (id === undefined) throw malformed(`events[${index}] has no webhookEventId`);
  const src = isObject(event.source) ? event.source : {};
  const conversationId = str(src.groupId) ?? str(src.roomId) ?? str(src.userId);
  const userId = str(src.userId);
  const delivery = isObject(event.deliveryContext) ? event.deliveryContext : {};
  const parts: EventParts = {
    platform: 'line',
    source: `/line/channels/${destination}`,
    id,
    rawType: `dev.knbot.line.event.${typeSegment(event.type)}`,
    // One event per CloudEvent, in the webhook's own envelope; the replyToken goes to the handle only.
    rawData: { destination, events: [without(event, 'replyToken')] },
    bot: req.bot,
    tenant: destination,
    redelivery: delivery.isRedelivery === true,
  };
  const time = msToTime(event.timestamp);
  if (time) parts.time = time;
  if (userId) parts.user = userId;
  if (conversationId) parts.conversation = { id: conversationId };
  // In standby mode another channel owns the chat (module channels): listen, never answer.
  if (event.mode === 'standby' || !conversationId) return ingressEvent(parts);

  const normalized = normalize(event, { id: conversationId }, userId);
  if (normalized) parts.normalized = normalized;
  const replyToken = str(event.replyToken);
  if (normalized && replyToken) {
    parts.replyHandle = { platform: 'line', kind: 'line.reply_token', value: replyToken, expiresAt: nowMs + REPLY_TOKEN_TTL_MS, uses: 0, maxUses: 1 };
  }
  return ingressEvent(parts);
}

function normalize(event: Obj, conversation: { id: string }, userId: string | undefined): { type: string; data: ChatData } | undefined {
  if (event.type === 'memberJoined') {
    const joined = isObject(event.joined) && Array.isArray(event.joined.members) ? event.joined.members : [];
    const members = joined.filter(isObject).flatMap((m): ChatUser[] => (typeof m.userId === 'string' ? [{ id: m.userId }] : []));
    return members.length ? { type: MEMBER_JOINED, data: { text: '', user: members[0]!, conversation, members } } : undefined;
  }
  if (!userId) return undefined;
  const user = { id: userId };
  // A follow is a user adding the bot as a friend: they joined its one-to-one chat.
  if (event.type === 'follow') return { type: MEMBER_JOINED, data: { text: '', user, conversation, members: [user] } };
  if (event.type === 'postback' && isObject(event.postback)) {
    // A quick reply button's postback data is the button's id.
    const value = str(event.postback.data) ?? '';
    return { type: ACTION_INVOKED, data: { text: value, user, conversation, action: { type: 'postback', id: value, value } } };
  }
  if (event.type !== 'message' || !isObject(event.message)) return undefined;
  const m = event.message;
  const data: ChatData = { text: m.type === 'text' ? (str(m.text) ?? '') : '', user, conversation };
  if (m.type !== 'text') {
    const a: Attachment = { type: str(m.type) ?? 'unknown' };
    if (typeof m.id === 'string') a.id = m.id;
    if (typeof m.fileName === 'string') a.name = m.fileName;
    data.attachments = [a];
  }
  const mentions = mentionsOf(m.mention);
  if (mentions.length) data.mentions = mentions;
  return { type: MESSAGE_RECEIVED, data };
}

function mentionsOf(mention: unknown): Mention[] {
  if (!isObject(mention) || !Array.isArray(mention.mentionees)) return [];
  return mention.mentionees.filter(isObject).flatMap((m): Mention[] => (typeof m.userId === 'string' ? [{ id: m.userId }] : []));
}

// --- egress ---------------------------------------------------------------------------------------

/** The reply and push endpoints allow 2,000 requests per second per channel (LINE "Rate limits"). */
export function lineLimits(token: string): BucketSpec[] {
  return [{ key: credentialKey('line', token), capacity: 2000, perSecond: 2000 }];
}

/**
 * The X-Line-Retry-Key of one push: a UUID derived from the reply event's source and id and the part's
 * index, so every retry of that push (ours, and the broker's redeliveries of the same reply within
 * LINE's 24 hours) presents the same key and LINE sends it at most once (409 after the first).
 */
export function lineRetryKey(reply: CloudEvent, part: number): string {
  const h = createHash('sha256').update(`${reply.source}\n${reply.id}\n${part}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x80; // version 8: custom (RFC 9562 §5.8)
  h[8] = (h[8]! & 0x3f) | 0x80; // variant 10
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** 409 to a push with a retry key means LINE already accepted that very request: delivered. */
function pushVerdict(status: number, body: unknown): Verdict {
  return status === 409 ? 'ok' : httpVerdict(status, body);
}

function isInvalidReplyToken(r: ApiResult): boolean {
  return !r.ok && r.status === 400 && /invalid reply token/i.test(r.reason);
}

function sentId(body: unknown): string | undefined {
  const sent = isObject(body) && Array.isArray(body.sentMessages) ? body.sentMessages[0] : undefined;
  return isObject(sent) ? str(sent.id) : undefined;
}

// Quick reply (developers.line.biz/en/reference/messaging-api/#quick-reply): at most 13 items, each a
// postback action whose label holds at most 20 characters and data and displayText at most 300.
const QUICK_REPLY_ITEMS = 13;
const QUICK_REPLY_LABEL = 20;
const DISPLAY_TEXT = 300;

/**
 * A quick reply of postback buttons (`data` = the button's id; the label, as `displayText`, is what the
 * chat shows the user saying). Shown under the message it is attached to until the user answers.
 */
export function lineQuickReply(buttons: readonly Button[]): Obj {
  return {
    items: buttons.map((b) => ({
      type: 'action',
      action: { type: 'postback', label: fit(b.label, QUICK_REPLY_LABEL), data: wireId('line', b.id), displayText: fit(b.label, DISPLAY_TEXT) },
    })),
  };
}

/**
 * The reply's messages: its text in pieces of 5,000 characters, the quick reply on the last. With more
 * buttons than a quick reply holds, they are listed by number under the text instead.
 */
export function lineMessages(text: string, buttons: readonly Button[]): Obj[] {
  const many = buttons.length > QUICK_REPLY_ITEMS;
  const messages: Obj[] = splitText(many ? withNumberedList(text, buttons) : text, MAX_TEXT).map((t) => ({ type: 'text', text: t }));
  if (buttons.length && !many) messages[messages.length - 1]!.quickReply = lineQuickReply(buttons);
  return messages;
}

export async function deliverLineReply(reply: CloudEvent, handle: ReplyHandle | undefined, secrets: Secrets, ctx: EgressContext): Promise<DeliveryOutcome> {
  const text = replyText(reply);
  if (typeof text !== 'string') return text;
  const token = secrets.channelAccessToken;
  if (!token) return missingSecret('line', 'channelAccessToken');
  const messages = lineMessages(text, replyButtons(reply.data).buttons);
  const batches: (typeof messages)[] = [];
  for (let i = 0; i < messages.length; i += MAX_MESSAGES) batches.push(messages.slice(i, i + MAX_MESSAGES));
  const auth = { authorization: `Bearer ${token}` };
  const done = (out: DeliveryOutcome): DeliveryOutcome => (handle ? { ...out, handle: null } : out);
  let messageId: string | undefined;
  let first = 0;

  // The token is single use: whatever happens to this call, it is spent.
  if (handle?.kind === 'line.reply_token' && handle.uses < handle.maxUses && handle.expiresAt > ctx.now()) {
    const r = await callApi(ctx, { method: 'POST', url: `${ctx.apiBase}/v2/bot/message/reply`, headers: auth, body: { replyToken: handle.value, messages: batches[0] }, limits: lineLimits(token) });
    if (r.ok) {
      messageId = sentId(r.body);
      first = 1;
    } else if (!isInvalidReplyToken(r)) return done(failed(r));
  }

  const to = conversationOfEvent(reply).id;
  for (let i = first; i < batches.length; i++) {
    const headers = { ...auth, 'x-line-retry-key': lineRetryKey(reply, i) };
    const r = await callApi(ctx, { method: 'POST', url: `${ctx.apiBase}/v2/bot/message/push`, headers, body: { to, messages: batches[i] }, limits: lineLimits(token) }, pushVerdict);
    if (!r.ok) return done(failed(r));
    messageId ??= sentId(r.body);
  }
  return done(messageId === undefined ? { ok: true } : { ok: true, platformMessageId: messageId });
}

/**
 * The loading animation, `POST /v2/bot/chat/loading/start {chatId, loadingSeconds}`: shown until the
 * bot's next message or for 5–60 seconds (a multiple of 5). One-to-one chats only: their conversation
 * is the user's id (`U…`); a group's is `C…` and a room's `R…`.
 * https://developers.line.biz/en/reference/messaging-api/#display-a-loading-indicator
 */
export async function startLineTyping(target: TypingTarget, secrets: Secrets, ctx: EgressContext): Promise<TypingOutcome> {
  const chatId = target.conversation.id;
  if (!chatId.startsWith('U')) return skipped('LINE shows a loading animation in one-to-one chats only');
  const token = secrets.channelAccessToken;
  if (!token) return skipped('the line channel has no channelAccessToken configured');
  const body = { chatId, loadingSeconds: loadingSeconds(target.seconds) };
  const limits = [shared(lineLimits(token)[0]!), perConversation('line', token, chatId)];
  return typingCall(ctx, { method: 'POST', url: `${ctx.apiBase}/v2/bot/chat/loading/start`, headers: { authorization: `Bearer ${token}` }, body, limits });
}

export const line: ChatAdapter = {
  platform: 'line',
  apiBaseEnv: 'KNBOT_LINE_API_URL',
  defaultApiBase: 'https://api.line.me',
  handleWebhook: handleLineWebhook,
  deliverReply: deliverLineReply,
  startTyping: startLineTyping,
};
