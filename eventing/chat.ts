import { randomUUID } from 'node:crypto';
import type { CloudEvent } from './cloudevent.ts';

// The chat CloudEvents of DESIGN §6 that more than one part makes: the bot runtime answers messages
// with replies, and so does the broker for an Event with a canned reply.

export const MESSAGE_RECEIVED = 'dev.knbot.chat.message.received';
export const REPLY_SEND = 'dev.knbot.chat.reply.send';
/** A piece of a reply still being written, for clients that show it as it comes (WebSocket, SSE). */
export const REPLY_CHUNK = 'dev.knbot.chat.reply.chunk';
export const TYPING_START = 'dev.knbot.chat.typing.start';
/** A button pressed, a command run, a menu item chosen: `data.action` says which. */
export const ACTION_INVOKED = 'dev.knbot.chat.action.invoked';
/** Someone joined a conversation the bot is in. */
export const MEMBER_JOINED = 'dev.knbot.chat.member.joined';
/** Egress outcomes (gateway → broker): a reply reached its platform, or could not. */
export const REPLY_DELIVERED = 'dev.knbot.chat.reply.delivered';
export const REPLY_FAILED = 'dev.knbot.chat.reply.failed';
/** Set (`"true"`) on a message whose client shows replies as they are written: the bot then emits chunks. */
export const STREAM_EXTENSION = 'chatstream';
/** Extensions a reply carries over from the message it answers (DESIGN §4.1, §6). */
export const CARRIED_EXTENSIONS = ['chatbot', 'chatplatform', 'chattenant', 'chatuser', 'partitionkey'] as const;
/** The distributed tracing extension (W3C Trace Context in CloudEvents). */
const TRACE_EXTENSIONS = ['traceparent', 'tracestate'] as const;

export interface Conversation {
  id: string;
  thread?: string;
}

/** `<conversation>[/<thread>]`, as a chat event's `subject` writes it. */
export function conversationKey(c: Conversation): string {
  return c.thread === undefined ? c.id : `${c.id}/${c.thread}`;
}

/** Splits a conversation key (`subject`) into conversation and thread. */
export function parseConversationKey(key: string): Conversation {
  const slash = key.indexOf('/');
  return slash > 0 ? { id: key.slice(0, slash), thread: key.slice(slash + 1) } : { id: key };
}

/** The `dev.knbot.chat.reply.send` event answering `message` (DESIGN §4.1): same subject, chat extensions carried over. */
export function chatReplyEvent(
  message: { id: string; conversation: Conversation; event?: CloudEvent },
  reply: { text: string; [field: string]: unknown },
  source: string,
): CloudEvent {
  const inEvent = message.event;
  const out: CloudEvent = {
    specversion: '1.0',
    id: randomUUID(),
    source,
    type: REPLY_SEND,
    subject: inEvent?.subject ?? conversationKey(message.conversation),
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
  };
  if (inEvent) {
    for (const name of CARRIED_EXTENSIONS) if (inEvent[name] !== undefined) out[name] = inEvent[name];
    // The reply belongs to the message's trace: its delivery (egress) shows in the same one.
    for (const name of TRACE_EXTENSIONS) if (inEvent[name] !== undefined) out[name] = inEvent[name];
  }
  out.data = { ...reply, conversation: message.conversation, inReplyTo: message.id };
  return out;
}

/**
 * The `chatkeyword` extension of a message (what an Event's `keywords` match): its first word, lower
 * case, without a leading `/` (slash commands) or trailing punctuation; undefined for none.
 */
export function keywordOf(text: string): string | undefined {
  const first = /^\s*\/?([^\s]{1,64})/u.exec(text)?.[1];
  const word = first?.toLowerCase().replace(/[.,!?;:]+$/u, '');
  return word ? word : undefined;
}

/** One `dev.knbot.chat.reply.chunk` of the reply to `message`: the `index`-th piece of its text. */
export function chatChunkEvent(message: { id: string; conversation: Conversation; event?: CloudEvent }, text: string, index: number, source: string): CloudEvent {
  const event = chatReplyEvent(message, { text, index }, source);
  event.type = REPLY_CHUNK;
  return event;
}

/** The `dev.knbot.chat.typing.start` asking the platform (or client) of `message` to show the bot typing. */
export function chatTypingEvent(message: { id: string; conversation: Conversation; event?: CloudEvent }, source: string): CloudEvent {
  const event = chatReplyEvent(message, { text: '' }, source);
  event.type = TYPING_START;
  event.data = { conversation: message.conversation, inReplyTo: message.id };
  return event;
}

/**
 * The conversation of a chat event, read leniently: `data.conversation` when it is well formed, else
 * the `subject`, else the `source`.
 */
export function conversationOfEvent(event: CloudEvent): Conversation {
  const c = (event.data as { conversation?: { id?: unknown; thread?: unknown } } | undefined)?.conversation;
  if (c && typeof c.id === 'string' && c.id !== '') return typeof c.thread === 'string' ? { id: c.id, thread: c.thread } : { id: c.id };
  return event.subject !== undefined ? parseConversationKey(event.subject) : { id: event.source };
}
