import type { ChatMessage } from './bot.ts';
import { type MaybePromise, isPromiseLike } from './maybe.ts';

/*
 * What a chat message that arrives while its conversation has a turn running does (DESIGN §4.3):
 *
 *   queue      waits for the running turn, then runs (the default);
 *   reject     gets no turn: /v1/chat answers 409 `turn_in_progress`, a CloudEvent a reply carrying
 *              `error: 'turn_in_progress'` (see PodServer for why not 409 there);
 *   interrupt  aborts the running turn's `ctx.signal` (reason: a TurnInterrupted, `code: 'interrupted'`)
 *              and runs once that turn has settled; a message still queued is answered without a turn;
 *   debounce   every message waits `debounceMs` first; one that arrives meanwhile for the same
 *              conversation takes the earlier one's place, and the turn that finally runs gets their
 *              texts joined by '\n' (the last message's id, user and event). The earlier messages are
 *              answered without a reply. Runs queue behind a turn still running.
 *
 * Only chat messages follow the policy; other events of a conversation always queue. With a Redis
 * session store a turn holds its conversation against the other pods (runtime/redis-session-store.ts),
 * so `queue` and `reject` hold across pods; `interrupt` aborts the conversation's turns on every pod
 * (the store tells the others), and `debounce` gathers a burst in the store, whichever pods its
 * messages reached (this Debouncer serves a store of one process).
 */

/** Why a message got no turn of its own. */
export class TurnSkipped {
  readonly reason: 'turn_in_progress' | 'merged' | 'interrupted';
  /** The id of the message that took its place (merged into, or interrupted by). */
  readonly by: string | undefined;

  constructor(reason: TurnSkipped['reason'], by?: string) {
    this.reason = reason;
    this.by = by;
  }
}

export const IN_PROGRESS = new TurnSkipped('turn_in_progress');

/** The reason a turn's `ctx.signal` is aborted with when a newer message of its conversation arrives. */
export class TurnInterrupted extends Error {
  readonly code = 'interrupted';
  /** The id of the newer message. */
  readonly by: string;

  constructor(by: string) {
    super('interrupted');
    this.name = 'TurnInterrupted';
    this.by = by;
  }
}

/** The message a debounced burst becomes: the last one, with every text in arrival order. */
export function mergeMessages(earlier: ChatMessage, later: ChatMessage): ChatMessage {
  const merged: ChatMessage = { ...later, text: `${earlier.text}\n${later.text}` };
  if (earlier.attachments?.length || later.attachments?.length) merged.attachments = [...(earlier.attachments ?? []), ...(later.attachments ?? [])];
  return merged;
}

interface Waiting {
  msg: ChatMessage;
  timer: NodeJS.Timeout;
  settle: (value: unknown) => void;
}

/** The `debounce` policy's waiting room: per conversation, the message whose wait is not over. */
export class Debouncer {
  readonly #ms: number;
  readonly #waiting = new Map<string, Waiting>();

  constructor(ms: number) {
    this.#ms = ms;
  }

  /**
   * Waits, then `run`s the message (merged with those it replaced). Resolves what `run` gives, or a
   * TurnSkipped when a later message of the conversation replaced this one before its wait was over.
   */
  add<T>(key: string, msg: ChatMessage, run: (msg: ChatMessage) => MaybePromise<T>): Promise<T | TurnSkipped> {
    const earlier = this.#waiting.get(key);
    if (earlier) {
      clearTimeout(earlier.timer);
      earlier.settle(new TurnSkipped('merged', msg.id));
    }
    const merged = earlier ? mergeMessages(earlier.msg, msg) : msg;
    return new Promise<T | TurnSkipped>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(key);
        try {
          const out = run(merged);
          if (isPromiseLike(out)) (out as Promise<T>).then(resolve, reject);
          else resolve(out as T);
        } catch (err) {
          reject(err);
        }
      }, this.#ms);
      this.#waiting.set(key, { msg: merged, timer, settle: resolve as (value: unknown) => void });
    });
  }
}

/** The `interrupt` policy's bookkeeping: per conversation, the controllers of message turns not yet settled. */
export class Interrupts {
  readonly #live = new Map<string, Set<AbortController>>();

  /** Aborts every unsettled turn of the conversation for `msg`; the controller of `msg`'s own turn. */
  enter(key: string, msg: ChatMessage): AbortController {
    this.interrupt(key, msg.id);
    let live = this.#live.get(key);
    if (!live) this.#live.set(key, (live = new Set()));
    const mine = new AbortController();
    live.add(mine);
    return mine;
  }

  /** Aborts every unsettled turn of the conversation: message `by` came for it (here, or on another pod). */
  interrupt(key: string, by: string): void {
    for (const c of this.#live.get(key) ?? []) if (!c.signal.aborted) c.abort(new TurnInterrupted(by));
  }

  leave(key: string, controller: AbortController): void {
    const live = this.#live.get(key);
    if (live?.delete(controller) && live.size === 0) this.#live.delete(key);
  }
}

/** The TurnSkipped of a turn interrupted before it started, or that the bot gave up on with no answer. */
export function interruptedSkip(signal: AbortSignal): TurnSkipped {
  const reason = signal.reason as TurnInterrupted;
  return new TurnSkipped('interrupted', reason.by);
}
