// Telegram Bot API webhooks: one Update per request, authenticated by the secret_token given to
// setWebhook (a shared secret, not a signature: there is no body MAC and no timestamp, so no replay
// window beyond deduplication on update_id). Replies with sendMessage.
// https://core.telegram.org/bots/api#setwebhook, https://core.telegram.org/bots/api#update
import type { Conversation } from '../../eventing/chat.ts';
import { conversationOfEvent } from '../../eventing/chat.ts';
import type { CloudEvent } from '../../eventing/codec.ts';
import { type Button, fit, replyButtons, wireId } from './buttons.ts';
import { type ApiResult, type Verdict, callApi, credentialKey, failed, httpVerdict, missingSecret, replyText, splitText } from './egress.ts';
import { ACTION_INVOKED, type Attachment, type ChatData, type ChatUser, type EventParts, MEMBER_JOINED, MESSAGE_RECEIVED, type Mention, ingressEvent, secondsToTime, str, typeSegment } from './events.ts';
import type { BucketSpec } from './rate-limit.ts';
import type { ChatAdapter, DeliveryOutcome, EgressContext, ReplyHandle, Secrets, TypingOutcome, TypingTarget, WebhookRequest, WebhookResult } from './types.ts';
import { perConversation, shared, skipped, typingCall } from './typing.ts';
import { headerValue, isObject, malformed, parseJson, requirePost, requireSecret, secretEquals, unauthorized } from './verify.ts';

type Obj = Record<string, unknown>;

/** sendMessage takes 1–4096 characters of text. */
const MAX_TEXT = 4096;
/** Updates are kept at most 24 hours; a message stays quotable for longer, but the handle need not. */
const REPLY_TO_TTL_MS = 48 * 3_600_000;
const MESSAGE_KINDS = new Set(['message', 'channel_post', 'business_message']);

export function handleTelegramWebhook(req: WebhookRequest, secrets: Secrets, nowMs: number): WebhookResult {
  requirePost(req.method);
  const expected = requireSecret(secrets, 'secretToken', 'telegram');
  const given = headerValue(req.headers, 'x-telegram-bot-api-secret-token');
  if (given === undefined || !secretEquals(given, expected)) throw unauthorized('bad_secret_token', 'X-Telegram-Bot-Api-Secret-Token is missing or wrong');
  const update = parseJson(req.rawBody);
  if (!isObject(update) || typeof update.update_id !== 'number') throw malformed('an Update needs a numeric update_id');
  const kind = Object.keys(update).find((k) => k !== 'update_id');
  if (kind === undefined || !isObject(update[kind])) throw malformed('an Update carries one object besides update_id');
  const body = update[kind] as Obj;

  // update_id is unique per bot only; the bot's numeric id (the token's prefix) scopes it.
  const botId = /^(\d+):/.exec(secrets.botToken ?? '')?.[1] ?? req.bot;
  const parts: EventParts = {
    platform: 'telegram',
    source: `/telegram/bots/${botId}`,
    id: String(update.update_id),
    rawType: `dev.knbot.telegram.update.${typeSegment(kind)}`,
    rawData: update,
    bot: req.bot,
    tenant: botId,
  };
  let response: WebhookResult['response'] = { status: 200 };
  if (MESSAGE_KINDS.has(kind)) fromMessage(body, parts, nowMs);
  else if (kind === 'callback_query') {
    fromCallbackQuery(body, parts);
    // Answering in the webhook response stops the client's spinner without another API call.
    if (typeof body.id === 'string') response = { status: 200, headers: { 'content-type': 'application/json' }, body: { method: 'answerCallbackQuery', callback_query_id: body.id } };
  } else if (kind === 'chat_member') fromChatMember(body, parts);
  else describeOther(body, parts);
  return { response, events: [ingressEvent(parts)] };
}

function fromMessage(msg: Obj, parts: EventParts, nowMs: number): void {
  const chat = isObject(msg.chat) ? msg.chat : undefined;
  const chatId = chat ? str(chat.id) : undefined;
  const from = userOf(msg.from) ?? userOf(msg.sender_chat);
  const time = secondsToTime(msg.date);
  if (time) parts.time = time;
  if (!chatId) return;
  const thread = msg.is_topic_message === true ? str(msg.message_thread_id) : undefined;
  const conversation: Conversation = thread ? { id: chatId, thread } : { id: chatId };
  parts.conversation = conversation;
  if (from) parts.user = from.id;
  if (!from) return;

  if (Array.isArray(msg.new_chat_members) && msg.new_chat_members.length) {
    const members = msg.new_chat_members.map(userOf).filter((u): u is ChatUser => u !== undefined);
    if (members.length) parts.normalized = { type: MEMBER_JOINED, data: { text: '', user: members[0]!, conversation, members } };
    return;
  }
  const text = str(msg.text) ?? str(msg.caption) ?? '';
  const attachments = attachmentsOf(msg);
  if (text === '' && !attachments.length) return; // service messages (pins, title changes…) stay raw
  const data: ChatData = { text, user: from, conversation };
  if (attachments.length) data.attachments = attachments;
  const mentions = mentionsOf(text, msg.entities ?? msg.caption_entities);
  if (mentions.length) data.mentions = mentions;
  parts.normalized = { type: MESSAGE_RECEIVED, data };
  // In groups a reply quotes the message it answers, so the thread of talk stays readable.
  if (chat!.type !== 'private' && chat!.type !== 'channel' && typeof msg.message_id === 'number') {
    parts.replyHandle = { platform: 'telegram', kind: 'telegram.reply_to', value: String(msg.message_id), expiresAt: nowMs + REPLY_TO_TTL_MS, uses: 0, maxUses: Number.MAX_SAFE_INTEGER };
  }
}

function fromCallbackQuery(cq: Obj, parts: EventParts): void {
  const from = userOf(cq.from);
  const msg = isObject(cq.message) ? cq.message : undefined;
  const chatId = msg && isObject(msg.chat) ? str(msg.chat.id) : undefined;
  if (from) parts.user = from.id;
  if (!chatId || !from) return;
  const thread = msg!.is_topic_message === true ? str(msg!.message_thread_id) : undefined;
  parts.conversation = thread ? { id: chatId, thread } : { id: chatId };
  // The button's callback_data is its id (a game's button has a game_short_name instead); the query's own
  // id only serves to answer it, which the webhook response does.
  const id = str(cq.data) ?? str(cq.game_short_name) ?? '';
  parts.normalized = {
    type: ACTION_INVOKED,
    data: { text: id, user: from, conversation: parts.conversation, action: { type: 'callback_query', id, value: id } },
  };
}

/** chat_member updates (admins only) say when someone joins: from left/kicked to a member status. */
function fromChatMember(update: Obj, parts: EventParts): void {
  const chatId = isObject(update.chat) ? str(update.chat.id) : undefined;
  const before = isObject(update.old_chat_member) ? update.old_chat_member : {};
  const after = isObject(update.new_chat_member) ? update.new_chat_member : {};
  const user = userOf(after.user);
  const time = secondsToTime(update.date);
  if (time) parts.time = time;
  if (!chatId || !user) return;
  parts.conversation = { id: chatId };
  parts.user = user.id;
  const wasOut = before.status === 'left' || before.status === 'kicked';
  const isIn = ['member', 'administrator', 'creator'].includes(str(after.status) ?? '') || (after.status === 'restricted' && after.is_member === true);
  if (wasOut && isIn) parts.normalized = { type: MEMBER_JOINED, data: { text: '', user, conversation: { id: chatId }, members: [user] } };
}

/** Edits, reactions and the rest: raw only, with their conversation where they have one. */
function describeOther(body: Obj, parts: EventParts): void {
  const chatId = isObject(body.chat) ? str(body.chat.id) : undefined;
  if (chatId) parts.conversation = { id: chatId };
  const user = userOf(body.from) ?? userOf(body.user);
  if (user) parts.user = user.id;
  const time = secondsToTime(body.edit_date ?? body.date);
  if (time) parts.time = time;
}

function userOf(v: unknown): ChatUser | undefined {
  if (!isObject(v)) return undefined;
  const id = str(v.id);
  if (id === undefined) return undefined;
  const name = [str(v.first_name), str(v.last_name)].filter(Boolean).join(' ') || str(v.username) || str(v.title);
  return name ? { id, name } : { id };
}

const FILE_KINDS = ['document', 'audio', 'video', 'voice', 'video_note', 'animation', 'sticker'];

function attachmentsOf(msg: Obj): Attachment[] {
  const out: Attachment[] = [];
  if (Array.isArray(msg.photo) && msg.photo.length) {
    const largest = msg.photo[msg.photo.length - 1]; // sizes come smallest first
    if (isObject(largest) && typeof largest.file_id === 'string') out.push({ type: 'photo', id: largest.file_id });
  }
  for (const kind of FILE_KINDS) {
    const f = msg[kind];
    if (!isObject(f) || typeof f.file_id !== 'string') continue;
    const a: Attachment = { type: kind, id: f.file_id };
    if (typeof f.file_name === 'string') a.name = f.file_name;
    if (typeof f.mime_type === 'string') a.mimeType = f.mime_type;
    out.push(a);
  }
  return out;
}

/** `@username` and text_mention entities; offsets are UTF-16 units, as JavaScript strings are. */
function mentionsOf(text: string, entities: unknown): Mention[] {
  if (!Array.isArray(entities)) return [];
  const out: Mention[] = [];
  for (const e of entities) {
    if (!isObject(e) || typeof e.offset !== 'number' || typeof e.length !== 'number') continue;
    if (e.type === 'mention') out.push({ id: text.slice(e.offset, e.offset + e.length) });
    else if (e.type === 'text_mention') {
      const u = userOf(e.user);
      if (u) out.push(u);
    }
  }
  return out;
}

// --- egress ---------------------------------------------------------------------------------------

/**
 * Telegram's published limits: about 30 messages per second per bot, no more than one per second in a
 * chat, and 20 per minute in a group (core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this).
 */
export function telegramLimits(token: string, chatId: string): BucketSpec[] {
  const key = credentialKey('telegram', token);
  const specs: BucketSpec[] = [
    { key, capacity: 30, perSecond: 30 },
    { key: `${key}:chat:${chatId}`, capacity: 1, perSecond: 1 },
  ];
  if (chatId.startsWith('-')) specs.push({ key: `${key}:group:${chatId}`, capacity: 20, perSecond: 20 / 60 });
  return specs;
}

export function telegramVerdict(status: number, body: unknown): Verdict {
  if (status >= 200 && status < 300) return isObject(body) && body.ok === true ? 'ok' : { fail: 'Telegram did not answer ok' };
  return httpVerdict(status, body);
}

/** Chat ids are integers below 2^52 (Bot API), or `@channelusername`. */
function chatIdValue(id: string): number | string {
  return /^-?\d{1,16}$/.test(id) ? Number(id) : id;
}

export async function telegramCall(ctx: EgressContext, token: string, method: string, chatId: string, body: Obj, verdict = telegramVerdict): Promise<ApiResult> {
  return callApi(ctx, { method: 'POST', url: `${ctx.apiBase}/bot${token}/${method}`, body: { chat_id: chatIdValue(chatId), ...body }, limits: telegramLimits(token, chatId) }, verdict);
}

/** editMessageText answers 400 "message is not modified" when nothing changed: that is success. */
export function telegramEditVerdict(status: number, body: unknown): Verdict {
  if (status === 400 && isObject(body) && typeof body.description === 'string' && body.description.includes('message is not modified')) return 'ok';
  return telegramVerdict(status, body);
}

const LABEL_MAX = 64;
const SHORT_LABEL = 20;
const PER_ROW = 3;

/**
 * An inline keyboard (core.telegram.org/bots/api#inlinekeyboardmarkup): buttons in rows of up to three,
 * a longer label in a row of its own, each `{text, callback_data}` with callback_data the button's id
 * (1–64 bytes: a longer id goes as its digest, which the gateway maps back). Telegram documents no
 * label limit but shows little of a long one; labels are cut at 64.
 */
export function telegramKeyboard(buttons: readonly Button[]): Obj {
  const keyboard: Obj[][] = [];
  let row: Obj[] = [];
  for (const b of buttons) {
    const text = fit(b.label, LABEL_MAX);
    const wide = text.length > SHORT_LABEL;
    if (row.length === PER_ROW || (wide && row.length > 0)) {
      keyboard.push(row);
      row = [];
    }
    row.push({ text, callback_data: wireId('telegram', b.id) });
    if (wide) {
      keyboard.push(row);
      row = [];
    }
  }
  if (row.length) keyboard.push(row);
  return { inline_keyboard: keyboard };
}

export async function deliverTelegramReply(reply: CloudEvent, handle: ReplyHandle | undefined, secrets: Secrets, ctx: EgressContext): Promise<DeliveryOutcome> {
  const text = replyText(reply);
  if (typeof text !== 'string') return text;
  const token = secrets.botToken;
  if (!token) return missingSecret('telegram', 'botToken');
  const conversation = conversationOfEvent(reply);
  const { buttons } = replyButtons(reply.data);
  const replyTo = handle?.kind === 'telegram.reply_to' && handle.expiresAt > ctx.now() ? Number(handle.value) : undefined;
  let messageId: string | undefined;
  const pieces = splitText(text, MAX_TEXT);
  for (const [i, piece] of pieces.entries()) {
    const body: Obj = { text: piece };
    if (conversation.thread !== undefined && /^\d+$/.test(conversation.thread)) body.message_thread_id = Number(conversation.thread);
    if (i === 0 && replyTo !== undefined) body.reply_parameters = { message_id: replyTo, allow_sending_without_reply: true };
    if (i === pieces.length - 1 && buttons.length) body.reply_markup = telegramKeyboard(buttons);
    const r = await telegramCall(ctx, token, 'sendMessage', conversation.id, body);
    if (!r.ok) return failed(r);
    const result = (r.body as { result?: { message_id?: unknown } }).result;
    messageId ??= str(result?.message_id);
  }
  return messageId === undefined ? { ok: true } : { ok: true, platformMessageId: messageId };
}

/**
 * sendChatAction `typing`: "typing…" for 5 seconds or until the bot's next message, in the message's
 * topic when it had one (core.telegram.org/bots/api#sendchataction).
 */
export async function startTelegramTyping(target: TypingTarget, secrets: Secrets, ctx: EgressContext): Promise<TypingOutcome> {
  const token = secrets.botToken;
  if (!token) return skipped('the telegram channel has no botToken configured');
  const { id, thread } = target.conversation;
  const body: Obj = { chat_id: chatIdValue(id), action: 'typing' };
  if (thread !== undefined && /^\d+$/.test(thread)) body.message_thread_id = Number(thread);
  const limits = [shared(telegramLimits(token, id)[0]!), perConversation('telegram', token, id)];
  return typingCall(ctx, { method: 'POST', url: `${ctx.apiBase}/bot${token}/sendChatAction`, body, limits }, telegramVerdict);
}

export const telegram: ChatAdapter = {
  platform: 'telegram',
  apiBaseEnv: 'KNBOT_TELEGRAM_API_URL',
  defaultApiBase: 'https://api.telegram.org',
  handleWebhook: handleTelegramWebhook,
  deliverReply: deliverTelegramReply,
  startTyping: startTelegramTyping,
};
