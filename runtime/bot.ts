import type { Tracer } from '@opentelemetry/api';
import type { CloudEvent } from '../eventing/codec.ts';
import type { Logger } from './log.ts';
import type { BotMetrics } from './metrics.ts';

/** The normalized chat message (DESIGN §6) a bot's `onMessage` receives. */
export interface ChatMessage {
  /** The event id (the platform's own id, or the client's message id). */
  id: string;
  text: string;
  user: { id: string; name?: string };
  conversation: { id: string; thread?: string };
  attachments?: unknown[];
  mentions?: unknown[];
  /** `slack`, `telegram`, `ws`, … when the event says (`chatplatform`). */
  platform?: string;
  /**
   * Set when the message is a button pressed, a command run or a menu item chosen
   * (`dev.knbot.chat.action.invoked`); `text` is then what the user saw (the value or the label).
   */
  action?: { type: string; id: string; value?: string };
  /** The CloudEvent the message came in, when it came as one. */
  event?: CloudEvent;
}

/** A whole reply. `text` is what platforms show; the rest travels in the reply event's data. */
export interface Reply {
  text: string;
  [field: string]: unknown;
}

/** One piece of a streamed reply. */
export interface ReplyChunk {
  text: string;
}

export type MessageResult = string | Reply | AsyncIterable<string | ReplyChunk> | Iterable<string | ReplyChunk> | void | undefined | null;

/** Per-conversation state: loaded before a turn, saved after it (DESIGN §4.3). */
export interface Session {
  readonly id: string;
  state: Record<string, unknown>;
}

export interface InitContext {
  readonly bot: string;
  readonly config: Readonly<Record<string, unknown>>;
  readonly log: Logger;
  readonly metrics: BotMetrics;
  readonly tracer: Tracer;
  /** Aborted when the process is asked to stop. */
  readonly signal: AbortSignal;
}

export interface TurnContext extends InitContext {
  /** Aborted when the client goes away, the request times out, or the process stops. */
  readonly signal: AbortSignal;
  readonly session: Session;
  /** Sends a CloudEvent to `K_SINK` (missing `id`, `source`, `specversion`, `time` are filled in). */
  emit(event: EmitEvent): Promise<void>;
  /** The incoming CloudEvent, when the turn came as one. */
  readonly event?: CloudEvent;
  /**
   * Shows the bot typing where the message came from (a platform's indicator, the WebSocket client's
   * `typing` frame), through K_SINK: for a slow answer, call it again every few seconds (Telegram's lasts
   * about 5 s). Nothing happens for a turn that did not come as a chat message event, or without K_SINK.
   */
  typing(): Promise<void>;
}

export type EmitEvent = Partial<CloudEvent> & { type: string };

export interface BotDefinition {
  init?(ctx: InitContext): unknown;
  onMessage?(msg: ChatMessage, ctx: TurnContext): MessageResult | Promise<MessageResult>;
  /** Any other CloudEvent: return a CloudEvent (an object with `type`), data for a reply, or nothing. */
  onEvent?(event: CloudEvent, ctx: TurnContext): unknown;
  shutdown?(ctx: InitContext): unknown;
}

const BOT = Symbol.for('knbot.bot');

export type Bot = BotDefinition & { readonly [BOT]: true };

/** Marks a module's default export as a knbot bot. */
export function defineBot<T extends BotDefinition>(definition: T): T & Bot {
  for (const key of ['init', 'onMessage', 'onEvent', 'shutdown'] as const) {
    if (definition[key] !== undefined && typeof definition[key] !== 'function') {
      throw new TypeError(`defineBot: ${key} must be a function`);
    }
  }
  if (!definition.onMessage && !definition.onEvent) throw new TypeError('defineBot: a bot needs onMessage or onEvent');
  return Object.assign(definition, { [BOT]: true as const });
}

export function isBot(value: unknown): value is Bot {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BOT] === true;
}
