// WhatsApp Cloud API (Meta Graph webhooks): the GET `hub.challenge` handshake, then POSTs signed with
// `X-Hub-Signature-256: sha256=<hex HMAC of the raw body under the app secret>`. Meta signs the bytes it
// sent (escaped Unicode), so re-serialized JSON would not verify. No timestamp: deduplication on the
// message id is the replay defence, and Meta retries for up to 7 days. Replies through /messages.
// https://developers.facebook.com/docs/graph-api/webhooks/getting-started
import { createHash } from 'node:crypto';
import { conversationOfEvent } from '../../eventing/chat.ts';
import type { CloudEvent } from '../../eventing/codec.ts';
import { type Button, fit, replyButtons, splitTail, wireId, withNumberedList } from './buttons.ts';
import { type Verdict, callApi, credentialKey, failed, httpVerdict, missingSecret, replyText, splitText } from './egress.ts';
import { ACTION_INVOKED, type Attachment, type ChatData, type EventParts, MESSAGE_RECEIVED, ingressEvent, secondsToTime, str, typeSegment, without } from './events.ts';
import type { BucketSpec } from './rate-limit.ts';
import { type ChatAdapter, type DeliveryOutcome, type EgressContext, type IngressEvent, type ReplyHandle, type Secrets, type SendFailure, type TypingOutcome, type TypingTarget, WebhookError, type WebhookRequest, type WebhookResult } from './types.ts';
import { perConversation, shared, skipped, typingCall } from './typing.ts';
import { hmacSha256, headerValue, isObject, malformed, parseHex, parseJson, requireSecret, safeEqual, secretEquals, unauthorized } from './verify.ts';

type Obj = Record<string, unknown>;

/** The Graph API version egress calls; Meta keeps each version about two years. */
export const WHATSAPP_API_VERSION = 'v23.0';
/** A text message body holds at most 4096 characters. */
const MAX_TEXT = 4096;
const MEDIA = new Set(['image', 'audio', 'video', 'document', 'sticker']);

export function handleWhatsAppWebhook(req: WebhookRequest, secrets: Secrets, nowMs: number): WebhookResult {
  if (req.method === 'GET') return handshake(req.query, secrets);
  const secret = requireSecret(secrets, 'appSecret', 'whatsapp');
  const given = headerValue(req.headers, 'x-hub-signature-256');
  const mac = given?.startsWith('sha256=') ? parseHex(given.slice(7), 32) : undefined;
  if (!mac || !safeEqual(mac, hmacSha256(secret, req.rawBody))) throw unauthorized('bad_signature', 'X-Hub-Signature-256 is missing, not sha256=<64 hex digits>, or does not match the body');
  const body = parseJson(req.rawBody);
  if (!isObject(body) || !Array.isArray(body.entry)) throw malformed('a WhatsApp webhook is {object, entry[]}');
  const events: IngressEvent[] = [];
  for (const entry of body.entry.filter(isObject)) {
    const wabaId = str(entry.id) ?? 'unknown';
    for (const change of Array.isArray(entry.changes) ? entry.changes.filter(isObject) : []) {
      events.push(...fromChange(str(body.object) ?? 'whatsapp_business_account', wabaId, change, req, nowMs));
    }
  }
  return { response: { status: 200 }, events };
}

/** Meta's subscription check: echo `hub.challenge` when `hub.verify_token` is ours. */
function handshake(query: URLSearchParams, secrets: Secrets): WebhookResult {
  const mode = query.get('hub.mode');
  const token = query.get('hub.verify_token');
  const challenge = query.get('hub.challenge');
  if (mode !== 'subscribe' || token === null || challenge === null) throw new WebhookError(400, 'bad_handshake', 'expected hub.mode=subscribe, hub.verify_token and hub.challenge');
  if (!secretEquals(token, requireSecret(secrets, 'verifyToken', 'whatsapp'))) throw new WebhookError(403, 'bad_verify_token', 'hub.verify_token is wrong');
  return { response: { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: challenge }, events: [] };
}

function fromChange(object: string, wabaId: string, change: Obj, req: WebhookRequest, nowMs: number): IngressEvent[] {
  const field = str(change.field) ?? 'unknown';
  const value = isObject(change.value) ? change.value : {};
  const phoneNumberId = isObject(value.metadata) ? str(value.metadata.phone_number_id) : undefined;
  const source = `/whatsapp/${wabaId}/${phoneNumberId ?? 'unknown'}`;
  const messages = Array.isArray(value.messages) ? value.messages.filter(isObject) : [];
  const statuses = Array.isArray(value.statuses) ? value.statuses.filter(isObject) : [];
  const contacts = Array.isArray(value.contacts) ? value.contacts.filter(isObject) : [];
  const base = without(value, 'messages', 'statuses', 'contacts');
  // Each CloudEvent keeps the webhook's envelope around its one message or status.
  const envelope = (inner: Obj) => ({ object, entry: [{ id: wabaId, changes: [{ field, value: { ...base, ...inner } }] }] });
  const common = { platform: 'whatsapp' as const, source, bot: req.bot, tenant: wabaId };

  if (field !== 'messages' || (!messages.length && !statuses.length)) {
    // Template, quality and account updates, or errors: no id of their own, and Meta retries the same
    // bytes, so a digest of the change is as stable an id as any.
    const id = createHash('sha256').update(JSON.stringify(change)).digest('hex').slice(0, 32);
    return [ingressEvent({ ...common, id, rawType: `dev.knbot.whatsapp.change.${typeSegment(field)}`, rawData: envelope({}), time: new Date(nowMs).toISOString() })];
  }
  const out: IngressEvent[] = [];
  for (const m of messages) {
    const from = str(m.from);
    const id = str(m.id);
    if (!from || !id) throw malformed('a WhatsApp message needs from and id');
    const contact = contacts.find((c) => c.wa_id === from);
    const name = contact && isObject(contact.profile) ? str(contact.profile.name) : undefined;
    const parts: EventParts = {
      ...common,
      id,
      rawType: `dev.knbot.whatsapp.message.${typeSegment(m.type)}`,
      rawData: envelope({ ...(contact ? { contacts: [contact] } : {}), messages: [m] }),
      user: from,
      conversation: { id: from },
    };
    const time = secondsToTime(m.timestamp);
    if (time) parts.time = time;
    const normalized = normalize(m, name ? { id: from, name } : { id: from });
    if (normalized) parts.normalized = normalized;
    out.push(ingressEvent(parts));
  }
  for (const s of statuses) {
    const id = str(s.id);
    const status = str(s.status);
    if (!id || !status) throw malformed('a WhatsApp status needs id and status');
    const recipient = str(s.recipient_id);
    // One message goes through sent, delivered and read: the status is part of the id (`wamid:status`).
    const parts: EventParts = { ...common, id: `${id}:${status}`, rawType: `dev.knbot.whatsapp.status.${typeSegment(status)}`, rawData: envelope({ statuses: [s] }) };
    const time = secondsToTime(s.timestamp);
    if (time) parts.time = time;
    if (recipient) {
      parts.conversation = { id: recipient };
      parts.user = recipient;
    }
    if (status === 'failed') parts.sendFailed = sendFailure(id, s);
    out.push(ingressEvent(parts));
  }
  return out;
}

function normalize(m: Obj, user: { id: string; name?: string }): { type: string; data: ChatData } | undefined {
  const conversation = { id: user.id };
  const type = str(m.type) ?? '';
  if (type === 'text' && isObject(m.text)) return { type: MESSAGE_RECEIVED, data: { text: str(m.text.body) ?? '', user, conversation } };
  if (MEDIA.has(type) && isObject(m[type])) {
    const media = m[type] as Obj;
    const a: Attachment = { type };
    if (typeof media.id === 'string') a.id = media.id;
    if (typeof media.mime_type === 'string') a.mimeType = media.mime_type;
    if (typeof media.filename === 'string') a.name = media.filename;
    return { type: MESSAGE_RECEIVED, data: { text: str(media.caption) ?? '', user, conversation, attachments: [a] } };
  }
  if (type === 'interactive' && isObject(m.interactive)) {
    const kind = str(m.interactive.type) ?? 'interactive';
    const chosen = m.interactive[kind];
    if (!isObject(chosen)) return undefined;
    const title = str(chosen.title);
    return { type: ACTION_INVOKED, data: { text: title ?? '', user, conversation, action: { type: kind, id: str(chosen.id) ?? '', ...(title !== undefined ? { value: title } : {}) } } };
  }
  if (type === 'button' && isObject(m.button)) {
    const text = str(m.button.text) ?? '';
    return { type: ACTION_INVOKED, data: { text, user, conversation, action: { type: 'button', id: str(m.button.payload) ?? '', value: text } } };
  }
  return undefined; // reactions, locations, contacts, system notices: raw only
}

// --- egress ---------------------------------------------------------------------------------------

/**
 * Cloud API throughput is 80 messages per second per business phone number by default, and one message
 * every 6 seconds to the same user, with bursts of up to 45 (Meta, "Throughput" and "Pair rate limits").
 */
export function whatsappLimits(phoneNumberId: string, to: string): BucketSpec[] {
  const key = credentialKey('whatsapp', phoneNumberId);
  return [
    { key, capacity: 80, perSecond: 80 },
    { key: `${key}:to:${to}`, capacity: 45, perSecond: 1 / 6 },
  ];
}

// Graph API error codes that change what to do (developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes).
/** "Re-engagement message": more than 24 hours since the user last wrote; only a template may go now. */
export const OUTSIDE_WINDOW_CODE = 131047;
/** Throughput (130429) and pair rate limit (131056): Meta answers them with HTTP 400, but they pass. */
const RATE_LIMIT_CODES = new Set([130429, 131056]);
export const OUTSIDE_WINDOW_REASON = 'outside_customer_service_window';

/**
 * A `failed` status: Meta took the message, then could not deliver it. Its first error names why, as the
 * messages API would have (131047: outside the 24-hour window).
 */
function sendFailure(messageId: string, status: Obj): SendFailure {
  const error = Array.isArray(status.errors) ? status.errors.find(isObject) : undefined;
  const code = typeof error?.code === 'number' ? error.code : undefined;
  const reason = code === OUTSIDE_WINDOW_CODE ? OUTSIDE_WINDOW_REASON : (str(error?.title) ?? str(error?.message) ?? 'WhatsApp reported the message failed');
  return code === undefined ? { messageId, reason } : { messageId, reason, platformErrorCode: code };
}

/** The Graph error object's `code`, if the body is one. */
export function graphErrorCode(body: unknown): number | undefined {
  const error = isObject(body) && isObject(body.error) ? body.error : undefined;
  return typeof error?.code === 'number' ? error.code : undefined;
}

/**
 * Graph errors by their code, not only their HTTP status: a message outside the customer-service window
 * fails for good whatever the status (no retry can reopen the window), rate limits are retried.
 */
export function whatsappVerdict(status: number, body: unknown): Verdict {
  if (status >= 200 && status < 300) return httpVerdict(status, body);
  const code = graphErrorCode(body);
  if (code === OUTSIDE_WINDOW_CODE) return { fail: OUTSIDE_WINDOW_REASON };
  if (code !== undefined && RATE_LIMIT_CODES.has(code)) return 'retry';
  return httpVerdict(status, body);
}

// Interactive messages (developers.facebook.com/docs/whatsapp/cloud-api/messages/interactive-reply-buttons-messages,
// …/interactive-list-messages): reply buttons are at most 3, each title at most 20 characters and id 256,
// the body text at most 1,024; a list has at most 10 rows, each title at most 24 characters, description
// 72 and id 200, its button 20 and its body 4,096.
const REPLY_BUTTONS = 3;
const BUTTON_TITLE = 20;
const BUTTON_BODY = 1024;
const LIST_ROWS = 10;
const ROW_TITLE = 24;
const ROW_DESCRIPTION = 72;
const LIST_BUTTON = 'Choose';

/**
 * The message bodies of a reply, in order: text messages, and with buttons the last one interactive:
 * up to 3 as reply buttons (their titles must differ: when cutting them to 20 characters makes two
 * alike, a list instead), up to 10 as a list of one section, more as a numbered list under the text.
 * The text past what the interactive body holds goes before it in text messages.
 */
export function whatsappMessages(text: string, buttons: readonly Button[]): Obj[] {
  const plain = (t: string): Obj => ({ type: 'text', text: { preview_url: false, body: t } });
  if (!buttons.length || buttons.length > LIST_ROWS) return splitText(buttons.length ? withNumberedList(text, buttons) : text, MAX_TEXT).map(plain);
  const titles = buttons.map((b) => fit(b.label, BUTTON_TITLE));
  const asButtons = buttons.length <= REPLY_BUTTONS && new Set(titles).size === titles.length;
  const { head, tail } = splitTail(text, asButtons ? BUTTON_BODY : MAX_TEXT);
  const out = head.trim() === '' ? [] : splitText(head, MAX_TEXT).map(plain);
  const action = asButtons
    ? { buttons: buttons.map((b, i) => ({ type: 'reply', reply: { id: wireId('whatsapp', b.id), title: titles[i] } })) }
    : {
        button: LIST_BUTTON,
        sections: [
          {
            rows: buttons.map((b) => {
              const title = fit(b.label, ROW_TITLE);
              // A label cut to fit the row's title is there whole, or nearly, in its description.
              return title === b.label ? { id: wireId('whatsapp', b.id), title } : { id: wireId('whatsapp', b.id), title, description: fit(b.label, ROW_DESCRIPTION) };
            }),
          },
        ],
      };
  out.push({ type: 'interactive', interactive: { type: asButtons ? 'button' : 'list', body: { text: tail }, action } });
  return out;
}

/**
 * WhatsApp cannot stream or edit: each reply is one message (split at 4096 characters), the last one
 * interactive when the reply has buttons. Free-form messages are only accepted within 24 hours of the
 * user's last message; later Meta refuses them with 131047, and the outcome says
 * `outside_customer_service_window` with that code, so the bot or an operator can send an approved
 * template instead.
 */
export async function deliverWhatsAppReply(reply: CloudEvent, _handle: ReplyHandle | undefined, secrets: Secrets, ctx: EgressContext): Promise<DeliveryOutcome> {
  const text = replyText(reply);
  if (typeof text !== 'string') return text;
  const token = secrets.accessToken;
  if (!token) return missingSecret('whatsapp', 'accessToken');
  const phoneNumberId = secrets.phoneNumberId;
  if (!phoneNumberId) return missingSecret('whatsapp', 'phoneNumberId');
  const to = conversationOfEvent(reply).id;
  const sentIds: string[] = [];
  for (const message of whatsappMessages(text, replyButtons(reply.data).buttons)) {
    const body = { messaging_product: 'whatsapp', recipient_type: 'individual', to, ...message };
    const url = `${ctx.apiBase}/${WHATSAPP_API_VERSION}/${phoneNumberId}/messages`;
    const r = await callApi(ctx, { method: 'POST', url, headers: { authorization: `Bearer ${token}` }, body, limits: whatsappLimits(phoneNumberId, to) }, whatsappVerdict);
    if (!r.ok) {
      const out = failed(r);
      const code = graphErrorCode(r.body);
      if (code !== undefined) out.platformErrorCode = code;
      return out;
    }
    const sent = isObject(r.body) && Array.isArray(r.body.messages) ? r.body.messages[0] : undefined;
    const id = isObject(sent) ? str(sent.id) : undefined;
    if (id !== undefined) sentIds.push(id);
  }
  return sentIds.length === 0 ? { ok: true } : { ok: true, platformMessageId: sentIds[0]!, sentMessageIds: sentIds };
}

/**
 * The typing indicator: the message being answered is marked read and "typing…" shows until the reply
 * or for 25 seconds (developers.facebook.com/documentation/business-messaging/whatsapp/typing-indicators).
 * It needs that message's id (`wamid`).
 */
export async function startWhatsAppTyping(target: TypingTarget, secrets: Secrets, ctx: EgressContext): Promise<TypingOutcome> {
  if (target.messageId === undefined) return skipped('WhatsApp shows typing only in answer to a message, and none was named');
  const token = secrets.accessToken;
  const phoneNumberId = secrets.phoneNumberId;
  if (!token || !phoneNumberId) return skipped('the whatsapp channel has no accessToken or phoneNumberId configured');
  const to = target.conversation.id;
  const body = { messaging_product: 'whatsapp', status: 'read', message_id: target.messageId, typing_indicator: { type: 'text' } };
  // A read receipt is no message to the user: it shares the number's throughput, not the pair limit.
  const limits = [shared(whatsappLimits(phoneNumberId, to)[0]!), perConversation('whatsapp', phoneNumberId, to)];
  const url = `${ctx.apiBase}/${WHATSAPP_API_VERSION}/${phoneNumberId}/messages`;
  return typingCall(ctx, { method: 'POST', url, headers: { authorization: `Bearer ${token}` }, body, limits }, whatsappVerdict);
}

export const whatsapp: ChatAdapter = {
  platform: 'whatsapp',
  apiBaseEnv: 'KNBOT_WHATSAPP_API_URL',
  defaultApiBase: 'https://graph.facebook.com',
  reportsLateFailures: true,
  handleWebhook: handleWhatsAppWebhook,
  deliverReply: deliverWhatsAppReply,
  startTyping: startWhatsAppTyping,
};
