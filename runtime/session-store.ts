import { type MaybePromise, isPromiseLike } from './maybe.ts';

/**
 * Where conversation state lives (DESIGN §4.3). State is read before a turn and written after it, so
 * a store can sit outside the pod; this in-memory one serves a single process.
 */
export interface SessionStore {
  load(conversation: string): MaybePromise<Record<string, unknown>>;
  save(conversation: string, state: Record<string, unknown>): MaybePromise<void>;
  /**
   * Holds a conversation for one turn against every pod sharing the store: resolves once held (after the
   * turn holding it elsewhere ended), or, with `wait: false`, `undefined` at once when it is held
   * elsewhere (the `reject` policy). Rejects with the signal's reason when it aborts first. A store that
   * serves one process leaves it out: the pod's own queue orders its turns.
   */
  hold?(conversation: string, options: { wait: boolean; signal: AbortSignal }): Promise<TurnHold | undefined>;
  /**
   * Tells the other pods sharing the store that message `by` interrupts the conversation's turns (the
   * `interrupt` policy): theirs are aborted as this pod's own are. A store that serves one process leaves
   * it out, with `onInterrupt`.
   */
  interrupt?(conversation: string, by: string): Promise<void>;
  /** Calls `listener` for every interrupt another pod sends; resolves once listening. */
  onInterrupt?(listener: (conversation: string, by: string) => void): Promise<void>;
  /**
   * The `debounce` policy across pods: adds `piece` to the conversation's burst, waits `waitMs`, then
   * resolves the whole burst in arrival order when `piece` is still its last message (this pod runs
   * it), or the id of the message that came after it. A store that serves one process leaves it out.
   */
  gather?(conversation: string, piece: BurstPiece, waitMs: number, signal: AbortSignal): Promise<{ burst: BurstPiece[] } | { by: string }>;
  close?(): Promise<void>;
}

/** What a debounced message adds to the turn its burst becomes: its text and attachments. */
export interface BurstPiece {
  id: string;
  text: string;
  attachments?: unknown[];
}

/** A conversation held for one turn by this pod. */
export interface TurnHold {
  /** The conversation's state, read with the hold where the store can (then the turn does not `load`). */
  readonly state?: Record<string, unknown>;
  /**
   * Saves the turn's state if the conversation is still held; false (nothing saved) when the hold lapsed.
   * The turn is over then: a store may let the next turn have the conversation in the same step.
   */
  save(state: Record<string, unknown>): Promise<boolean>;
  /** Lets the next turn have it (if `save` did not already); never rejects. */
  release(): Promise<void>;
}

/** In-process sessions, least recently used dropped past `maxSessions`, idle ones after `ttlMs`. */
export class MemorySessionStore implements SessionStore {
  readonly #entries = new Map<string, { state: string; at: number }>();
  readonly #max: number;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(options: { maxSessions?: number; ttlMs?: number; now?: () => number } = {}) {
    this.#max = options.maxSessions ?? 10_000;
    this.#ttlMs = options.ttlMs ?? 24 * 3600_000;
    this.#now = options.now ?? Date.now;
  }

  load(conversation: string): Record<string, unknown> {
    const entry = this.#entries.get(conversation);
    if (!entry || this.#now() - entry.at > this.#ttlMs) return {};
    return JSON.parse(entry.state) as Record<string, unknown>;
  }

  save(conversation: string, state: Record<string, unknown>): void {
    this.#entries.delete(conversation);
    // Stored as JSON, as any shared store would: what a bot keeps must survive serialization.
    this.#entries.set(conversation, { state: JSON.stringify(state), at: this.#now() });
    if (this.#entries.size > this.#max) this.#entries.delete(this.#entries.keys().next().value!);
  }
}

/**
 * Runs tasks one after another per key (the `queue` turn policy); different keys run in parallel. A
 * task that finishes synchronously with nothing queued before it never touches a promise.
 */
export class KeyedQueue {
  readonly #tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => MaybePromise<T>): MaybePromise<T> {
    const previous = this.#tails.get(key);
    if (previous) return this.#track(key, previous.then(task, task));
    const result = task();
    return isPromiseLike(result) ? this.#track(key, result as Promise<T>) : result;
  }

  /** Whether `key` has a turn running or queued. */
  busy(key: string): boolean {
    return this.#tails.has(key);
  }

  /** How many keys have a turn running or queued. */
  get size(): number {
    return this.#tails.size;
  }

  #track<T>(key: string, result: Promise<T>): Promise<T> {
    const settled = (): void => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    };
    const tail: Promise<unknown> = result.then(settled, settled);
    this.#tails.set(key, tail);
    return result;
  }
}
