import { conversationOfEvent } from '../eventing/chat.ts';
import type { CloudEvent } from '../eventing/codec.ts';
import { type ChatPlatform, type EditTarget, type EgressContext, type ReplyHandle, STREAM_POLICY, type Secrets, discordEditTarget, slackEditTarget, splitText, telegramEditTarget } from './platforms/index.ts';
import type { GatewayStore } from './store.ts';

/** What is known of a reply being streamed to a platform, kept in the store so any replica can go on. */
interface StreamState {
  /** The platform's id of each message the reply has so far (the first is edited as text comes). */
  ids: string[];
  text: string;
  /** What the first message shows now (the text at the last post or edit). */
  shown: string;
  lastEditAt: number;
  /** A platform call failed: no more edits; the final reply still completes what was posted. */
  broken?: boolean;
}

export interface PlatformStreamOptions {
  store: GatewayStore;
  context: (platform: ChatPlatform) => EgressContext;
  /** The reply handle kept at ingress for the message (Discord's interaction token). */
  handle: (platform: ChatPlatform, bot: string, inReplyTo: string) => Promise<ReplyHandle | undefined>;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

/** How long a stream's state outlives its last chunk (a reply that never comes). */
const STATE_TTL_MS = 15 * 60_000;

/**
 * Streamed replies on platforms that can edit a message (DESIGN §4: a reply streamed as produced):
 * the first chunk is posted at once, later text edits that message at most once per the platform's
 * interval, and the final reply makes the message whole (text past the platform's size goes on in new
 * messages). Platforms that cannot edit get the final reply only.
 */
export class PlatformStreams {
  readonly #o: PlatformStreamOptions;

  constructor(options: PlatformStreamOptions) {
    this.#o = options;
  }

  /** True for a platform whose messages a reply's chunks may edit. */
  static streams(platform: string): boolean {
    return (STREAM_POLICY as Record<string, { mode: string } | undefined>)[platform]?.mode === 'edit';
  }

  /** A `dev.knbot.chat.reply.chunk`: the text so far goes out when the platform's interval allows. */
  async chunk(event: CloudEvent, platform: ChatPlatform, bot: string, secrets: Secrets): Promise<void> {
    const policy = STREAM_POLICY[platform];
    const data = (event.data ?? {}) as { text?: unknown; inReplyTo?: unknown };
    if (policy.mode !== 'edit' || typeof data.inReplyTo !== 'string' || typeof data.text !== 'string') return;
    const key = stateKey(platform, bot, data.inReplyTo);
    const state = await this.#load(key);
    if (state === 'done') return;
    state.text += data.text;
    const now = Date.now();
    if (!state.broken && state.text.length <= policy.maxChars && now - state.lastEditAt >= policy.minIntervalMs) {
      const target = await this.#target(platform, bot, data.inReplyTo, event, secrets);
      try {
        if (!target) throw new Error('no way to reach the conversation');
        if (state.ids[0] === undefined) state.ids[0] = await target.post(state.text);
        else await target.edit(state.ids[0], state.text);
        state.shown = state.text;
        state.lastEditAt = now;
      } catch (err) {
        state.broken = true;
        this.#o.log('streamed edit failed; the final reply completes it', { platform, bot, error: (err as Error).message });
      }
    }
    await this.#save(key, state);
  }

  /**
   * The final reply of a streamed message: the posted message made whole. False when nothing was
   * posted for it (the reply then goes out the usual way).
   */
  async finish(event: CloudEvent, platform: ChatPlatform, bot: string, secrets: Secrets): Promise<boolean> {
    const policy = STREAM_POLICY[platform];
    const data = (event.data ?? {}) as { text?: unknown; inReplyTo?: unknown };
    if (policy.mode !== 'edit' || typeof data.inReplyTo !== 'string' || typeof data.text !== 'string') return false;
    const key = stateKey(platform, bot, data.inReplyTo);
    const state = await this.#load(key);
    if (state === 'done') return true;
    if (state.ids[0] === undefined) {
      await this.#o.store.delete(key);
      return false;
    }
    const target = await this.#target(platform, bot, data.inReplyTo, event, secrets);
    if (!target) return false;
    const pieces = splitText(data.text, policy.maxChars);
    for (const [i, piece] of pieces.entries()) {
      if (state.ids[i] === undefined) state.ids[i] = await target.post(piece);
      else if (i > 0 || piece !== state.shown) await target.edit(state.ids[i]!, piece);
    }
    await this.#o.store.delete(key);
    await this.#o.store.claim(key, 'done', STATE_TTL_MS);
    return true;
  }

  async #load(key: string): Promise<StreamState | 'done'> {
    const raw = await this.#o.store.get(key);
    if (raw === 'done') return 'done';
    return raw ? (JSON.parse(raw) as StreamState) : { ids: [], text: '', shown: '', lastEditAt: 0 };
  }

  async #save(key: string, state: StreamState): Promise<void> {
    await this.#o.store.delete(key);
    await this.#o.store.claim(key, JSON.stringify(state), STATE_TTL_MS);
  }

  async #target(platform: ChatPlatform, bot: string, inReplyTo: string, event: CloudEvent, secrets: Secrets): Promise<EditTarget | undefined> {
    const ctx = this.#o.context(platform);
    const conversation = conversationOfEvent(event);
    if (platform === 'slack') return secrets.botToken ? slackEditTarget(ctx, secrets.botToken, conversation) : undefined;
    if (platform === 'telegram') return secrets.botToken ? telegramEditTarget(ctx, secrets.botToken, conversation) : undefined;
    if (platform === 'discord') {
      const handle = await this.#o.handle(platform, bot, inReplyTo);
      return handle && secrets.applicationId ? discordEditTarget(ctx, secrets.applicationId, handle) : undefined;
    }
    return undefined;
  }
}

function stateKey(platform: string, bot: string, inReplyTo: string): string {
  return `st:${platform}:${bot}:${inReplyTo}`;
}
