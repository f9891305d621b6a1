// Streaming a reply to a chat platform: where the platform can edit a message, post the first words at
// once and then edit the message as text arrives, at most once per interval (Slack chat.update,
// Telegram editMessageText, Discord webhook message edits); where it cannot (LINE, WhatsApp), wait for
// the whole reply and send it once. Text past the platform's message size continues in a new message.
import type { Button } from './buttons.ts';
import { splitText } from './egress.ts';
import { sleep } from './rate-limit.ts';
import type { ChatPlatform } from './types.ts';

export type StreamPolicy = { mode: 'edit'; minIntervalMs: number; maxChars: number } | { mode: 'final' };

/**
 * About one edit per second per conversation: Telegram's per-chat limit, Slack chat.update's Tier 3
 * (50+ per minute), and well inside Discord's five webhook requests per two seconds.
 */
export const STREAM_POLICY: Readonly<Record<ChatPlatform, StreamPolicy>> = {
  slack: { mode: 'edit', minIntervalMs: 1000, maxChars: 40_000 },
  telegram: { mode: 'edit', minIntervalMs: 1000, maxChars: 4096 },
  discord: { mode: 'edit', minIntervalMs: 1000, maxChars: 2000 },
  line: { mode: 'final' },
  whatsapp: { mode: 'final' },
};

export interface EditOp {
  kind: 'post' | 'edit';
  /** Which message of the reply: 0 is the first; later ones hold text past the size limit. */
  index: number;
  text: string;
}

/**
 * Decides what to send and when, given the text so far; no timers, no I/O. The caller asks `due(now)`,
 * sends the ops of `take(now)` and then calls `settled(now)`; one round is in flight at a time and
 * rounds start at least `minIntervalMs` apart, except the very first, which goes at once.
 */
export class EditScheduler {
  readonly #minIntervalMs: number;
  readonly #maxChars: number;
  #text = '';
  #sent: string[] = [];
  #lastRoundAt = Number.NEGATIVE_INFINITY;
  #inFlight = false;
  #ended = false;

  constructor(minIntervalMs: number, maxChars: number) {
    this.#minIntervalMs = minIntervalMs;
    this.#maxChars = maxChars;
  }

  append(chunk: string): void {
    if (this.#ended) throw new Error('append after end');
    this.#text += chunk;
  }

  end(): void {
    this.#ended = true;
  }

  get text(): string {
    return this.#text;
  }

  /** Ended, nothing in flight, and every message shows its final text. */
  get finished(): boolean {
    return this.#ended && !this.#inFlight && this.#pending().length === 0;
  }

  /** Ms until the next round may start (0: now), or undefined when there is nothing to send yet. */
  due(now: number): number | undefined {
    if (this.#inFlight || this.#pending().length === 0) return undefined;
    return Math.max(0, this.#lastRoundAt + this.#minIntervalMs - now);
  }

  /** The ops of the round due now, oldest message first; empty when none is due. */
  take(now: number): EditOp[] {
    if (this.due(now) !== 0) return [];
    const ops = this.#pending();
    this.#inFlight = true;
    this.#lastRoundAt = now;
    for (const op of ops) this.#sent[op.index] = op.text;
    return ops;
  }

  /** The round taken last is done (sent or given up); `now` restarts the interval from its end. */
  settled(now: number): void {
    this.#inFlight = false;
    this.#lastRoundAt = Math.max(this.#lastRoundAt, now);
  }

  #pending(): EditOp[] {
    // Platforms refuse empty messages: nothing is posted before there is visible text.
    if (this.#text.trim() === '') return [];
    const wanted = splitText(this.#text, this.#maxChars);
    const ops: EditOp[] = [];
    wanted.forEach((text, index) => {
      if (index >= this.#sent.length) ops.push({ kind: 'post', index, text });
      else if (this.#sent[index] !== text) ops.push({ kind: 'edit', index, text });
    });
    return ops;
  }
}

/**
 * Where a streamed reply goes: post a message (resolving the id `edit` reaches it by), edit one; the
 * reply's buttons ride on the call that makes its last message whole. Both throw on failure.
 */
export interface EditTarget {
  post(text: string, buttons?: readonly Button[]): Promise<string>;
  edit(messageId: string, text: string, buttons?: readonly Button[]): Promise<void>;
}

export interface RelayOptions {
  minIntervalMs: number;
  maxChars: number;
  now?: () => number;
  signal?: AbortSignal;
}

/**
 * Sends a stream of text chunks through `target` as the scheduler decides. Resolves with the whole text
 * and the ids of the messages that hold it once every message shows its final text; rejects when the
 * stream or the target fails (what was sent stays sent).
 */
export async function relayStream(chunks: AsyncIterable<string>, target: EditTarget, options: RelayOptions): Promise<{ text: string; messageIds: string[] }> {
  const now = options.now ?? Date.now;
  const scheduler = new EditScheduler(options.minIntervalMs, options.maxChars);
  const ids: string[] = [];
  let wake: (() => void) | undefined;
  let failure: { error: unknown } | undefined;
  const changed = () => {
    wake?.();
    wake = undefined;
  };
  const reading = (async () => {
    try {
      for await (const chunk of chunks) {
        scheduler.append(chunk);
        changed();
      }
    } catch (error) {
      failure = { error };
    }
    scheduler.end();
    changed();
  })();

  while (!scheduler.finished) {
    if (failure) throw failure.error;
    options.signal?.throwIfAborted();
    const wait = scheduler.due(now());
    if (wait === undefined) {
      await new Promise<void>((resolve) => (wake = resolve));
      continue;
    }
    if (wait > 0) {
      await sleep(wait, options.signal);
      continue;
    }
    for (const op of scheduler.take(now())) {
      if (op.kind === 'post') ids[op.index] = await target.post(op.text);
      else await target.edit(ids[op.index]!, op.text);
    }
    scheduler.settled(now());
  }
  await reading;
  if (failure) throw failure.error;
  return { text: scheduler.text, messageIds: ids };
}

/** For platforms that cannot edit: the whole text, once the stream ends. */
export async function collectStream(chunks: AsyncIterable<string>): Promise<string> {
  let text = '';
  for await (const chunk of chunks) text += chunk;
  return text;
}
