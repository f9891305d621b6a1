import { randomUUID } from 'node:crypto';

/** Bounds on what a pod keeps of its direct WebSocket sessions (DESIGN §7's replay, in the pod's memory). */
export interface SocketSessionLimits {
  /** Frames kept per session for a resuming client. */
  maxFrames: number;
  /** Bytes of frames kept per session (the newest frame is always kept). */
  maxBytes: number;
  /** How long a session is kept after its socket closed (and since its last frame). */
  ttlMs: number;
  /** Message ids remembered per session, to acknowledge a resend rather than run it again. */
  maxIds: number;
  /** Sessions without a socket kept at most; the longest idle go first. */
  maxDetached: number;
}

export const SOCKET_SESSION_LIMITS: SocketSessionLimits = { maxFrames: 500, maxBytes: 4 << 20, ttlMs: 5 * 60_000, maxIds: 1000, maxDetached: 10_000 };

/** Where a session's frames go while a socket is attached to it. */
export interface FrameSink {
  write(seq: number, text: string): void;
}

/**
 * One client session of a pod's `/v1/ws`: its frames numbered from 0, the last ones kept for a client
 * that resumes on a new socket, and the message ids it has sent.
 */
export class SocketSession {
  readonly id: string;
  readonly #limits: SocketSessionLimits;
  /** `[seq, text]`, oldest first. */
  readonly #frames: [number, string][] = [];
  #bytes = 0;
  #next = 0;
  readonly #ids = new Set<string>();
  sink: FrameSink | undefined;
  /** When a session without a socket may be forgotten (Date.now() clock). */
  expiresAt = Infinity;

  constructor(id: string, limits: SocketSessionLimits) {
    this.id = id;
    this.#limits = limits;
  }

  /** The seq of the last frame of the session; -1 before its first. */
  get lastSeq(): number {
    return this.#next - 1;
  }

  /** Numbers `body` (a frame without `v` and `seq`), keeps it, and writes it to the socket if one is attached. */
  append(body: Record<string, unknown>, now: number): number {
    const seq = this.#next++;
    const text = JSON.stringify({ v: 1, seq, ...body });
    this.#frames.push([seq, text]);
    this.#bytes += Buffer.byteLength(text);
    while (this.#frames.length > 1 && (this.#frames.length > this.#limits.maxFrames || this.#bytes > this.#limits.maxBytes)) this.#bytes -= Buffer.byteLength(this.#frames.shift()![1]);
    if (this.sink) this.sink.write(seq, text);
    else this.expiresAt = now + this.#limits.ttlMs;
    return seq;
  }

  /** The frames after `afterSeq`; `complete` is false when some of them are no longer kept. */
  after(afterSeq: number): { frames: [number, string][]; complete: boolean } {
    const first = this.#frames[0]?.[0] ?? this.#next;
    const frames = this.#frames.filter(([seq]) => seq > afterSeq);
    return { frames, complete: first <= afterSeq + 1 };
  }

  /** True when the message id was sent on this session before; remembers it. */
  seen(id: string): boolean {
    if (this.#ids.has(id)) return true;
    this.#ids.add(id);
    if (this.#ids.size > this.#limits.maxIds) this.#ids.delete(this.#ids.values().next().value!);
    return false;
  }

  /** Forgets a message id, so a message refused before it ran may be sent again. */
  forget(id: string): void {
    this.#ids.delete(id);
  }
}

/** A pod's direct socket sessions: live ones, and for `ttlMs` after their socket closed. */
export class SocketSessions {
  readonly #limits: SocketSessionLimits;
  readonly #sessions = new Map<string, SocketSession>();
  readonly #now: () => number;

  constructor(limits: SocketSessionLimits = SOCKET_SESSION_LIMITS, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
  }

  get size(): number {
    return this.#sessions.size;
  }

  open(): SocketSession {
    const session = new SocketSession(randomUUID(), this.#limits);
    this.#sessions.set(session.id, session);
    return session;
  }

  /** A session still kept; undefined when it never was here or has expired. */
  get(id: string): SocketSession | undefined {
    const s = this.#sessions.get(id);
    if (s && s.expiresAt <= this.#now()) {
      this.#sessions.delete(id);
      return undefined;
    }
    return s;
  }

  /** Adds a frame to the session, stamping the clock for one without a socket. */
  append(session: SocketSession, body: Record<string, unknown>): number {
    return session.append(body, this.#now());
  }

  attach(session: SocketSession, sink: FrameSink): void {
    session.sink = sink;
    session.expiresAt = Infinity;
  }

  /** Its socket closed: the session is kept `ttlMs` for a resume. */
  detach(session: SocketSession, sink: FrameSink): void {
    if (session.sink !== sink) return;
    session.sink = undefined;
    session.expiresAt = this.#now() + this.#limits.ttlMs;
  }

  delete(session: SocketSession): void {
    this.#sessions.delete(session.id);
  }

  /** Forgets expired sessions, and the longest idle past `maxDetached`. */
  sweep(): void {
    const now = this.#now();
    const detached: SocketSession[] = [];
    for (const s of this.#sessions.values()) {
      if (s.expiresAt <= now) this.#sessions.delete(s.id);
      else if (!s.sink) detached.push(s);
    }
    if (detached.length <= this.#limits.maxDetached) return;
    detached.sort((a, b) => a.expiresAt - b.expiresAt);
    for (const s of detached.slice(0, detached.length - this.#limits.maxDetached)) this.#sessions.delete(s.id);
  }
}
