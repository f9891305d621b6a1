// Slack: Events API (JSON), slash commands and interactivity (form-encoded), all signed with the v0
// scheme; replies through chat.postMessage, or the response_url of a command or an action.
// https://api.slack.com/authentication/verifying-requests-from-slack, https://api.slack.com/types/event
import { createHash } from 'node:crypto';
import { conversationOfEvent } from '../../eventing/chat.ts';
import type { CloudEvent } from '../../eventing/codec.ts';
import { type Button, fit, replyButtons, rows, wireId } from './buttons.ts';
import { type ApiResult, type Verdict, callApi, credentialKey, failed, httpVerdict, missingSecret, replyText, splitText } from './egress.ts';
import { ACTION_INVOKED, type ChatData, MEMBER_JOINED, MESSAGE_RECEIVED, type Mention, type EventParts, ingressEvent, secondsToTime, str, typeSegment, without } from './events.ts';
import type { BucketSpec } from './rate-limit.ts';
import type { ChatAdapter, DeliveryOutcome, EgressContext, ReplyHandle, Secrets, TypingOutcome, WebhookRequest, WebhookResult } from './types.ts';
import { skipped } from './typing.ts';
import { checkTimestamp, hmacSha256, headerValue, isObject, malformed, parseHex, parseJson, requirePost, requireSecret, safeEqual, unauthorized } from './verify.ts';

/** Slack rejects requests whose timestamp is more than five minutes from now, either way. */
export const SLACK_WINDOW_MS = 5 * 60_000;
/** A response_url works "up to 5 times within 30 minutes". */
const RESPONSE_URL_TTL_MS = 30 * 60_000;
const RESPONSE_URL_USES = 5;
/** chat.postMessage truncates `text` at 40,000 characters. */
const MAX_TEXT = 40_000;
const OK_EMPTY = { status: 200 };

type Obj = Record<string, unknown>;

export function handleSlackWebhook(req: WebhookRequest, secrets: Secrets, nowMs: number): WebhookResult {
  requirePost(req.method);
  const secret = requireSecret(secrets, 'signingSecret', 'slack');
  const ts = checkTimestamp(headerValue(req.headers, 'x-slack-request-timestamp'), 'X-Slack-Request-Timestamp', nowMs, SLACK_WINDOW_MS);
  const given = headerValue(req.headers, 'x-slack-signature');
  const mac = given?.startsWith('v0=') ? parseHex(given.slice(3), 32) : undefined;
  if (!mac) throw unauthorized('bad_signature', 'X-Slack-Signature is missing or not v0=<64 hex digits>');
  if (!safeEqual(mac, hmacSha256(secret, `v0:${ts}:`, req.rawBody))) throw unauthorized('bad_signature', 'X-Slack-Signature does not match the body');

  const redelivery = headerValue(req.headers, 'x-slack-retry-num') !== undefined;
  const contentType = headerValue(req.headers, 'content-type')?.split(';')[0]?.trim().toLowerCase();
  if (contentType === 'application/x-www-form-urlencoded') {
    const form = new URLSearchParams(req.rawBody.toString('utf8'));
    const payload = form.get('payload');
    if (payload !== null) return { response: OK_EMPTY, events: [fromInteraction(parseJson(Buffer.from(payload)), req, nowMs)] };
    if (form.get('command') !== null) return { response: OK_EMPTY, events: [fromCommand(form, req, nowMs)] };
    throw malformed('a form-encoded Slack request carries a command or a payload');
  }
  const body = parseJson(req.rawBody);
  if (!isObject(body)) throw malformed('the body is not a JSON object');
  if (body.type === 'url_verification') {
    if (typeof body.challenge !== 'string') throw malformed('url_verification has no challenge');
    return { response: { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: body.challenge }, events: [] };
  }
  if (body.type !== 'event_callback') return { response: OK_EMPTY, events: [] }; // app_rate_limited and future types
  return { response: OK_EMPTY, events: [fromEventCallback(body, req, redelivery)] };
}

function fromEventCallback(env: Obj, req: WebhookRequest, redelivery: boolean) {
  const ev = env.event;
  const id = str(env.event_id);
  if (!isObject(ev) || id === undefined) throw malformed('event_callback needs an event and an event_id');
  const tenant = str(env.team_id) ?? str(env.enterprise_id) ?? str(env.context_team_id);
  const channel = str(ev.channel) ?? str(ev.channel_id);
  const user = str(ev.user);
  const thread = str(ev.thread_ts);
  const parts: EventParts = {
    platform: 'slack',
    source: `/slack/${tenant ?? 'unknown'}/${str(env.api_app_id) ?? 'unknown'}`,
    id,
    // The legacy verification `token` is a credential: it never leaves the gateway.
    rawType: `dev.knbot.slack.event.${typeSegment(ev.type)}`,
    rawData: without(env, 'token'),
    bot: req.bot,
    redelivery,
  };
  const time = secondsToTime(env.event_time);
  if (time) parts.time = time;
  if (tenant) parts.tenant = tenant;
  if (user) parts.user = user;
  if (channel) parts.conversation = thread ? { id: channel, thread } : { id: channel };

  if (channel && user && isUserMessage(ev)) {
    const text = ev.type === 'app_mention' ? stripOwnMention(str(ev.text) ?? '', botUserIds(env)) : (str(ev.text) ?? '');
    const data: ChatData = { text, user: { id: user }, conversation: parts.conversation! };
    const mentions = mentionsIn(str(ev.text) ?? '');
    if (mentions.length) data.mentions = mentions;
    if (Array.isArray(ev.files)) data.attachments = ev.files.filter(isObject).map(fileAttachment);
    parts.normalized = { type: MESSAGE_RECEIVED, data };
  } else if (ev.type === 'member_joined_channel' && channel && user) {
    parts.normalized = { type: MEMBER_JOINED, data: { text: '', user: { id: user }, conversation: { id: channel }, members: [{ id: user }] } };
  }
  return ingressEvent(parts);
}

/**
 * A message a person wrote to the bot. Messages by bots (the bot's own replies included) are left raw,
 * the loop guard Slack recommends; so are edits, deletions and other subtypes.
 */
function isUserMessage(ev: Obj): boolean {
  if (ev.type !== 'message' && ev.type !== 'app_mention') return false;
  if (ev.bot_id !== undefined || ev.bot_profile !== undefined) return false;
  return ev.subtype === undefined || ev.subtype === 'file_share' || ev.subtype === 'thread_broadcast';
}

function botUserIds(env: Obj): Set<string> {
  const ids = new Set<string>();
  if (Array.isArray(env.authorizations)) {
    for (const a of env.authorizations) if (isObject(a) && a.is_bot === true && typeof a.user_id === 'string') ids.add(a.user_id);
  }
  return ids;
}

const MENTION = /<@([UW][A-Z0-9]+)(?:\|([^>]*))?>/g;

/** An app_mention's text starts with the bot's own mention; the bot gets what follows it. */
function stripOwnMention(text: string, botIds: Set<string>): string {
  const m = /^\s*<@([UW][A-Z0-9]+)(?:\|[^>]*)?>\s*/.exec(text);
  return m && botIds.has(m[1]!) ? text.slice(m[0].length) : text;
}

function mentionsIn(text: string): Mention[] {
  return [...text.matchAll(MENTION)].map((m) => (m[2] ? { id: m[1]!, name: m[2] } : { id: m[1]! }));
}

function fileAttachment(f: Obj) {
  const a: { type: string; id?: string; name?: string; mimeType?: string; url?: string } = { type: 'file' };
  if (typeof f.id === 'string') a.id = f.id;
  if (typeof f.name === 'string') a.name = f.name;
  if (typeof f.mimetype === 'string') a.mimeType = f.mimetype;
  if (typeof f.url_private === 'string') a.url = f.url_private;
  return a;
}

/**
 * A slash command. It is text typed at the bot, so it is normalized as a message (with `command`) that
 * the bot runtime answers with `onMessage`; Slack sends no event_id, so the id is the trigger_id.
 */
function fromCommand(form: URLSearchParams, req: WebhookRequest, nowMs: number) {
  const id = form.get('trigger_id');
  const channel = form.get('channel_id');
  const user = form.get('user_id');
  const command = form.get('command')!;
  if (!id || !channel || !user) throw malformed('a slash command needs trigger_id, channel_id and user_id');
  const tenant = form.get('team_id') ?? form.get('enterprise_id') ?? undefined;
  const raw: Obj = {};
  // `token` is the legacy verification token and `response_url` a reply capability: neither is kept.
  for (const [k, v] of form) if (k !== 'token' && k !== 'response_url') raw[k] = v;
  const userName = form.get('user_name');
  const parts: EventParts = {
    platform: 'slack',
    source: `/slack/${tenant ?? 'unknown'}/${form.get('api_app_id') ?? 'unknown'}`,
    id,
    rawType: `dev.knbot.slack.command.${typeSegment(command.replace(/^\//, ''))}`,
    rawData: raw,
    bot: req.bot,
    time: new Date(nowMs).toISOString(),
    user,
    conversation: { id: channel },
    normalized: {
      type: MESSAGE_RECEIVED,
      data: { text: form.get('text') ?? '', user: userName ? { id: user, name: userName } : { id: user }, conversation: { id: channel }, command: { name: command } },
    },
  };
  if (tenant) parts.tenant = tenant;
  const handle = responseUrlHandle(form.get('response_url') ?? undefined, nowMs);
  if (handle) parts.replyHandle = handle;
  return ingressEvent(parts);
}

function fromInteraction(payload: unknown, req: WebhookRequest, nowMs: number) {
  if (!isObject(payload) || typeof payload.type !== 'string') throw malformed('an interaction payload needs a type');
  const team = isObject(payload.team) ? payload.team : {};
  const userObj = isObject(payload.user) ? payload.user : {};
  const user = str(userObj.id);
  const tenant = str(team.id) ?? str(userObj.team_id);
  const channelObj = isObject(payload.channel) ? payload.channel : {};
  const container = isObject(payload.container) ? payload.container : {};
  const message = isObject(payload.message) ? payload.message : {};
  const channel = str(channelObj.id) ?? str(container.channel_id);
  const thread = str(message.thread_ts);
  // Suggestions and closed modals have no trigger_id; the body's digest is as stable across retries.
  const id = str(payload.trigger_id) ?? createHash('sha256').update(JSON.stringify(payload)).digest('hex').slice(0, 32);
  const parts: EventParts = {
    platform: 'slack',
    source: `/slack/${tenant ?? 'unknown'}/${str(payload.api_app_id) ?? 'unknown'}`,
    id,
    rawType: `dev.knbot.slack.interaction.${typeSegment(payload.type)}`,
    rawData: without(payload, 'token', 'response_url', 'response_urls'),
    bot: req.bot,
    time: new Date(nowMs).toISOString(),
  };
  if (tenant) parts.tenant = tenant;
  if (user) parts.user = user;
  // Without a channel (global shortcuts, modals) the user's id addresses their direct messages.
  const conversation = channel ? (thread ? { id: channel, thread } : { id: channel }) : user ? { id: user } : undefined;
  if (conversation) parts.conversation = conversation;
  const action = actionOf(payload);
  if (action && user && conversation) {
    const name = str(userObj.username) ?? str(userObj.name);
    parts.normalized = {
      type: ACTION_INVOKED,
      data: { text: action.value ?? str(message.text) ?? '', user: name ? { id: user, name } : { id: user }, conversation, action },
    };
  }
  const urls = Array.isArray(payload.response_urls) ? payload.response_urls.filter(isObject) : [];
  const handle = responseUrlHandle(str(payload.response_url) ?? str(urls[0]?.response_url), nowMs);
  if (handle) parts.replyHandle = handle;
  return ingressEvent(parts);
}

function actionOf(p: Obj): ChatData['action'] | undefined {
  if (p.type === 'block_actions' && Array.isArray(p.actions) && isObject(p.actions[0])) {
    const a = p.actions[0];
    const selected = isObject(a.selected_option) ? str(a.selected_option.value) : undefined;
    const value = str(a.value) ?? selected ?? str(a.selected_date) ?? str(a.selected_user) ?? str(a.selected_channel);
    return { type: str(a.type) ?? 'block_action', id: str(a.action_id) ?? '', ...(value !== undefined ? { value } : {}) };
  }
  if (p.type === 'shortcut' || p.type === 'message_action') return { type: p.type, id: str(p.callback_id) ?? '' };
  if (p.type === 'view_submission' && isObject(p.view)) return { type: p.type, id: str(p.view.callback_id) ?? '' };
  return undefined;
}

function responseUrlHandle(url: string | undefined, nowMs: number): ReplyHandle | undefined {
  if (!url) return undefined;
  return { platform: 'slack', kind: 'slack.response_url', value: url, expiresAt: nowMs + RESPONSE_URL_TTL_MS, uses: 0, maxUses: RESPONSE_URL_USES };
}

// --- egress ---------------------------------------------------------------------------------------

/** Slack answers 200 with `ok: false` on errors; these of them are worth another attempt. */
const RETRYABLE_ERRORS = new Set(['ratelimited', 'internal_error', 'fatal_error', 'service_unavailable', 'request_timeout']);

export function slackVerdict(status: number, body: unknown): Verdict {
  if (status < 200 || status >= 300) return httpVerdict(status, body);
  if (isObject(body) && body.ok === true) return 'ok';
  const error = isObject(body) ? str(body.error) : undefined;
  return error !== undefined && RETRYABLE_ERRORS.has(error) ? 'retry' : { fail: error ?? 'Slack did not answer ok' };
}

/**
 * chat.postMessage is limited to about one message per second per channel with short bursts, and a
 * few hundred per minute per workspace (api.slack.com/methods/chat.postMessage, "Rate limiting").
 */
export function slackLimits(token: string, channel: string): BucketSpec[] {
  const key = credentialKey('slack', token);
  return [
    { key: `${key}:channel:${channel}`, capacity: 3, perSecond: 1 },
    { key, capacity: 50, perSecond: 5 },
  ];
}

// Block Kit limits (api.slack.com/reference/block-kit): a section's text at most 3,000 characters, a
// button's text 75, its action_id 255 and value 2,000, an actions block 25 elements, a message 50 blocks.
const SECTION_TEXT = 3000;
const BUTTON_TEXT = 75;
const BUTTON_VALUE = 2000;
const ACTIONS_ELEMENTS = 25;

/**
 * A message with buttons: its text in mrkdwn sections (several past 3,000 characters), then the buttons
 * in actions blocks of 25. The message's `text` stays beside the blocks as the notification fallback.
 * At most 40,000 / 1,500 sections (a piece is cut in its second half) and 100 / 25 actions blocks: under 50.
 */
export function slackBlocks(text: string, buttons: readonly Button[]): Obj[] {
  const sections = splitText(text, SECTION_TEXT).map((t) => ({ type: 'section', text: { type: 'mrkdwn', text: t } }));
  const actions = rows(buttons, ACTIONS_ELEMENTS).map((row) => ({ type: 'actions', elements: row.map(slackButton) }));
  return [...sections, ...actions];
}

function slackButton(b: Button): Obj {
  const el: Obj = { type: 'button', text: { type: 'plain_text', text: fit(b.label, BUTTON_TEXT), emoji: true }, action_id: wireId('slack', b.id) };
  // A value Slack would refuse stays out; the gateway's memory of the button still gives it back.
  if (b.value !== '' && b.value.length <= BUTTON_VALUE) el.value = b.value;
  return el;
}

/** The `text`, and the `blocks` when the message carries buttons. */
function slackContent(text: string, buttons: readonly Button[] | undefined): Obj {
  return buttons?.length ? { text, blocks: slackBlocks(text, buttons) } : { text };
}

export async function slackPost(ctx: EgressContext, token: string, channel: string, text: string, thread?: string, buttons?: readonly Button[]): Promise<ApiResult> {
  const body: Obj = { channel, ...slackContent(text, buttons) };
  if (thread !== undefined) body.thread_ts = thread;
  return callApi(ctx, { method: 'POST', url: `${ctx.apiBase}/chat.postMessage`, headers: { authorization: `Bearer ${token}` }, body, limits: slackLimits(token, channel) }, slackVerdict);
}

export async function slackUpdate(ctx: EgressContext, token: string, channel: string, ts: string, text: string, buttons?: readonly Button[]): Promise<ApiResult> {
  const body = { channel, ts, ...slackContent(text, buttons) };
  return callApi(ctx, { method: 'POST', url: `${ctx.apiBase}/chat.update`, headers: { authorization: `Bearer ${token}` }, body, limits: slackLimits(token, channel) }, slackVerdict);
}

/** A response_url must point at Slack (or at the API base a test configured): it is a URL we POST to. */
function trustedResponseUrl(url: string, apiBase: string): boolean {
  try {
    const u = new URL(url);
    return (u.protocol === 'https:' && u.hostname === 'hooks.slack.com') || u.origin === new URL(apiBase).origin;
  } catch {
    return false;
  }
}

function responseUrlVerdict(status: number, body: unknown): Verdict {
  if (status >= 200 && status < 300) return isObject(body) && body.ok === false ? { fail: str(body.error) ?? 'Slack did not answer ok' } : 'ok';
  return httpVerdict(status, body);
}

function usableResponseUrl(handle: ReplyHandle, pieces: number, ctx: EgressContext): boolean {
  return handle.kind === 'slack.response_url' && handle.expiresAt > ctx.now() && handle.uses + pieces <= handle.maxUses && trustedResponseUrl(handle.value, ctx.apiBase);
}

/** Posts the pieces to the response_url in order, the buttons with the last; stops at the first failure. */
async function viaResponseUrl(ctx: EgressContext, handle: ReplyHandle, pieces: string[], buttons: readonly Button[], channel: string, ephemeral: boolean): Promise<{ result: ApiResult; used: number }> {
  let used = 0;
  for (const [i, piece] of pieces.entries()) {
    const body = { ...slackContent(piece, i === pieces.length - 1 ? buttons : undefined), response_type: ephemeral ? 'ephemeral' : 'in_channel' };
    const result = await callApi(ctx, { method: 'POST', url: handle.value, body, limits: slackLimits(handle.value, channel) }, responseUrlVerdict);
    if (!result.ok) return { result, used };
    used++;
  }
  return { result: { ok: true, status: 200, body: undefined }, used };
}

/**
 * A reply to a command or an action goes to its response_url (no token needed, works where the bot
 * is not a member) while that lasts; otherwise, and for what an expired URL could not take, through
 * chat.postMessage into the conversation's thread.
 */
export async function deliverSlackReply(reply: CloudEvent, handle: ReplyHandle | undefined, secrets: Secrets, ctx: EgressContext): Promise<DeliveryOutcome> {
  const text = replyText(reply);
  if (typeof text !== 'string') return text;
  const conversation = conversationOfEvent(reply);
  const { buttons } = replyButtons(reply.data);
  let pieces = splitText(text, MAX_TEXT);

  if (handle && usableResponseUrl(handle, pieces.length, ctx)) {
    const ephemeral = (reply.data as { ephemeral?: unknown }).ephemeral === true;
    const { result, used } = await viaResponseUrl(ctx, handle, pieces, buttons, conversation.id, ephemeral);
    const left = handle.uses + used < handle.maxUses ? { ...handle, uses: handle.uses + used } : null;
    if (result.ok) return { ok: true, handle: left };
    const expired = result.status === 404 || result.status === 410 || result.reason === 'expired_url' || result.reason === 'used_url';
    if (!expired) return { ...failed(result), handle: left };
    pieces = pieces.slice(used);
  }

  // From here on a handle, if there was one, is spent or unusable: the gateway forgets it.
  const forget = handle ? { handle: null } : {};
  const token = secrets.botToken;
  if (!token) return { ...missingSecret('slack', 'botToken'), ...forget };
  let ts: string | undefined;
  for (const [i, piece] of pieces.entries()) {
    const r = await slackPost(ctx, token, conversation.id, piece, conversation.thread, i === pieces.length - 1 ? buttons : undefined);
    if (!r.ok) return { ...failed(r), ...forget };
    ts ??= str((r.body as Obj).ts);
  }
  return ts === undefined ? { ok: true, ...forget } : { ok: true, platformMessageId: ts, ...forget };
}

/**
 * Slack has no typing indicator a bot can show in a channel or thread: the `typing` message went away
 * with the RTM API, and `assistant.threads.setStatus` only works in an AI app's assistant threads.
 * So nothing is sent.
 */
async function startSlackTyping(): Promise<TypingOutcome> {
  return skipped('Slack has no typing indicator for bot messages in channels');
}

export const slack: ChatAdapter = {
  platform: 'slack',
  apiBaseEnv: 'KNBOT_SLACK_API_URL',
  defaultApiBase: 'https://slack.com/api',
  handleWebhook: handleSlackWebhook,
  deliverReply: deliverSlackReply,
  startTyping: startSlackTyping,
};
