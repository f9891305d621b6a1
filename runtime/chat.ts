import { randomUUID } from 'node:crypto';
import { ACTION_INVOKED, chatReplyEvent, conversationKey as keyOf, parseConversationKey } from '../eventing/chat.ts';
import type { CloudEvent } from '../eventing/codec.ts';
import type { ChatMessage, MessageResult, Reply, ReplyChunk } from './bot.ts';
import { type MaybePromise, andThen } from './maybe.ts';
import { HttpProblem } from './problem.ts';

/**
 * The normalized message of a `dev.knbot.chat.message.received` event (DESIGN §6). The conversation
 * comes from `data.conversation`, else the `subject` (`<conversation>[/<thread>]`), else the `source`.
 */
export function messageFromEvent(event: CloudEvent): ChatMessage {
  const data = event.data;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw invalid('data', 'chat message data must be a JSON object');
  const d = data as Record<string, unknown>;
  if (typeof d.text !== 'string') throw invalid('data.text', 'chat message data needs a text string');
  const conversation = conversationOf(d.conversation, event);
  const user = userOf(d.user, event);
  const msg: ChatMessage = { id: event.id, text: d.text, user, conversation, event };
  if (Array.isArray(d.attachments)) msg.attachments = d.attachments;
  if (Array.isArray(d.mentions)) msg.mentions = d.mentions;
  if (typeof event.chatplatform === 'string') msg.platform = event.chatplatform;
  if (event.type === ACTION_INVOKED) msg.action = actionOf(d.action);
  return msg;
}

function actionOf(value: unknown): NonNullable<ChatMessage['action']> {
  const a = value as Record<string, unknown> | null | undefined;
  if (typeof a !== 'object' || a === null || typeof a.type !== 'string' || typeof a.id !== 'string') throw invalid('data.action', 'an action needs a type and an id string');
  if (a.value !== undefined && typeof a.value !== 'string') throw invalid('data.action.value', 'must be a string');
  return a.value === undefined ? { type: a.type, id: a.id } : { type: a.type, id: a.id, value: a.value };
}

function conversationOf(value: unknown, event: CloudEvent): ChatMessage['conversation'] {
  if (value !== undefined) {
    const c = value as Record<string, unknown>;
    if (typeof value !== 'object' || value === null || typeof c.id !== 'string' || c.id === '') throw invalid('data.conversation.id', 'must be a non-empty string');
    if (c.thread !== undefined && typeof c.thread !== 'string') throw invalid('data.conversation.thread', 'must be a string');
    return c.thread === undefined ? { id: c.id } : { id: c.id, thread: c.thread as string };
  }
  return event.subject !== undefined ? parseConversationKey(event.subject) : { id: event.source };
}

function userOf(value: unknown, event: CloudEvent): ChatMessage['user'] {
  if (value === undefined) return { id: typeof event.chatuser === 'string' ? event.chatuser : 'anonymous' };
  const u = value as Record<string, unknown>;
  if (typeof value !== 'object' || value === null || typeof u.id !== 'string') throw invalid('data.user.id', 'must be a string');
  return typeof u.name === 'string' ? { id: u.id, name: u.name } : { id: u.id };
}

/** The conversation key of a message: `<conversation>[/<thread>]`, as in a chat event's `subject`. */
export function conversationKey(msg: ChatMessage): string {
  return keyOf(msg.conversation);
}

/** The scope of a pod's own `POST /v1/chat`, where no event names a source. */
const HTTP_SCOPE = '/http';

/**
 * The key a conversation's session state and turns are kept under. A conversation key alone is not
 * enough: a Slack channel and a Telegram chat may share an id, and a WebSocket or HTTP client names
 * its conversations itself, so any client could name someone else's. The key is the conversation's
 * scoped by the source of its events (a platform's workspace or app), and, where clients name their
 * conversations, by the user too (the gateway sets it to the authenticated principal).
 */
export function sessionKey(msg: ChatMessage): string {
  const event = msg.event;
  if (!event) return scoped(HTTP_SCOPE, msg.user.id, conversationKey(msg));
  return scoped(event.source, clientNamed(event) ? msg.user.id : '', conversationKey(msg));
}

/** The session key of any other CloudEvent (`onEvent`): its source, and its subject as the conversation. */
export function eventSessionKey(event: CloudEvent): string {
  return scoped(event.source, clientNamed(event) ? chatUser(event) : '', event.subject ?? '');
}

/** The session key of a conversation clients name themselves: per source, user and conversation. */
export function clientSessionKey(source: string, event: CloudEvent): string {
  return scoped(source, chatUser(event), event.subject ?? '');
}

function chatUser(event: CloudEvent): string {
  return typeof event.chatuser === 'string' ? event.chatuser : '';
}

/** WebSocket and HTTP clients of the gateway name their own conversations. */
function clientNamed(event: CloudEvent): boolean {
  return event.chatplatform === 'ws';
}

/** `source|user|conversation`, with `%` and `|` escaped in each part so no two keys read alike. */
function scoped(...parts: string[]): string {
  return parts.map((p) => p.replaceAll('%', '%25').replaceAll('|', '%7C')).join('|');
}

/** The `dev.knbot.chat.reply.send` event answering `msg` (DESIGN §4.1). */
export function replyEvent(msg: ChatMessage, reply: Reply, source: string): CloudEvent {
  return chatReplyEvent(msg, reply, source);
}

/** True when `onMessage` returned a stream of chunks rather than a whole reply. */
export function isStreamed(result: MessageResult): boolean {
  return isIterable(result) && typeof result !== 'string';
}

function isIterable(value: unknown): value is AsyncIterable<unknown> | Iterable<unknown> {
  return value !== null && typeof value === 'object' && (Symbol.asyncIterator in value || (Symbol.iterator in value && !Array.isArray(value)));
}

function chunkText(chunk: unknown): string {
  if (typeof chunk === 'string') return chunk;
  if (chunk !== null && typeof chunk === 'object' && typeof (chunk as ReplyChunk).text === 'string') return (chunk as ReplyChunk).text;
  throw new TypeError('a streamed reply chunk must be a string or {text}');
}

/**
 * Turns what `onMessage` returned into one reply, passing each streamed piece to `onChunk` as it is
 * produced. `undefined` when the bot did not answer. Synchronous for a whole reply without `onChunk`.
 */
export function collectReply(result: MessageResult, onChunk?: (text: string) => MaybePromise<void>): MaybePromise<Reply | undefined> {
  if (result === undefined || result === null) return undefined;
  if (typeof result === 'string') return whole({ text: result }, onChunk);
  if (isIterable(result)) return collectStream(result, onChunk);
  if (typeof result === 'object' && typeof (result as Reply).text === 'string') return whole(result as Reply, onChunk);
  throw new TypeError('onMessage must return a string, a {text} reply, an iterable of chunks, or nothing');
}

function whole(reply: Reply, onChunk?: (text: string) => MaybePromise<void>): MaybePromise<Reply> {
  return onChunk ? andThen(onChunk(reply.text), () => reply) : reply;
}

async function collectStream(result: AsyncIterable<unknown> | Iterable<unknown>, onChunk?: (text: string) => MaybePromise<void>): Promise<Reply> {
  let text = '';
  for await (const chunk of result) {
    const piece = chunkText(chunk);
    if (piece === '') continue;
    text += piece;
    if (onChunk) await onChunk(piece);
  }
  return { text };
}

/** Validates the JSON of `POST /v1/chat`: `{conversation, text, user?}`. */
export function messageFromChatRequest(body: unknown): ChatMessage {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalid('(body)', 'must be a JSON object {conversation, text, user?}');
  const b = body as Record<string, unknown>;
  if (typeof b.conversation !== 'string' || b.conversation === '') throw invalid('conversation', 'must be a non-empty string');
  if (typeof b.text !== 'string') throw invalid('text', 'must be a string');
  let user: ChatMessage['user'] = { id: 'anonymous' };
  if (typeof b.user === 'string') user = { id: b.user };
  else if (b.user !== undefined) {
    const u = b.user as Record<string, unknown>;
    if (typeof u !== 'object' || u === null || typeof u.id !== 'string') throw invalid('user', 'must be a string or {id, name?}');
    user = typeof u.name === 'string' ? { id: u.id, name: u.name } : { id: u.id };
  }
  const conversation = parseConversationKey(b.conversation);
  return { id: typeof b.id === 'string' && b.id !== '' ? b.id : randomUUID(), text: b.text, user, conversation };
}

function invalid(field: string, message: string): HttpProblem {
  return new HttpProblem(400, 'invalid_chat_message', 'Invalid chat message', `${field}: ${message}`, { errors: [{ field, code: 'invalid_chat_message', message }] });
}
