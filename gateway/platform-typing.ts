import { type Conversation, MESSAGE_RECEIVED, TYPING_START, parseConversationKey } from '../eventing/chat.ts';
import type { CloudEvent } from '../eventing/codec.ts';
import { EgressRejection } from './egress.ts';
import { CHAT_ADAPTERS, type ChatPlatform, type EgressContext, type IngressEvent, type Secrets, type TypingOutcome, type TypingTarget } from './platforms/index.ts';

export interface PlatformTypingOptions {
  context: (platform: ChatPlatform) => EgressContext;
  /** The bot's timeout in seconds, when the gateway knows it (LINE's animation lasts that long). */
  timeoutSeconds: (bot: string) => number | undefined;
  log: (msg: string, fields?: Record<string, unknown>) => void;
  /** How often an indicator is shown again while the bot works; defaults per platform (REFRESH_MS). */
  refreshMs?: Partial<Record<ChatPlatform, number>>;
}

/**
 * How long each platform shows an indicator, less a margin: it is shown again that often until the
 * answer is there. Telegram's lasts 5 s, Discord's 10 s, WhatsApp's 25 s; LINE's animation is asked for
 * the bot's whole timeout at once, and Slack has none.
 */
const REFRESH_MS: Partial<Record<ChatPlatform, number>> = { telegram: 4_500, discord: 9_000, whatsapp: 22_000 };
/** Indicators kept up at once; past it, new ones are shown once only. */
const MAX_KEPT = 10_000;
/** The longest an indicator is kept up when the bot's timeout is not known. */
const DEFAULT_KEEP_S = 120;

/**
 * Typing indicators on chat platforms: shown when the gateway hands a message to a bot, and when a bot
 * emits `dev.knbot.chat.typing.start`. Best effort: never retried, never waiting on a rate limit, and a
 * platform's refusal is logged (status and the platform's reason, never a token or message text),
 * never passed on.
 */
export class PlatformTyping {
  readonly #o: PlatformTypingOptions;
  readonly #kept = new Set<NodeJS.Timeout>();

  constructor(options: PlatformTypingOptions) {
    this.#o = options;
  }

  /**
   * Shows the indicator for a message handed to a bot, and again each time the platform lets it lapse,
   * until `answered` says the reply is there (on any replica) or the bot's timeout passed.
   */
  async keepShowing(platform: ChatPlatform, bot: string, secrets: Secrets, target: Omit<TypingTarget, 'seconds'>, answered: () => Promise<boolean>): Promise<void> {
    const first = await this.show(platform, bot, secrets, target);
    const every = this.refreshMs(platform);
    // Nothing to keep up where it was not shown (a Discord command already "thinking…", a refusal).
    if (every === undefined || first.result !== 'shown' || this.#kept.size >= MAX_KEPT) return;
    const until = Date.now() + (this.#o.timeoutSeconds(bot) ?? DEFAULT_KEEP_S) * 1000;
    const timer: NodeJS.Timeout = setInterval(() => {
      if (Date.now() + every > until) return this.#stop(timer);
      answered().then(
        (done) => (done ? this.#stop(timer) : void this.show(platform, bot, secrets, target)),
        () => this.#stop(timer),
      );
    }, every);
    timer.unref();
    this.#kept.add(timer);
  }

  /** How often `platform`'s indicator is shown again while a bot works; undefined: it is not. */
  refreshMs(platform: ChatPlatform): number | undefined {
    return this.#o.refreshMs?.[platform] ?? REFRESH_MS[platform];
  }

  /** Stops keeping indicators up (the gateway is closing). */
  close(): void {
    for (const timer of this.#kept) clearInterval(timer);
    this.#kept.clear();
  }

  #stop(timer: NodeJS.Timeout): void {
    clearInterval(timer);
    this.#kept.delete(timer);
  }

  /** Shows the platform's indicator for `target`. Never rejects. */
  async show(platform: ChatPlatform, bot: string, secrets: Secrets, target: Omit<TypingTarget, 'seconds'>): Promise<TypingOutcome> {
    let outcome: TypingOutcome;
    try {
      const seconds = this.#o.timeoutSeconds(bot);
      outcome = await CHAT_ADAPTERS[platform].startTyping(seconds === undefined ? target : { ...target, seconds }, secrets, this.#o.context(platform));
    } catch (err) {
      // Adapters return their failures; a throw is a bug, and its message could hold a URL with a token.
      outcome = { result: 'failed', reason: (err as Error).name };
    }
    if (outcome.result === 'failed') this.#o.log('typing indicator failed', { platform, bot, ...(outcome.status !== undefined ? { status: outcome.status } : {}), reason: outcome.reason });
    return outcome;
  }
}

/** The indicator for a message the gateway just handed to a bot; undefined for anything else. */
export function ingressTypingTarget(e: IngressEvent): Omit<TypingTarget, 'seconds'> | undefined {
  const n = e.normalized;
  if (n?.type !== MESSAGE_RECEIVED) return undefined;
  const conversation = conversationOf(n.data) ?? (typeof n.subject === 'string' && n.subject !== '' ? parseConversationKey(n.subject) : undefined);
  if (!conversation) return undefined;
  const target: Omit<TypingTarget, 'seconds'> = { conversation, messageId: n.id };
  if (e.replyHandle) target.handle = e.replyHandle;
  return target;
}

/**
 * What a `dev.knbot.chat.typing.start` asks for: its bot, platform and conversation (`data.conversation`
 * or the `subject`), and the message it answers (`data.inReplyTo`), when it names one. Throws
 * `EgressRejection` for an event that cannot say where the indicator goes.
 */
export function typingRequest(event: CloudEvent): { platform: string; bot: string; target: Omit<TypingTarget, 'seconds' | 'handle'> } {
  const malformed = (detail: string) => new EgressRejection('malformed_typing', `${TYPING_START}: ${detail}`);
  const platform = event.chatplatform;
  const bot = event.chatbot;
  if (typeof platform !== 'string' || platform === '') throw malformed('the chatplatform extension is missing');
  if (typeof bot !== 'string' || bot === '') throw malformed('the chatbot extension is missing');
  const data = event.data ?? {};
  if (data === null || typeof data !== 'object' || Array.isArray(data)) throw malformed('data must be a JSON object');
  const d = data as { conversation?: unknown; inReplyTo?: unknown };
  if (d.inReplyTo !== undefined && (typeof d.inReplyTo !== 'string' || d.inReplyTo === '')) throw malformed('data.inReplyTo must be a non-empty string');
  let conversation: Conversation | undefined;
  if (d.conversation !== undefined) {
    conversation = conversationOf(d);
    if (!conversation) throw malformed('data.conversation must be {id, thread?} with string values');
  } else if (typeof event.subject === 'string' && event.subject !== '') conversation = parseConversationKey(event.subject);
  if (!conversation) throw malformed('no conversation: give data.conversation or the subject');
  const target: Omit<TypingTarget, 'seconds' | 'handle'> = { conversation };
  if (typeof d.inReplyTo === 'string') target.messageId = d.inReplyTo;
  return { platform, bot, target };
}

function conversationOf(data: unknown): Conversation | undefined {
  const c = (data as { conversation?: { id?: unknown; thread?: unknown } } | undefined)?.conversation;
  if (c === null || typeof c !== 'object' || typeof c.id !== 'string' || c.id === '') return undefined;
  if (c.thread === undefined) return { id: c.id };
  return typeof c.thread === 'string' && c.thread !== '' ? { id: c.id, thread: c.thread } : undefined;
}
