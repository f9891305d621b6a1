// Builds the raw and normalized chat CloudEvents of DESIGN §6 from what an adapter read.
import { ACTION_INVOKED, type Conversation, MEMBER_JOINED, MESSAGE_RECEIVED, conversationKey } from '../../eventing/chat.ts';
import type { CloudEvent } from '../../eventing/codec.ts';
import type { ChatPlatform, IngressEvent, ReplyHandle, SendFailure } from './types.ts';

export { ACTION_INVOKED, MEMBER_JOINED, MESSAGE_RECEIVED };

export interface ChatUser {
  id: string;
  name?: string;
}

export interface Attachment {
  /** The platform's kind: `image`, `photo`, `file`, `sticker`, … */
  type: string;
  /** The platform's id for fetching it (Telegram file_id, LINE/WhatsApp media id). */
  id?: string;
  url?: string;
  name?: string;
  mimeType?: string;
}

export interface Mention {
  id: string;
  name?: string;
}

/** Normalized `data` (DESIGN §6), plus what an action or a join adds. */
export interface ChatData {
  text: string;
  user: ChatUser;
  conversation: Conversation;
  attachments?: Attachment[];
  mentions?: Mention[];
  /** A slash/application command: its name (with its options, where the platform has them). */
  command?: { name: string; options?: unknown };
  /** `chat.action.invoked`: what was pressed, chosen or submitted. */
  action?: { type: string; id: string; value?: string };
  /** `chat.member.joined`: who joined (the `user` is the first of them). */
  members?: ChatUser[];
}

export interface EventParts {
  platform: ChatPlatform;
  /** `/<platform>/<tenant>/<app>` */
  source: string;
  /** The platform's own event id. */
  id: string;
  /** `dev.knbot.<platform>.<kind>.<native-type>` */
  rawType: string;
  /** The native payload with the reply capabilities already taken out. */
  rawData: unknown;
  bot: string;
  time?: string;
  tenant?: string;
  user?: string;
  /** The conversation key; absent for events that belong to no conversation. */
  conversation?: Conversation;
  redelivery?: boolean;
  normalized?: { type: string; data: ChatData };
  replyHandle?: ReplyHandle;
  sendFailed?: SendFailure;
}

/**
 * The raw event and, when there is one, the normalized event of one platform event.
 *
 * They are two events, so they cannot share `source`+`id` (CloudEvents lets a consumer drop the second
 * as a duplicate): the normalized one, which bots answer and reply handles are keyed by, keeps the
 * platform's id; the raw one gets `<id>:raw`. Both carry the routing extensions; only the normalized
 * one carries `chatreplyby`, since it is the one a reply names in `inReplyTo`.
 */
export function ingressEvent(p: EventParts): IngressEvent {
  const common: Record<string, unknown> = {
    specversion: '1.0',
    source: p.source,
    datacontenttype: 'application/json',
  };
  if (p.conversation) common.subject = conversationKey(p.conversation);
  if (p.time !== undefined) common.time = p.time;
  common.chatbot = p.bot;
  common.chatplatform = p.platform;
  if (p.tenant !== undefined && p.tenant !== '') common.chattenant = p.tenant;
  if (p.user !== undefined && p.user !== '') common.chatuser = p.user;
  if (common.subject !== undefined) common.partitionkey = common.subject;
  if (p.redelivery) common.chatredelivery = true;

  const raw = { ...common, id: `${p.id}:raw`, type: p.rawType, data: p.rawData } as CloudEvent;
  const out: IngressEvent = { raw, dedupeKey: `${p.source} ${p.id}` };
  if (p.normalized) {
    const normalized = { ...common, id: p.id, type: p.normalized.type } as CloudEvent;
    // A Telegram reply_to is quoting context, not a capability: a Telegram bot can always send.
    if (p.replyHandle && p.replyHandle.kind !== 'telegram.reply_to') normalized.chatreplyby = new Date(p.replyHandle.expiresAt).toISOString();
    normalized.data = p.normalized.data;
    out.normalized = normalized;
  }
  if (p.replyHandle && p.normalized) out.replyHandle = p.replyHandle;
  if (p.sendFailed) out.sendFailed = p.sendFailed;
  return out;
}

/** Unix seconds (a number or a numeric string, possibly with a fraction) as RFC 3339, if it is one. */
export function secondsToTime(value: unknown): string | undefined {
  const n = typeof value === 'string' && /^\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0 || n > 1e11) return undefined;
  return new Date(Math.floor(n * 1000)).toISOString();
}

export function msToTime(value: unknown): string | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 && value < 1e14 ? new Date(value).toISOString() : undefined;
}

/** A copy of `obj` without `keys`: how reply capabilities are taken out of raw payloads. */
export function without<T extends Record<string, unknown>>(obj: T, ...keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) if (!keys.includes(k)) out[k] = v;
  return out;
}

export function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

/** A type segment: the native name with anything outside `[A-Za-z0-9_-]` replaced, never empty. */
export function typeSegment(v: unknown): string {
  const s = typeof v === 'string' || typeof v === 'number' ? String(v) : '';
  const clean = s.replace(/[^A-Za-z0-9_-]/g, '_');
  return clean === '' ? 'unknown' : clean;
}
