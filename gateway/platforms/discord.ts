// Discord interactions over HTTP: Ed25519 over timestamp + body, PING answered with PONG, everything
// else answered at once with a deferred response and followed up through the interaction webhook
// (token valid 15 minutes). Only interactions reach an HTTP endpoint: plain channel messages need the
// Gateway WebSocket, which a scale-to-zero bot cannot hold.
// https://discord.com/developers/docs/interactions/receiving-and-responding
import { conversationOfEvent } from '../../eventing/chat.ts';
import type { CloudEvent } from '../../eventing/codec.ts';
import { type Button, fit, replyButtons, rows, wireId } from './buttons.ts';
import { type ApiResult, callApi, credentialKey, failed, missingSecret, replyText, splitText } from './egress.ts';
import { ACTION_INVOKED, type ChatData, type ChatUser, type EventParts, MESSAGE_RECEIVED, ingressEvent, str, without } from './events.ts';
import type { BucketSpec } from './rate-limit.ts';
import type { ChatAdapter, DeliveryOutcome, EgressContext, ReplyHandle, Secrets, TypingOutcome, TypingTarget, WebhookRequest, WebhookResponse, WebhookResult } from './types.ts';
import { perConversation, shared, skipped, typingCall } from './typing.ts';
import { checkTimestamp, headerValue, isObject, malformed, parseJson, requirePost, requireSecret, unauthorized, verifyEd25519 } from './verify.ts';

type Obj = Record<string, unknown>;

/**
 * Discord documents no window for X-Signature-Timestamp; we apply Slack's five minutes both ways so a
 * captured request cannot be replayed later (the dedupe store forgets, the signature does not).
 */
export const DISCORD_WINDOW_MS = 5 * 60_000;
/** "Interaction tokens are valid for 15 minutes." */
const TOKEN_TTL_MS = 15 * 60_000;
/** Message content is at most 2000 characters. */
const MAX_TEXT = 2000;
const DISCORD_EPOCH = 1_420_070_400_000n;

const TYPE_NAMES: Record<number, string> = {
  2: 'application_command',
  3: 'message_component',
  4: 'application_command_autocomplete',
  5: 'modal_submit',
};

// Interaction response types (Discord's InteractionCallbackType).
const PONG = 1;
const DEFERRED_CHANNEL_MESSAGE = 5;
const DEFERRED_UPDATE_MESSAGE = 6;
const AUTOCOMPLETE_RESULT = 8;

const json = (body: unknown): WebhookResponse => ({ status: 200, headers: { 'content-type': 'application/json' }, body });

export function handleDiscordWebhook(req: WebhookRequest, secrets: Secrets, nowMs: number): WebhookResult {
  requirePost(req.method);
  const publicKey = requireSecret(secrets, 'publicKey', 'discord');
  const signature = headerValue(req.headers, 'x-signature-ed25519');
  const ts = checkTimestamp(headerValue(req.headers, 'x-signature-timestamp'), 'X-Signature-Timestamp', nowMs, DISCORD_WINDOW_MS);
  // Discord requires 401 for a bad signature, and probes endpoints with invalid ones.
  if (signature === undefined || !verifyEd25519(publicKey, Buffer.concat([Buffer.from(ts, 'utf8'), req.rawBody]), signature)) {
    throw unauthorized('bad_signature', 'invalid request signature');
  }
  const body = parseJson(req.rawBody);
  if (!isObject(body) || typeof body.type !== 'number') throw malformed('an interaction needs a numeric type');
  if (body.type === 1) return { response: json({ type: PONG }), events: [] };
  const typeName = TYPE_NAMES[body.type];
  if (typeName === undefined) throw malformed(`interaction type ${body.type} is not known`);
  const id = str(body.id);
  const token = str(body.token);
  if (id === undefined || token === undefined) throw malformed('an interaction needs an id and a token');

  const guild = str(body.guild_id);
  const member = isObject(body.member) ? body.member : {};
  const user = userOf(member.user ?? body.user);
  const channel = str(body.channel_id) ?? (isObject(body.channel) ? str(body.channel.id) : undefined);
  const parts: EventParts = {
    platform: 'discord',
    source: `/discord/${guild ?? '@me'}/${str(body.application_id) ?? 'unknown'}`,
    id,
    rawType: `dev.knbot.discord.interaction.${typeName}`,
    // The interaction token is a reply capability: it goes to the reply handle only.
    rawData: without(body, 'token'),
    bot: req.bot,
    time: snowflakeTime(id),
  };
  if (guild) parts.tenant = guild;
  if (user) parts.user = user.id;
  if (channel) parts.conversation = { id: channel };

  let response: WebhookResponse;
  if (body.type === 4) {
    // Autocomplete must be answered in the response itself, which cannot wait for the bot.
    return { response: json({ type: AUTOCOMPLETE_RESULT, data: { choices: [] } }), events: [ingressEvent(parts)] };
  } else if (body.type === 3) {
    // A button or menu: acknowledge without a "thinking…" message; replies become follow-ups.
    response = json({ type: DEFERRED_UPDATE_MESSAGE });
  } else {
    response = json({ type: DEFERRED_CHANNEL_MESSAGE });
  }
  const data = isObject(body.data) ? body.data : {};
  if (user && channel) parts.normalized = normalize(body.type, data, user, channel);
  parts.replyHandle = { platform: 'discord', kind: 'discord.interaction', value: token, expiresAt: nowMs + TOKEN_TTL_MS, uses: 0, maxUses: Number.MAX_SAFE_INTEGER, editOriginal: body.type !== 3 };
  return { response, events: [ingressEvent(parts)] };
}

/**
 * A slash command (CHAT_INPUT) is text typed at the bot, normalized as a message with `command` so the
 * bot runtime answers it with `onMessage`; context-menu commands, components and modals are actions.
 */
function normalize(type: number, data: Obj, user: ChatUser, channel: string): { type: string; data: ChatData } {
  const conversation = { id: channel };
  const name = str(data.name) ?? '';
  if (type === 2 && (data.type === undefined || data.type === 1)) {
    return { type: MESSAGE_RECEIVED, data: { text: optionValues(data.options).join(' '), user, conversation, command: { name, options: data.options ?? [] } } };
  }
  if (type === 2) {
    const target = str(data.target_id);
    const resolved = isObject(data.resolved) && isObject(data.resolved.messages) ? data.resolved.messages : {};
    const message = target !== undefined && isObject(resolved[target]) ? (resolved[target] as Obj) : {};
    return { type: ACTION_INVOKED, data: { text: str(message.content) ?? '', user, conversation, action: { type: data.type === 2 ? 'user_command' : 'message_command', id: name, ...(target ? { value: target } : {}) } } };
  }
  if (type === 3) {
    const values = Array.isArray(data.values) ? data.values.map(String) : [];
    const customId = str(data.custom_id) ?? '';
    // An option of the menu that stands in for too many buttons is a button press: its value is the id.
    if (customId.startsWith(BUTTON_MENU) && values.length === 1) {
      return { type: ACTION_INVOKED, data: { text: values[0]!, user, conversation, action: { type: 'message_component', id: values[0]!, value: values[0]! } } };
    }
    const value = values.length ? values.join(',') : undefined;
    return { type: ACTION_INVOKED, data: { text: value ?? '', user, conversation, action: { type: 'message_component', id: customId, ...(value !== undefined ? { value } : {}) } } };
  }
  const inputs = modalValues(data.components);
  return { type: ACTION_INVOKED, data: { text: inputs.join('\n'), user, conversation, action: { type: 'modal_submit', id: str(data.custom_id) ?? '' } } };
}

/** Option values in order, subcommand names included (`/config set key value` → `set key value`). */
function optionValues(options: unknown): string[] {
  if (!Array.isArray(options)) return [];
  return options.filter(isObject).flatMap((o) => (Array.isArray(o.options) ? [str(o.name) ?? '', ...optionValues(o.options)] : o.value !== undefined ? [String(o.value)] : []));
}

function modalValues(components: unknown): string[] {
  if (!Array.isArray(components)) return [];
  return components.filter(isObject).flatMap((c) => (c.value !== undefined ? [String(c.value)] : modalValues(c.components ?? (isObject(c.component) ? [c.component] : undefined))));
}

function userOf(v: unknown): ChatUser | undefined {
  if (!isObject(v) || typeof v.id !== 'string') return undefined;
  const name = str(v.global_name) ?? str(v.username);
  return name ? { id: v.id, name } : { id: v.id };
}

/** A snowflake's first 42 bits are ms since the Discord epoch (2015-01-01). */
function snowflakeTime(id: string): string | undefined {
  if (!/^\d{1,20}$/.test(id)) return undefined;
  return new Date(Number((BigInt(id) >> 22n) + DISCORD_EPOCH)).toISOString();
}

// --- egress ---------------------------------------------------------------------------------------

/**
 * Discord's global limit is 50 requests per second per bot; per-route limits come back in headers, and
 * interaction webhooks allow about five requests in two seconds. 429 answers carry `retry_after`.
 */
export function discordLimits(appKey: string, route: string): BucketSpec[] {
  const key = credentialKey('discord', appKey);
  return [
    { key, capacity: 50, perSecond: 50 },
    { key: `${key}:route:${credentialKey('route', route)}`, capacity: 5, perSecond: 2.5 },
  ];
}

const NO_MENTIONS = { parse: [] as string[] };

// Message components (discord.com/developers/docs/components/reference): at most 5 action rows (type 1)
// of at most 5 buttons (type 2; label ≤ 80 characters, custom_id ≤ 100), or of one string select
// (type 3) of at most 25 options (label and value ≤ 100).
const MAX_ROWS = 5;
const ROW_BUTTONS = 5;
const BUTTON_LABEL = 80;
const MENU_OPTIONS = 25;
const OPTION_LABEL = 100;
const PRIMARY = 1;
/** The custom_id prefix of the menus that stand in for buttons; a choice in one comes back as a press. */
export const BUTTON_MENU = 'knbot.buttons.';

/**
 * Up to 25 buttons as rows of 5 primary buttons (`custom_id` = the button's id); more as string selects
 * of 25 options each (`value` = the id), one per row, the list Discord offers for many choices.
 */
export function discordComponents(buttons: readonly Button[]): Obj[] {
  if (buttons.length <= MAX_ROWS * ROW_BUTTONS) {
    return rows(buttons, ROW_BUTTONS).map((row) => ({
      type: 1,
      components: row.map((b) => ({ type: 2, style: PRIMARY, label: fit(b.label, BUTTON_LABEL), custom_id: wireId('discord', b.id) })),
    }));
  }
  const menus = rows(buttons, MENU_OPTIONS);
  return menus.map((options, i) => ({
    type: 1,
    components: [
      {
        type: 3,
        custom_id: `${BUTTON_MENU}${i}`,
        placeholder: `Choose… (${i * MENU_OPTIONS + 1}–${i * MENU_OPTIONS + options.length})`,
        options: options.map((b) => ({ label: fit(b.label, OPTION_LABEL), value: wireId('discord', b.id) })),
      },
    ],
  }));
}

function discordBody(content: string, buttons: readonly Button[] | undefined): Obj {
  return buttons?.length ? { content, allowed_mentions: NO_MENTIONS, components: discordComponents(buttons) } : { content, allowed_mentions: NO_MENTIONS };
}

/** A follow-up (POST) or an edit of the original response or a follow-up (PATCH), by interaction token. */
export async function discordWebhookCall(ctx: EgressContext, appId: string, token: string, content: string, edit?: string, buttons?: readonly Button[]): Promise<ApiResult> {
  const url = `${ctx.apiBase}/webhooks/${appId}/${token}${edit ? `/messages/${edit}` : ''}`;
  return callApi(ctx, { method: edit ? 'PATCH' : 'POST', url, body: discordBody(content, buttons), limits: discordLimits(appId, token) });
}

export async function discordChannelPost(ctx: EgressContext, botToken: string, channel: string, content: string, buttons?: readonly Button[]): Promise<ApiResult> {
  const url = `${ctx.apiBase}/channels/${channel}/messages`;
  return callApi(ctx, { method: 'POST', url, headers: { authorization: `Bot ${botToken}` }, body: discordBody(content, buttons), limits: discordLimits(botToken, channel) });
}

/**
 * The first reply to a deferred interaction edits its "thinking…" placeholder (@original); later ones
 * are follow-ups. Without a live token (expired, or a reply nobody asked for) the bot posts to the
 * channel with its bot token, when it has one. Mentions in replies never ping anyone.
 */
export async function deliverDiscordReply(reply: CloudEvent, handle: ReplyHandle | undefined, secrets: Secrets, ctx: EgressContext): Promise<DeliveryOutcome> {
  const text = replyText(reply);
  if (typeof text !== 'string') return text;
  const pieces = splitText(text, MAX_TEXT);
  const { buttons } = replyButtons(reply.data);
  const last = pieces.length - 1;
  const appId = secrets.applicationId;
  let messageId: string | undefined;

  if (handle?.kind === 'discord.interaction' && handle.expiresAt > ctx.now() && appId) {
    let current = handle;
    for (const [i, piece] of pieces.entries()) {
      const r = await discordWebhookCall(ctx, appId, current.value, piece, current.editOriginal ? '@original' : undefined, i === last ? buttons : undefined);
      if (!r.ok) {
        // 404 Unknown Webhook: the token expired early; fall back below when nothing was sent yet.
        if (r.status === 404 && current === handle) break;
        return { ...failed(r), handle: current };
      }
      messageId ??= str((r.body as Obj | undefined)?.id);
      current = { ...current, uses: current.uses + 1, editOriginal: false };
    }
    if (current !== handle) return messageId === undefined ? { ok: true, handle: current } : { ok: true, platformMessageId: messageId, handle: current };
  }

  const botToken = secrets.botToken;
  if (!botToken) return handle ? { ...missingSecret('discord', 'botToken'), handle: null } : missingSecret('discord', 'botToken');
  const channel = conversationOfEvent(reply).id;
  for (const [i, piece] of pieces.entries()) {
    const r = await discordChannelPost(ctx, botToken, channel, piece, i === last ? buttons : undefined);
    if (!r.ok) return handle ? { ...failed(r), handle: null } : failed(r);
    messageId ??= str((r.body as Obj | undefined)?.id);
  }
  const out: DeliveryOutcome = { ok: true };
  if (messageId !== undefined) out.platformMessageId = messageId;
  if (handle) out.handle = null;
  return out;
}

/**
 * `POST /channels/{channel.id}/typing` with the bot token: "typing…" for about 10 seconds or until the
 * bot's next message. An interaction deferred with type 5 shows "<bot> is thinking…" until its first
 * reply edits it, so it gets no indicator on top.
 */
export async function startDiscordTyping(target: TypingTarget, secrets: Secrets, ctx: EgressContext): Promise<TypingOutcome> {
  const h = target.handle;
  if (h?.kind === 'discord.interaction' && h.editOriginal === true && h.expiresAt > ctx.now()) return skipped('the deferred interaction already shows that the bot is thinking');
  const botToken = secrets.botToken;
  if (!botToken) return skipped('the discord channel has no botToken configured');
  const channel = target.conversation.id;
  if (!/^\d{1,20}$/.test(channel)) return skipped('the conversation is not a Discord channel id');
  const limits = [shared(discordLimits(botToken, channel)[0]!), perConversation('discord', botToken, channel)];
  return typingCall(ctx, { method: 'POST', url: `${ctx.apiBase}/channels/${channel}/typing`, headers: { authorization: `Bot ${botToken}` }, body: undefined, limits });
}

export const discord: ChatAdapter = {
  platform: 'discord',
  apiBaseEnv: 'KNBOT_DISCORD_API_URL',
  defaultApiBase: 'https://discord.com/api/v10',
  handleWebhook: handleDiscordWebhook,
  deliverReply: deliverDiscordReply,
  startTyping: startDiscordTyping,
};
