import { type GatewayStore, frameText } from './store.ts';

/** How frames leave the gateway for one client: a WebSocket, or an SSE response. */
export interface Transport {
  write(seq: number, text: string, type: string): void;
  /** Bytes written but not yet taken by the client. */
  buffered(): number;
  close(code: number, reason: string): void;
}

export interface ConnectionLimits {
  /** A client this far behind (bytes queued) is disconnected with 1013; it may resume. */
  maxBufferedBytes: number;
  /** How long a gap in the seq numbers may stay open before the frames are read from the store. */
  gapTimeoutMs: number;
}

const TYPE = /"type":"([a-z_]+)"/;

/**
 * One client attached to a session: frames of the session, appended by any replica, reach the client
 * exactly once and in `seq` order. Frames that arrive early wait for the ones before them; a gap that
 * stays open (a lost notification) is filled from the store's log.
 */
export class Connection {
  readonly principal: string;
  readonly ip: string;
  #store: GatewayStore;
  #transport: Transport;
  #limits: ConnectionLimits;
  #sessionId: string | undefined;
  #next = 1;
  #early = new Map<number, string>();
  #gapTimer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #closed = false;

  constructor(store: GatewayStore, transport: Transport, principal: string, ip: string, limits: ConnectionLimits) {
    this.#store = store;
    this.#transport = transport;
    this.principal = principal;
    this.ip = ip;
    this.#limits = limits;
  }

  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  /** The seq of the last frame sent to this client. */
  get lastSeq(): number {
    return this.#next - 1;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Starts a new session: `session {sessionId, seq: 0}` goes out first. */
  start(sessionId: string): void {
    this.#attach(sessionId, 0);
    this.#send(0, frameText(0, JSON.stringify({ type: 'session', sessionId })), 'session');
  }

  /**
   * Re-attaches to a session after `lastSeq`: live frames are taken from now on, the store's log fills
   * in everything between. False when the log no longer holds all of it.
   */
  async resume(sessionId: string, lastSeq: number): Promise<{ complete: boolean; lastSeq: number } | undefined> {
    this.#attach(sessionId, lastSeq);
    const log = await this.#store.replay(sessionId, lastSeq);
    if (!log) return undefined;
    if (!log.complete && log.frames.length) this.#next = log.frames[0]![0];
    for (const [seq, body] of log.frames) this.deliver(seq, body);
    return { complete: log.complete, lastSeq: log.lastSeq };
  }

  /** A frame of this session, from the store's notification or its log. */
  deliver(seq: number, body: string): void {
    if (this.#closed || seq < this.#next) return;
    if (seq > this.#next) {
      this.#early.set(seq, body);
      this.#gapTimer ??= setTimeout(() => void this.#fillGap(), this.#limits.gapTimeoutMs);
      return;
    }
    this.#send(seq, frameText(seq, body), TYPE.exec(body)?.[1] ?? 'frame');
    this.#next = seq + 1;
    for (let b = this.#early.get(this.#next); b !== undefined; b = this.#early.get(this.#next)) {
      this.#early.delete(this.#next);
      this.#send(this.#next, frameText(this.#next, b), TYPE.exec(b)?.[1] ?? 'frame');
      this.#next++;
    }
    if (this.#early.size === 0 && this.#gapTimer) {
      clearTimeout(this.#gapTimer);
      this.#gapTimer = undefined;
    }
  }

  /** Sends a frame outside the session's log (before a session exists, or to refuse a resume). */
  sendUnsequenced(body: string): void {
    if (!this.#closed) this.#transport.write(-1, `{"v":1,${body.slice(1)}`, TYPE.exec(body)?.[1] ?? 'frame');
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.detach();
    this.#transport.close(code, reason);
  }

  /** Stops taking frames (the transport closed). */
  detach(): void {
    this.#closed = true;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    clearTimeout(this.#gapTimer);
    this.#early.clear();
  }

  #attach(sessionId: string, lastSeq: number): void {
    this.#unsubscribe?.();
    this.#sessionId = sessionId;
    this.#next = lastSeq + 1;
    this.#early.clear();
    this.#unsubscribe = this.#store.subscribe(sessionId, (seq, body) => this.deliver(seq, body));
  }

  #send(seq: number, text: string, type: string): void {
    this.#transport.write(seq, text, type);
    if (this.#transport.buffered() > this.#limits.maxBufferedBytes) {
      this.close(1013, JSON.stringify({ error: 'too slow: resume to catch up', sessionId: this.#sessionId, lastSeq: seq }));
    }
  }

  async #fillGap(): Promise<void> {
    this.#gapTimer = undefined;
    if (this.#closed || !this.#sessionId || this.#early.size === 0) return;
    const log = await this.#store.replay(this.#sessionId, this.#next - 1).catch(() => undefined);
    if (!log || this.#closed) return;
    // Frames the log no longer holds are gone for good: skip past them rather than wait forever.
    if (!log.complete && log.frames.length) this.#next = Math.max(this.#next, log.frames[0]![0]);
    for (const [seq, body] of log.frames) this.deliver(seq, body);
  }
}
