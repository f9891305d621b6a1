import { conversationOfEvent } from '../eventing/chat.ts';
import type { CloudEvent } from '../eventing/codec.ts';
import {
  type Button,
  type ChatPlatform,
  type EditTarget,
  type EgressContext,
  type ReplyHandle,
  STREAM_POLICY,
  type Secrets,
  discordEditTarget,
  replyButtons,
  slackEditTarget,
  splitText,
  telegramEditTarget,
} from './platforms/index.ts';
import type { GatewayStore } from './store.ts';

/** What is known of a reply being streamed to a platform, kept in the store so any replica can go on. */
interface StreamState {
  /** The id of each message the reply has so far, by piece (Discord's first: `@original`). */
  ids: string[];
  text: string;
  /** What each message shows now (its text at the last post or edit). */
  shown: string[];
  lastEditAt: number;
  /** A platform call failed: no more edits; the final reply still completes what was posted. */
  broken?: boolean;
  /** Which message shows the reply's buttons, once the final reply put them there. */
  buttonsOn?: number;
}

export interface PlatformStreamOptions {
  store: GatewayStore;
  context: (platform: ChatPlatform) => EgressContext;
  /** The reply handle kept at ingress for the message (Discord's interaction token). */
  handle: (platform: ChatPlatform, bot: string, inReplyTo: string) => Promise<ReplyHandle | undefined>;
  /** Stores the handle anew: once a stream replaced Discord's "thinking…", later replies are follow-ups. */
  keepHandle: (platform: ChatPlatform, bot: string, inReplyTo: string, handle: ReplyHandle) => Promise<void>;
  log: (msg: string, fields?: Record<string, unknown>) => void;
  now?: () => number;
}

/** How long a stream's state outlives its last chunk (a reply that never comes). */
const STATE_TTL_MS = 15 * 60_000;

/**
 * Streamed replies on platforms that can edit a message (DESIGN §4: a reply streamed as produced):
 * the first chunk is posted at once, later text edits that message at most once per the platform's
 * interval, and the final reply makes the message whole. Text past the platform's size goes on in new
 * messages, each edited by its own id as it grows; a piece never moves to another message (the split
 * of text that only grows keeps its earlier cuts). Platforms that cannot edit get the final reply only.
 */
export class PlatformStreams {
  readonly #o: PlatformStreamOptions;
  readonly #now: () => number;

  constructor(options: PlatformStreamOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
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
    const now = this.#now();
    if (!state.broken && state.text.trim() !== '' && now - state.lastEditAt >= policy.minIntervalMs) {
      try {
        const target = await this.#target(platform, bot, data.inReplyTo, event, secrets, state);
        if (!target) throw new Error('no way to reach the conversation');
        await show(target, splitText(state.text, policy.maxChars), state);
        state.lastEditAt = now;
      } catch (err) {
        state.broken = true;
        this.#o.log('streamed edit failed; the final reply completes it', { platform, bot, error: (err as Error).message });
      }
    }
    await this.#save(key, state);
  }

  /**
   * The final reply of a streamed message: the posted messages made whole, the last of them with the
   * reply's buttons. False when nothing was
   * posted for it (the reply then goes out the usual way). Throws when the platform fails: what was
   * posted is remembered, so the broker's retry goes on from there and posts no piece twice.
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
    const target = await this.#target(platform, bot, data.inReplyTo, event, secrets, state);
    if (!target) return false;
    try {
      await show(target, splitText(data.text, policy.maxChars), state, replyButtons(data).buttons);
    } catch (err) {
      await this.#save(key, state);
      throw err;
    }
    await this.#o.store.put(key, 'done', STATE_TTL_MS);
    return true;
  }

  async #load(key: string): Promise<StreamState | 'done'> {
    const raw = await this.#o.store.get(key);
    if (raw === 'done') return 'done';
    if (!raw) return { ids: [], text: '', shown: [], lastEditAt: 0 };
    const state = JSON.parse(raw) as Omit<StreamState, 'shown'> & { shown: string[] | string };
    // A state written before messages past the first were streamed kept the first one's text only.
    return { ...state, shown: typeof state.shown === 'string' ? [state.shown] : state.shown };
  }

  async #save(key: string, state: StreamState): Promise<void> {
    await this.#o.store.put(key, JSON.stringify(state), STATE_TTL_MS);
  }

  async #target(platform: ChatPlatform, bot: string, inReplyTo: string, event: CloudEvent, secrets: Secrets, state: StreamState): Promise<EditTarget | undefined> {
    const ctx = this.#o.context(platform);
    const conversation = conversationOfEvent(event);
    if (platform === 'slack') return secrets.botToken ? slackEditTarget(ctx, secrets.botToken, conversation) : undefined;
    if (platform === 'telegram') return secrets.botToken ? telegramEditTarget(ctx, secrets.botToken, conversation) : undefined;
    if (platform === 'discord') {
      const handle = await this.#o.handle(platform, bot, inReplyTo);
      if (!handle || !secrets.applicationId) return undefined;
      // Only the stream's first message may replace the "thinking…" placeholder; later pieces are
      // follow-ups, whatever the stored handle still says.
      const replaces = handle.editOriginal === true && state.ids.length === 0;
      const target = discordEditTarget(ctx, secrets.applicationId, { ...handle, editOriginal: replaces });
      if (!replaces) return target;
      let kept = false;
      return {
        post: async (text, buttons) => {
          const id = await target.post(text, buttons);
          if (!kept) {
            kept = true;
            await this.#o.keepHandle(platform, bot, inReplyTo, { ...handle, editOriginal: false });
          }
          return id;
        },
        edit: target.edit,
      };
    }
    return undefined;
  }
}

/**
 * Brings the messages to `pieces`, in order: a missing message is posted, one that shows other text is
 * edited, and the last one gets `buttons` (edited for them alone if its text is already right). A blank
 * piece and those after it wait (platforms refuse empty messages, and a later piece posted first would
 * read out of order). `state` records each call as it succeeds.
 */
async function show(target: EditTarget, pieces: string[], state: StreamState, buttons: readonly Button[] = []): Promise<void> {
  for (const [i, piece] of pieces.entries()) {
    if (piece.trim() === '') break;
    const withButtons = i === pieces.length - 1 && buttons.length > 0 ? buttons : undefined;
    const id = state.ids[i];
    if (id === undefined) state.ids[i] = await target.post(piece, withButtons);
    else if (state.shown[i] !== piece || (withButtons && state.buttonsOn !== i)) await target.edit(id, piece, withButtons);
    else continue;
    state.shown[i] = piece;
    if (withButtons) state.buttonsOn = i;
  }
}

function stateKey(platform: string, bot: string, inReplyTo: string): string {
  return `st:${platform}:${bot}:${inReplyTo}`;
}
