import type { EgressLimiter } from './platforms/rate-limit.ts';

/**
 * What gateway replicas share (DESIGN §4.3, §7): each client session's frame log (the replay buffer a
 * resuming client reads), live notification of frames appended by any replica, and short-lived keys
 * (message ids seen, which session asked a message, turns in flight). In memory for one process; in
 * Redis (`redis-store.ts`) for several.
 *
 * A frame is stored as its JSON text without `v` and `seq`; `frameText` adds them, so the store can
 * number frames atomically without parsing them.
 */
export interface GatewayStore {
  /** Creates a session owned by `owner` (the authenticated principal), kept `ttlMs` after its last use. */
  openSession(sessionId: string, owner: string, ttlMs: number): Promise<void>;
  /** The owner of a live session; `undefined` when it never existed or expired. */
  sessionOwner(sessionId: string): Promise<string | undefined>;
  /** Forgets a session and its log now, rather than at its TTL. */
  endSession(sessionId: string): Promise<void>;
  /** Egress token buckets every replica sharing the store takes from; absent: each process keeps its own. */
  egressLimiter?(): EgressLimiter;
  /**
   * Appends a frame (`body`: JSON object text, no `v`/`seq`) to a session's log under the next `seq`,
   * keeps the last `maxFrames`, refreshes the session's TTL and notifies subscribers. Resolves the seq.
   * Appends to one session resolve in the order they were called. Rejects with SessionGoneError when the
   * session is unknown or expired.
   */
  append(sessionId: string, body: string): Promise<number>;
  /**
   * The frames after `afterSeq`, oldest first, as `[seq, body]`; `complete` is false when some of them
   * were already trimmed. `undefined` when the session is unknown.
   */
  replay(sessionId: string, afterSeq: number): Promise<{ frames: [number, string][]; lastSeq: number; complete: boolean } | undefined>;
  /** Calls `listener` for each frame appended to the session from now on, by any replica. */
  subscribe(sessionId: string, listener: (seq: number, body: string) => void): () => void;
  /** Sets `key` to `value` unless it is set: `undefined` when it was claimed now, else the value it has. */
  claim(key: string, value: string, ttlMs: number): Promise<string | undefined>;
  /** Sets `key` to `value` whatever it held, in one step: no moment in which the key is missing. */
  put(key: string, value: string, ttlMs: number): Promise<void>;
  get(key: string): Promise<string | undefined>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}

/** `append` to a session that never existed or expired (anything else a store throws is a failure worth retrying). */
export class SessionGoneError extends Error {
  constructor(sessionId: string) {
    super(`session ${sessionId} is unknown or expired`);
    this.name = 'SessionGoneError';
  }
}

export interface StoreLimits {
  /** Frames kept per session for replay. */
  maxFrames: number;
  /** How long a session is kept after its last frame. */
  sessionTtlMs: number;
  /** Keys the in-memory store holds at most (the oldest go first): memory stays bounded under any load. */
  maxKeys: number;
}

export const DEFAULT_LIMITS: StoreLimits = { maxFrames: 2_000, sessionTtlMs: 3_600_000, maxKeys: 200_000 };

/** The text sent on the socket: `{"v":1,"seq":N,...body}`. */
export function frameText(seq: number, body: string): string {
  return body === '{}' ? `{"v":1,"seq":${seq}}` : `{"v":1,"seq":${seq},${body.slice(1)}`;
}

interface MemorySession {
  owner: string;
  seq: number;
  /** Stored frames, oldest first; `first` is the seq of frames[0]. */
  frames: string[];
  first: number;
  expires: number;
  listeners: Set<(seq: number, body: string) => void>;
}

/** One process's store: sessions and keys in maps, expired lazily and by a sweep every minute. */
export class MemoryGatewayStore implements GatewayStore {
  readonly #sessions = new Map<string, MemorySession>();
  readonly #keys = new Map<string, { value: string; expires: number }>();
  readonly #limits: StoreLimits;
  readonly #now: () => number;
  readonly #sweep: NodeJS.Timeout;

  constructor(limits: Partial<StoreLimits> = {}, now: () => number = Date.now) {
    this.#limits = { ...DEFAULT_LIMITS, ...limits };
    this.#now = now;
    this.#sweep = setInterval(() => this.#expire(), 60_000).unref();
  }

  /** Sessions held: live ones, and expired ones the sweep has not dropped yet. */
  get sessions(): number {
    return this.#sessions.size;
  }

  async openSession(sessionId: string, owner: string, ttlMs: number): Promise<void> {
    if (this.#live(sessionId)) throw new Error(`session ${sessionId} exists`);
    this.#sessions.set(sessionId, { owner, seq: 0, frames: [], first: 1, expires: this.#now() + ttlMs, listeners: new Set() });
  }

  async sessionOwner(sessionId: string): Promise<string | undefined> {
    return this.#live(sessionId)?.owner;
  }

  async endSession(sessionId: string): Promise<void> {
    this.#sessions.delete(sessionId);
  }

  append(sessionId: string, body: string): Promise<number> {
    const s = this.#live(sessionId);
    if (!s) return Promise.reject(new SessionGoneError(sessionId));
    const seq = ++s.seq;
    s.frames.push(body);
    if (s.frames.length > this.#limits.maxFrames) {
      const drop = s.frames.length - this.#limits.maxFrames;
      s.frames.splice(0, drop);
      s.first += drop;
    }
    s.expires = Math.max(s.expires, this.#now() + this.#limits.sessionTtlMs);
    // A listener that throws must not cost the others the frame, nor the appender its seq.
    for (const listener of s.listeners) {
      try {
        listener(seq, body);
      } catch (err) {
        process.emitWarning(`a session listener failed: ${(err as Error).message}`, 'KnbotGatewayWarning');
      }
    }
    return Promise.resolve(seq);
  }

  async replay(sessionId: string, afterSeq: number): Promise<{ frames: [number, string][]; lastSeq: number; complete: boolean } | undefined> {
    const s = this.#live(sessionId);
    if (!s) return undefined;
    const from = Math.max(afterSeq + 1, s.first);
    const frames: [number, string][] = [];
    for (let seq = from; seq <= s.seq; seq++) frames.push([seq, s.frames[seq - s.first]!]);
    return { frames, lastSeq: s.seq, complete: Math.max(afterSeq, 0) + 1 >= s.first || afterSeq >= s.seq };
  }

  subscribe(sessionId: string, listener: (seq: number, body: string) => void): () => void {
    const s = this.#live(sessionId);
    if (!s) return () => {};
    s.listeners.add(listener);
    return () => s.listeners.delete(listener);
  }

  async claim(key: string, value: string, ttlMs: number): Promise<string | undefined> {
    const held = this.#key(key);
    if (held !== undefined) return held;
    this.#keys.set(key, { value, expires: this.#now() + ttlMs });
    if (this.#keys.size > this.#limits.maxKeys) this.#keys.delete(this.#keys.keys().next().value!);
    return undefined;
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    this.#keys.delete(key);
    this.#keys.set(key, { value, expires: this.#now() + ttlMs });
    if (this.#keys.size > this.#limits.maxKeys) this.#keys.delete(this.#keys.keys().next().value!);
  }

  async get(key: string): Promise<string | undefined> {
    return this.#key(key);
  }

  async delete(key: string): Promise<void> {
    this.#keys.delete(key);
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
  }

  #live(sessionId: string): MemorySession | undefined {
    const s = this.#sessions.get(sessionId);
    if (s && s.expires <= this.#now() && s.listeners.size === 0) {
      this.#sessions.delete(sessionId);
      return undefined;
    }
    return s;
  }

  #key(key: string): string | undefined {
    const entry = this.#keys.get(key);
    if (!entry) return undefined;
    if (entry.expires <= this.#now()) {
      this.#keys.delete(key);
      return undefined;
    }
    return entry.value;
  }

  #expire(): void {
    const now = this.#now();
    for (const [id, s] of this.#sessions) if (s.expires <= now && s.listeners.size === 0) this.#sessions.delete(id);
    for (const [k, e] of this.#keys) if (e.expires <= now) this.#keys.delete(k);
  }
}
