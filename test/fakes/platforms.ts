// Fake chat-platform APIs for tests: express apps on loopback that check credentials and bodies the way
// the real APIs document them, answer in their shapes, record every request, and can be told to fail
// (429 with the platform's own Retry-After form, or 500) a number of times before behaving again.
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { IncomingHttpHeaders, Server } from 'node:http';
import express, { type Request, type Response } from 'express';

export interface Recorded {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: any;
  at: number;
}

export interface Failure {
  status: number;
  /** How many requests in a row get it. */
  times: number;
  /** Seconds; how it is sent depends on the platform (header, HTTP date, or body field). */
  retryAfter?: number;
  /** Send Retry-After as an HTTP date instead of seconds (where the platform uses the header). */
  asDate?: boolean;
  /** Only requests to this path fail; others pass as usual. */
  path?: string;
}

export interface FakePlatform {
  readonly url: string;
  readonly requests: Recorded[];
  fail(failure: Failure): void;
  close(): Promise<void>;
}

type Handler = (req: Request, res: Response, body: any) => void;
type FailureShape = (res: Response, f: Failure) => void;

async function startFake(route: Handler, failure: FailureShape): Promise<FakePlatform> {
  const requests: Recorded[] = [];
  const failures: Failure[] = [];
  const app = express();
  app.use(express.raw({ type: () => true, limit: '1mb' }));
  app.use((req, res) => {
    const text = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    let body: any;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = text;
    }
    requests.push({ method: req.method, path: req.path, headers: req.headers, body, at: Date.now() });
    const i = failures.findIndex((f) => f.path === undefined || f.path === req.path);
    const f = failures[i];
    if (f) {
      if (--f.times <= 0) failures.splice(i, 1);
      return failure(res, f);
    }
    route(req, res, body);
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    fail: (f) => void failures.push({ ...f }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function retryAfterHeader(res: Response, f: Failure): void {
  if (f.retryAfter === undefined) return;
  res.set('retry-after', f.asDate ? new Date(Date.now() + f.retryAfter * 1000).toUTCString() : String(f.retryAfter));
}

const isJson = (req: Request) => /^application\/json\b/i.test(req.get('content-type') ?? '');
const utf8Bytes = (s: string) => Buffer.byteLength(s, 'utf8');
const isText = (v: unknown, max: number, min = 1): v is string => typeof v === 'string' && v.length >= min && v.length <= max;

// --- Slack Web API (https://api.slack.com/web): HTTP 200 with {ok:false, error} for errors, 429 + Retry-After.

/**
 * What Block Kit refuses (api.slack.com/reference/block-kit) in the blocks knbot sends: more than 50
 * blocks; a section whose text is not 1–3,000 characters; an actions block of other than 1–25 elements;
 * a button whose plain_text is not 1–75 characters, whose action_id is not 1–255 characters or repeats
 * one in its block, or whose value passes 2,000. Undefined when the blocks are fine.
 */
function invalidBlocks(blocks: unknown): string | undefined {
  if (blocks === undefined) return undefined;
  if (!Array.isArray(blocks) || blocks.length > 50) return 'blocks must be an array of at most 50 blocks';
  for (const [i, b] of blocks.entries()) {
    if (b?.type === 'section') {
      if (!['mrkdwn', 'plain_text'].includes(b.text?.type) || !isText(b.text?.text, 3000)) return `blocks[${i}].text must be 1-3000 characters`;
    } else if (b?.type === 'actions') {
      if (!Array.isArray(b.elements) || b.elements.length < 1 || b.elements.length > 25) return `blocks[${i}].elements must hold 1-25 elements`;
      const ids = new Set<string>();
      for (const [j, e] of b.elements.entries()) {
        if (e?.type !== 'button' || e.text?.type !== 'plain_text' || !isText(e.text?.text, 75)) return `blocks[${i}].elements[${j}].text must be plain_text of 1-75 characters`;
        if (!isText(e.action_id, 255) || ids.has(e.action_id)) return `blocks[${i}].elements[${j}].action_id must be 1-255 characters and unique in the block`;
        ids.add(e.action_id);
        if (e.value !== undefined && !isText(e.value, 2000)) return `blocks[${i}].elements[${j}].value must be 1-2000 characters`;
      }
    } else return `blocks[${i}] has an unsupported type`;
  }
  return undefined;
}

export interface FakeSlack extends FakePlatform {
  /** A response_url Slack would put in a slash command or an action (usable 5 times). */
  responseUrl(): string;
}

export async function startFakeSlack(botToken: string): Promise<FakeSlack> {
  const urls = new Map<string, number>();
  let seq = 0;
  const fake = await startFake(
    (req, res, body) => {
      if (req.path.startsWith('/commands/')) {
        const uses = urls.get(req.path);
        if (uses === undefined || uses >= 5) return void res.status(404).json({ ok: false, error: uses === undefined ? 'expired_url' : 'used_url' });
        if (!isJson(req) || typeof body?.text !== 'string') return void res.status(400).json({ ok: false, error: 'invalid_payload' });
        if (invalidBlocks(body.blocks)) return void res.status(400).json({ ok: false, error: 'invalid_blocks' });
        urls.set(req.path, uses + 1);
        return void res.json({ ok: true });
      }
      const auth = req.get('authorization');
      if (auth === undefined) return void res.json({ ok: false, error: 'not_authed' });
      if (auth !== `Bearer ${botToken}`) return void res.json({ ok: false, error: 'invalid_auth' });
      if (!isJson(req)) return void res.json({ ok: false, error: 'invalid_arguments' });
      if (typeof body?.channel !== 'string' || body.channel === 'C_MISSING') return void res.json({ ok: false, error: 'channel_not_found' });
      if (typeof body.text !== 'string' || body.text === '') return void res.json({ ok: false, error: 'no_text' });
      const blocksError = invalidBlocks(body.blocks);
      if (blocksError) return void res.json({ ok: false, error: 'invalid_blocks', errors: [blocksError] });
      if (req.path === '/chat.postMessage') {
        const ts = `1700000000.${String(++seq).padStart(6, '0')}`;
        return void res.json({ ok: true, channel: body.channel, ts, message: { type: 'message', text: body.text, ts } });
      }
      if (req.path === '/chat.update') {
        if (typeof body.ts !== 'string') return void res.json({ ok: false, error: 'message_not_found' });
        return void res.json({ ok: true, channel: body.channel, ts: body.ts, text: body.text });
      }
      res.status(404).json({ ok: false, error: 'unknown_method' });
    },
    (res, f) => {
      retryAfterHeader(res, f);
      res.status(f.status).json(f.status === 429 ? { ok: false, error: 'ratelimited' } : { ok: false, error: 'internal_error' });
    },
  );
  return {
    ...fake,
    responseUrl() {
      const path = `/commands/T1DC2JH3J/${Math.floor(Math.random() * 1e12)}/${randomUUID().replaceAll('-', '')}`;
      urls.set(path, 0);
      return fake.url + path;
    },
  };
}

// --- Telegram Bot API (https://core.telegram.org/bots/api#making-requests): {ok, result} or
// {ok:false, error_code, description, parameters?: {retry_after}}; the token is in the path.

/** The `action` values sendChatAction takes (core.telegram.org/bots/api#sendchataction). */
const CHAT_ACTIONS = new Set(['typing', 'upload_photo', 'record_video', 'upload_video', 'record_voice', 'upload_voice', 'upload_document', 'choose_sticker', 'find_location', 'record_video_note', 'upload_video_note']);

/**
 * What the Bot API refuses in an inline keyboard (core.telegram.org/bots/api#inlinekeyboardmarkup): a
 * button without text or callback_data, callback_data outside 1–64 bytes (BUTTON_DATA_INVALID), more than
 * 8 buttons in a row or 100 in all (observed limits: "reply markup is too long").
 */
function invalidMarkup(markup: any): string | undefined {
  if (markup === undefined) return undefined;
  const keyboard = markup?.inline_keyboard;
  if (!Array.isArray(keyboard) || !keyboard.every(Array.isArray)) return "Bad Request: can't parse reply keyboard markup JSON object";
  if (keyboard.some((row: unknown[]) => row.length > 8) || keyboard.flat().length > 100) return 'Bad Request: reply markup is too long';
  for (const button of keyboard.flat()) {
    if (typeof button?.text !== 'string' || button.text === '') return "Bad Request: can't parse inline keyboard button: Text must be non-empty";
    if (button.callback_data === undefined) return "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard";
    if (typeof button.callback_data !== 'string' || utf8Bytes(button.callback_data) < 1 || utf8Bytes(button.callback_data) > 64) return 'Bad Request: BUTTON_DATA_INVALID';
  }
  return undefined;
}

export async function startFakeTelegram(botToken: string, knownChats: readonly string[]): Promise<FakePlatform> {
  let seq = 100;
  const error = (res: Response, code: number, description: string) => void res.status(code).json({ ok: false, error_code: code, description });
  return startFake(
    (req, res, body) => {
      const m = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(req.path);
      if (!m) return error(res, 404, 'Not Found');
      if (m[1] !== botToken) return error(res, 401, 'Unauthorized');
      if (!isJson(req)) return error(res, 400, 'Bad Request: unsupported content type');
      if (body?.chat_id === undefined || !knownChats.includes(String(body.chat_id))) return error(res, 400, 'Bad Request: chat not found');
      if (body.message_thread_id !== undefined && typeof body.message_thread_id !== 'number') return error(res, 400, 'Bad Request: message thread not found');
      if (m[2] === 'sendChatAction') {
        if (!CHAT_ACTIONS.has(body.action)) return error(res, 400, 'Bad Request: wrong parameter action in request');
        return void res.json({ ok: true, result: true });
      }
      if (typeof body.text !== 'string' || body.text.trim() === '') return error(res, 400, 'Bad Request: message text is empty');
      if (body.text.length > 4096) return error(res, 400, 'Bad Request: message is too long');
      const markupError = invalidMarkup(body.reply_markup);
      if (markupError) return error(res, 400, markupError);
      const chat = { id: body.chat_id, type: String(body.chat_id).startsWith('-') ? 'supergroup' : 'private' };
      if (m[2] === 'sendMessage') return void res.json({ ok: true, result: { message_id: ++seq, date: 1700000000, chat, text: body.text } });
      if (m[2] === 'editMessageText') {
        if (typeof body.message_id !== 'number') return error(res, 400, 'Bad Request: message to edit not found');
        return void res.json({ ok: true, result: { message_id: body.message_id, date: 1700000000, edit_date: 1700000001, chat, text: body.text } });
      }
      error(res, 404, 'Not Found: method not found');
    },
    (res, f) =>
      void res.status(f.status).json(
        f.status === 429
          ? { ok: false, error_code: 429, description: `Too Many Requests: retry after ${f.retryAfter ?? 1}`, parameters: { retry_after: f.retryAfter ?? 1 } }
          : { ok: false, error_code: f.status, description: 'Internal Server Error' },
      ),
  );
}

// --- Discord (https://discord.com/developers/docs/interactions/receiving-and-responding): follow-ups
// authenticate by the interaction token in the path; channel messages and typing by `Authorization: Bot
// <token>`. Each interaction keeps its messages: the original response (a "thinking…" placeholder until
// it is edited) and its follow-ups, so tests can read what the user sees.

export interface InteractionMessages {
  /** The original response's text; undefined while it still shows "thinking…". */
  original: string | undefined;
  followups: { id: string; content: string }[];
}

export interface FakeDiscord extends FakePlatform {
  /** An interaction token Discord would accept for follow-ups (its original response deferred). */
  interactionToken(): string;
  /** What an interaction's messages show now. */
  interaction(token: string): InteractionMessages;
}

/**
 * What Discord refuses in message components (discord.com/developers/docs/components/reference): other
 * than 1–5 action rows; a row of other than 1–5 buttons or of a select with company; a button with a bad
 * style, a label over 80 characters, or a custom_id not 1–100 characters; a string select whose options
 * are not 1–25 with labels and values of 1–100 characters; a custom_id used twice in the message.
 */
function invalidComponents(components: any): string | undefined {
  if (components === undefined) return undefined;
  if (!Array.isArray(components) || components.length < 1 || components.length > 5) return 'components: Must be between 1 and 5 in length.';
  const ids = new Set<string>();
  const customId = (c: any, at: string) => {
    if (!isText(c.custom_id, 100)) return `${at}.custom_id: Must be between 1 and 100 in length.`;
    if (ids.has(c.custom_id)) return `${at}.custom_id: Component custom id cannot be duplicated`;
    ids.add(c.custom_id);
    return undefined;
  };
  for (const [i, row] of components.entries()) {
    const at = `components.${i}`;
    if (row?.type !== 1 || !Array.isArray(row.components) || row.components.length < 1 || row.components.length > 5) return `${at}.components: Must be between 1 and 5 in length.`;
    const hasSelect = row.components.some((c: any) => c?.type === 3);
    if (hasSelect && row.components.length > 1) return `${at}.components: A select menu takes a whole action row`;
    for (const [j, c] of row.components.entries()) {
      const cat = `${at}.components.${j}`;
      if (c?.type === 2) {
        if (![1, 2, 3, 4].includes(c.style)) return `${cat}.style: Value must be one of {1, 2, 3, 4, 5, 6}.`;
        if (c.label !== undefined && !isText(c.label, 80, 0)) return `${cat}.label: Must be 80 or fewer in length.`;
        const bad = customId(c, cat);
        if (bad) return bad;
      } else if (c?.type === 3) {
        const bad = customId(c, cat);
        if (bad) return bad;
        if (!Array.isArray(c.options) || c.options.length < 1 || c.options.length > 25) return `${cat}.options: Must be between 1 and 25 in length.`;
        const values = new Set<string>();
        for (const [k, o] of c.options.entries()) {
          if (!isText(o?.label, 100) || !isText(o?.value, 100) || values.has(o.value)) return `${cat}.options.${k}: Must be between 1 and 100 in length and unique.`;
          values.add(o.value);
        }
      } else return `${cat}.type: Value must be one of {2, 3, 4, 5, 6, 7, 8}.`;
    }
  }
  return undefined;
}

export async function startFakeDiscord(applicationId: string, botToken: string): Promise<FakeDiscord> {
  const interactions = new Map<string, { originalId: string; original: string | undefined; followups: Map<string, string> }>();
  let seq = 1_300_000_000_000_000_000n;
  const message = (content: string, id = String(++seq), channel = '1190000000000000000') => ({ id, type: 0, content, channel_id: channel });
  const invalid = (body: any) => typeof body?.content !== 'string' || body.content === '' || body.content.length > 2000 || invalidComponents(body.components) !== undefined;
  const fake = await startFake(
    (req, res, body) => {
      const hook = /^\/webhooks\/([^/]+)\/([^/]+)(?:\/messages\/([^/]+))?$/.exec(req.path);
      const channel = /^\/channels\/(\d+)\/(messages|typing)$/.exec(req.path);
      if (hook) {
        const interaction = interactions.get(hook[2]!);
        if (hook[1] !== applicationId || !interaction) return void res.status(404).json({ message: 'Unknown Webhook', code: 10015 });
        if ((req.method === 'PATCH') !== (hook[3] !== undefined)) return void res.status(405).json({ message: '405: Method Not Allowed', code: 0 });
        if (!isJson(req) || invalid(body)) return void res.status(400).json({ message: 'Invalid Form Body', code: 50035, errors: invalidComponents(body?.components) });
        const target = hook[3];
        if (target === undefined) {
          const sent = message(body.content);
          interaction.followups.set(sent.id, body.content);
          return void res.json(sent);
        }
        if (target === '@original' || target === interaction.originalId) {
          interaction.original = body.content;
          return void res.json(message(body.content, interaction.originalId));
        }
        if (!interaction.followups.has(target)) return void res.status(404).json({ message: 'Unknown Message', code: 10008 });
        interaction.followups.set(target, body.content);
        return void res.json(message(body.content, target));
      }
      if (channel && req.method === 'POST') {
        if (req.get('authorization') !== `Bot ${botToken}`) return void res.status(401).json({ message: '401: Unauthorized', code: 0 });
        // Trigger Typing Indicator: no body, 204 No Content.
        if (channel[2] === 'typing') return void res.status(204).end();
        if (!isJson(req) || invalid(body)) return void res.status(400).json({ message: 'Invalid Form Body', code: 50035, errors: invalidComponents(body?.components) });
        return void res.json(message(body.content, undefined, channel[1]));
      }
      res.status(404).json({ message: '404: Not Found', code: 0 });
    },
    (res, f) => {
      retryAfterHeader(res, f);
      if (f.status === 429) return void res.status(429).json({ message: 'You are being rate limited.', retry_after: f.retryAfter ?? 1, global: false });
      res.status(f.status).json({ message: '500: Internal Server Error', code: 0 });
    },
  );
  return {
    ...fake,
    interactionToken() {
      const token = `aW50ZXJhY3Rpb246${randomUUID().replaceAll('-', '')}`;
      interactions.set(token, { originalId: String(++seq), original: undefined, followups: new Map() });
      return token;
    },
    interaction(token) {
      const i = interactions.get(token);
      if (!i) throw new Error('no such interaction');
      return { original: i.original, followups: [...i.followups].map(([id, content]) => ({ id, content })) };
    },
  };
}

// --- LINE Messaging API (https://developers.line.biz/en/reference/messaging-api/): Bearer channel
// access token; reply tokens are single use; X-Line-Retry-Key only on push, 409 once accepted.

export interface FakeLine extends FakePlatform {
  replyToken(): string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * What LINE refuses in a quick reply (developers.line.biz/en/reference/messaging-api/#quick-reply): other
 * than 1–13 items; an item that is not an action; a postback action whose label is not 1–20 characters,
 * whose data is not 1–300, or whose displayText passes 300.
 */
function invalidQuickReply(quickReply: any): string | undefined {
  if (quickReply === undefined) return undefined;
  const items = quickReply?.items;
  if (!Array.isArray(items) || items.length < 1 || items.length > 13) return 'quickReply.items: Size must be between 1 and 13';
  for (const [i, item] of items.entries()) {
    const a = item?.action;
    if (item?.type !== 'action' || a?.type !== 'postback') return `quickReply.items[${i}]: must be an action`;
    if (!isText(a.label, 20)) return `quickReply.items[${i}].action.label: Length must be between 1 and 20`;
    if (!isText(a.data, 300)) return `quickReply.items[${i}].action.data: Length must be between 1 and 300`;
    if (a.displayText !== undefined && !isText(a.displayText, 300)) return `quickReply.items[${i}].action.displayText: Length must be between 1 and 300`;
  }
  return undefined;
}

export async function startFakeLine(channelAccessToken: string): Promise<FakeLine> {
  const replyTokens = new Set<string>();
  const accepted = new Map<string, string>();
  let seq = 500_000_000_000_000_000;
  const sent = (messages: unknown[]) => messages.map(() => ({ id: String(++seq), quoteToken: randomUUID() }));
  const fake = await startFake(
    (req, res, body) => {
      if (req.get('authorization') !== `Bearer ${channelAccessToken}`) {
        return void res.status(401).json({ message: 'Authentication failed. Confirm that the access token in the authorization header is valid.' });
      }
      if (!isJson(req)) return void res.status(415).json({ message: 'The content type is not supported' });
      if (req.path === '/v2/bot/chat/loading/start') {
        // One-to-one chats only: chatId is a user ID; loadingSeconds 5–60, a multiple of 5 (default 20).
        if (typeof body?.chatId !== 'string' || !/^U[0-9a-f]{32}$/.test(body.chatId)) return void res.status(400).json({ message: 'The request body has 1 error(s)', details: [{ message: 'Invalid chat ID', property: 'chatId' }] });
        const seconds = body.loadingSeconds;
        if (seconds !== undefined && (!Number.isInteger(seconds) || seconds < 5 || seconds > 60 || seconds % 5 !== 0)) {
          return void res.status(400).json({ message: 'The request body has 1 error(s)', details: [{ message: 'Must be a multiple of 5 between 5 and 60', property: 'loadingSeconds' }] });
        }
        return void res.status(202).json({});
      }
      const messages = body?.messages;
      const validMessages =
        Array.isArray(messages) &&
        messages.length >= 1 &&
        messages.length <= 5 &&
        messages.every((m: any) => m?.type === 'text' && typeof m.text === 'string' && m.text.length >= 1 && m.text.length <= 5000 && invalidQuickReply(m.quickReply) === undefined);
      const retryKey = req.get('x-line-retry-key');
      if (req.path === '/v2/bot/message/reply') {
        if (retryKey !== undefined) return void res.status(400).json({ message: 'The retry key is not supported for this API' });
        if (!validMessages) return void res.status(400).json({ message: 'The request body has 1 error(s)' });
        if (!replyTokens.delete(body.replyToken)) return void res.status(400).json({ message: 'Invalid reply token' });
        return void res.json({ sentMessages: sent(messages) });
      }
      if (req.path === '/v2/bot/message/push') {
        if (retryKey !== undefined && !UUID.test(retryKey)) return void res.status(400).json({ message: 'The value of the X-Line-Retry-Key header is invalid' });
        if (retryKey !== undefined && accepted.has(retryKey)) {
          res.set('x-line-accepted-request-id', accepted.get(retryKey)!);
          return void res.status(409).json({ message: 'The retry key is already accepted', sentMessages: [] });
        }
        if (typeof body?.to !== 'string' || !validMessages) return void res.status(400).json({ message: 'The request body has 1 error(s)' });
        if (retryKey !== undefined) accepted.set(retryKey, randomUUID());
        return void res.json({ sentMessages: sent(messages) });
      }
      res.status(404).json({ message: 'Not found' });
    },
    (res, f) => {
      retryAfterHeader(res, f);
      res.status(f.status).json({ message: f.status === 429 ? 'The API rate limit has been exceeded. Try again later.' : 'An error occurred in the backend server' });
    },
  );
  return {
    ...fake,
    replyToken() {
      const token = randomUUID().replaceAll('-', '');
      replyTokens.add(token);
      return token;
    },
  };
}

// --- WhatsApp Cloud API (https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages):
// `POST /<version>/<phone-number-id>/messages`, Bearer access token, Graph error objects. The same path
// marks a message read and shows "typing…" (`status: read`, `typing_indicator`). A free-form message to
// someone who last wrote more than 24 hours ago is refused with 131047.

export interface FakeWhatsApp extends FakePlatform {
  /** From now on `waId` last wrote more than 24 hours ago: free-form messages to them are refused. */
  outsideWindow(waId: string): void;
}

/**
 * What the Cloud API refuses (error 131009, "Parameter value is not valid") in an interactive message:
 * reply buttons other than 1–3, a title not 1–20 characters or repeated, an id not 1–256 or repeated, a
 * body not 1–1,024 characters; a list whose button is not 1–20 characters, whose rows are not 1–10 in
 * all, a row title not 1–24, a description over 72, an id not 1–200 or repeated, a body over 4,096.
 */
function invalidInteractive(i: any): string | undefined {
  if (i?.type === 'button') {
    const buttons = i.action?.buttons;
    if (!isText(i.body?.text, 1024)) return 'body.text must be 1-1024 characters';
    if (!Array.isArray(buttons) || buttons.length < 1 || buttons.length > 3) return 'action.buttons must hold 1-3 buttons';
    const ids = new Set<string>();
    const titles = new Set<string>();
    for (const b of buttons) {
      if (b?.type !== 'reply' || !isText(b.reply?.title, 20) || !isText(b.reply?.id, 256)) return 'a reply button needs a title of 1-20 characters and an id of 1-256';
      if (ids.has(b.reply.id) || titles.has(b.reply.title)) return 'reply buttons need unique ids and titles';
      ids.add(b.reply.id);
      titles.add(b.reply.title);
    }
    return undefined;
  }
  if (i?.type === 'list') {
    const sections = i.action?.sections;
    if (!isText(i.body?.text, 4096)) return 'body.text must be 1-4096 characters';
    if (!isText(i.action?.button, 20)) return 'action.button must be 1-20 characters';
    if (!Array.isArray(sections) || sections.length < 1 || sections.length > 10) return 'action.sections must hold 1-10 sections';
    const rows = sections.flatMap((s: any) => (Array.isArray(s?.rows) ? s.rows : [undefined]));
    if (rows.length < 1 || rows.length > 10) return 'a list holds 1-10 rows';
    const ids = new Set<string>();
    for (const r of rows) {
      if (!isText(r?.title, 24) || !isText(r?.id, 200) || (r.description !== undefined && !isText(r.description, 72))) return 'a row needs a title of 1-24 characters, an id of 1-200 and a description of at most 72';
      if (ids.has(r.id)) return 'rows need unique ids';
      ids.add(r.id);
    }
    return undefined;
  }
  return 'interactive.type must be button or list';
}

export async function startFakeWhatsApp(accessToken: string, phoneNumberId: string): Promise<FakeWhatsApp> {
  let seq = 0;
  const closed = new Set<string>();
  const graphError = (res: Response, status: number, code: number, message: string, extra: Record<string, unknown> = {}) =>
    void res.status(status).json({ error: { message, type: 'OAuthException', code, ...extra, fbtrace_id: 'AbCdEf' } });
  const fake = await startFake(
    (req, res, body) => {
      const m = /^\/(v\d+\.\d+)\/([^/]+)\/messages$/.exec(req.path);
      if (!m || req.method !== 'POST') return graphError(res, 400, 100, 'Unknown path components');
      if (req.get('authorization') !== `Bearer ${accessToken}`) return graphError(res, 401, 190, 'Invalid OAuth access token - Cannot parse access token');
      if (m[2] !== phoneNumberId) return graphError(res, 400, 100, `Unsupported post request. Object with ID '${m[2]}' does not exist`);
      if (!isJson(req) || body?.messaging_product !== 'whatsapp') return graphError(res, 400, 100, 'The parameter messaging_product is required.');
      if (body.status !== undefined) {
        if (body.status !== 'read' || typeof body.message_id !== 'string' || !body.message_id.startsWith('wamid.')) return graphError(res, 400, 100, 'Invalid parameter');
        if (body.typing_indicator !== undefined && body.typing_indicator?.type !== 'text') return graphError(res, 400, 100, 'Invalid parameter');
        return void res.json({ success: true });
      }
      if (body.type === 'interactive') {
        const problem = typeof body.to === 'string' ? invalidInteractive(body.interactive) : 'to is required';
        if (problem) return graphError(res, 400, 131009, '(#131009) Parameter value is not valid', { error_data: { messaging_product: 'whatsapp', details: problem } });
      } else if (typeof body.to !== 'string' || body.type !== 'text' || typeof body.text?.body !== 'string' || body.text.body === '' || body.text.body.length > 4096) {
        return graphError(res, 400, 100, 'Invalid parameter');
      }
      if (closed.has(body.to)) {
        return graphError(res, 400, 131047, '(#131047) Re-engagement message', {
          error_data: { messaging_product: 'whatsapp', details: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.' },
        });
      }
      res.json({ messaging_product: 'whatsapp', contacts: [{ input: body.to, wa_id: body.to }], messages: [{ id: `wamid.FAKE${String(++seq).padStart(8, '0')}` }] });
    },
    (res, f) => {
      retryAfterHeader(res, f);
      if (f.status === 429) return graphError(res, 429, 130429, '(#130429) Rate limit hit');
      graphError(res, f.status, 2, 'Service temporarily unavailable');
    },
  );
  return { ...fake, outsideWindow: (waId) => void closed.add(waId) };
}
