import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { handshakeTaken, heartbeat, refuseBadHandshakes, refuseHandshake } from '../runtime/sockets.ts';
import { HttpProblem } from '../runtime/problem.ts';
import { AuthError, type Authenticator, type Principal, credentialOf } from './auth.ts';
import type { Connection } from './connection.ts';
import { type ClientFrame, FrameError, parseClientFrame } from './envelope.ts';
import type { RateLimiter } from './rate-limit.ts';
import type { ChatSessions } from './sessions.ts';

export interface WsOptions {
  auth: Authenticator;
  sessions: ChatSessions;
  limits: {
    /** Largest frame taken; a bigger one closes the socket with 1009. */
    maxFrameBytes: number;
    heartbeatMs: number;
    /** How long a client has to send `auth` when it did not authenticate in the URL. */
    authTimeoutMs: number;
    /** Frames refused in a row for rate before the socket is closed (1008). */
    maxRefusedInRow: number;
  };
  perClient: RateLimiter;
  perIp: RateLimiter;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

interface Client {
  ws: WebSocket;
  conn: Connection | undefined;
  principal: Principal | undefined;
  ip: string;
  alive: boolean;
  refused: number;
  /** Frames are handled one at a time, in arrival order. */
  queue: Promise<void>;
  first: boolean;
}

/**
 * `GET /v1/ws` (DESIGN §7): authentication in the URL, the `Authorization` header or a first `auth`
 * frame; then `session`, or `resume` to pick up a session where it was left. Dead peers are found by a
 * ping every `heartbeatMs`; slow readers are cut off before they cost unbounded memory.
 */
export class WsEndpoint {
  readonly #o: WsOptions;
  readonly #wss: WebSocketServer;
  readonly #clients = new Set<Client>();
  readonly #heartbeat: NodeJS.Timeout;
  #closing = false;

  constructor(options: WsOptions) {
    this.#o = options;
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: options.limits.maxFrameBytes, perMessageDeflate: false, clientTracking: false });
    refuseBadHandshakes(this.#wss);
    this.#heartbeat = setInterval(() => heartbeat(this.#clients), options.limits.heartbeatMs).unref();
  }

  get size(): number {
    return this.#clients.size;
  }

  /** Takes an HTTP upgrade for `/v1/ws`, whose handshake the caller tracks (`trackHandshake`). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const ip = req.socket.remoteAddress ?? 'unknown';
    if (this.#closing) return refuseHandshake(socket, new HttpProblem(503, 'unavailable', 'Service unavailable', 'the gateway is shutting down', { headers: { 'retry-after': '1' } }));
    let principal: Principal | undefined;
    const credential = credentialOf(req.headers.authorization, url.searchParams);
    if (credential !== undefined || this.#o.auth.open) {
      try {
        principal = this.#o.auth.verify(credential);
      } catch (err) {
        return refuseHandshake(socket, new HttpProblem(401, 'unauthorized', 'Unauthorized', (err as Error).message));
      }
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      handshakeTaken(socket);
      this.#accept(ws, ip, principal, url.searchParams);
    });
  }

  /** Closes every socket with 1001 and where to resume. */
  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#heartbeat);
    const closed = [...this.#clients].map(
      (c) =>
        new Promise<void>((resolve) => {
          c.ws.once('close', () => resolve());
          const resume = c.conn?.sessionId ? { resume: { sessionId: c.conn.sessionId, lastSeq: c.conn.lastSeq } } : {};
          c.conn?.detach();
          c.ws.close(1001, JSON.stringify({ reason: 'gateway restarting', ...resume }));
          setTimeout(() => c.ws.terminate(), 2000).unref();
        }),
    );
    await Promise.all(closed);
    this.#wss.close();
  }

  #accept(ws: WebSocket, ip: string, principal: Principal | undefined, query: URLSearchParams): void {
    const client: Client = { ws, conn: undefined, principal, ip, alive: true, refused: 0, queue: Promise.resolve(), first: true };
    this.#clients.add(client);
    ws.on('pong', () => (client.alive = true));
    ws.on('close', () => {
      this.#clients.delete(client);
      client.conn?.detach();
    });
    ws.on('error', () => ws.terminate());
    ws.on('message', (data, isBinary) => {
      client.alive = true;
      client.queue = client.queue.then(() => this.#onFrame(client, data as Buffer, isBinary)).catch((err: unknown) => {
        this.#o.log('frame handling failed', { error: (err as Error).message });
      });
    });
    if (!principal) {
      const timer = setTimeout(() => {
        if (!client.principal) ws.close(1008, 'authenticate first: {"v":1,"type":"auth","token":...}');
      }, this.#o.limits.authTimeoutMs);
      ws.once('close', () => clearTimeout(timer));
      return;
    }
    client.queue = client.queue.then(() => this.#begin(client, query));
  }

  /** After authentication: resume a session named in the URL, else start one. */
  async #begin(client: Client, query: URLSearchParams): Promise<void> {
    const conn = this.#connection(client);
    const sessionId = query.get('sessionId');
    const lastSeq = Number(query.get('lastSeq') ?? '0');
    if (sessionId) {
      client.first = false;
      try {
        return await this.#o.sessions.resume(conn, sessionId, Number.isSafeInteger(lastSeq) && lastSeq >= 0 ? lastSeq : 0);
      } catch (err) {
        if (!(err instanceof FrameError)) throw err;
        conn.sendUnsequenced(JSON.stringify({ type: 'error', code: err.code, message: err.message }));
      }
    }
    await this.#o.sessions.open(conn);
  }

  #connection(client: Client): Connection {
    const ws = client.ws;
    const transport = {
      write: (_seq: number, text: string) => ws.send(text),
      buffered: () => ws.bufferedAmount,
      close: (code: number, reason: string) => {
        this.#o.log('closing socket', { code, reason, ip: client.ip });
        ws.close(code, reason);
        // The close frame waits behind whatever the client has not read; a client that never reads is cut.
        setTimeout(() => ws.terminate(), 5000).unref();
      },
    };
    return (client.conn = this.#o.sessions.connect(transport, client.principal!.id, client.ip));
  }

  async #onFrame(client: Client, data: Buffer, isBinary: boolean): Promise<void> {
    if (client.ws.readyState !== client.ws.OPEN) return;
    let frame: ClientFrame;
    try {
      if (isBinary) throw new FrameError('binary_frame', 'frames are JSON text; binary frames are not taken');
      frame = parseClientFrame(data.toString('utf8'));
    } catch (err) {
      return this.#error(client, err);
    }
    const first = client.first;
    client.first = false;
    if (!client.principal) {
      if (frame.type !== 'auth') return void client.ws.close(1008, 'authenticate first: {"v":1,"type":"auth","token":...}');
      try {
        client.principal = this.#o.auth.verify(frame.token);
      } catch (err) {
        if (err instanceof AuthError) return void client.ws.close(1008, `unauthorized: ${err.message}`.slice(0, 120));
        throw err;
      }
      // The frame after `auth` counts as the first: it may be a `resume`.
      client.first = true;
      return this.#begin(client, new URLSearchParams());
    }
    const conn = client.conn!;
    try {
      switch (frame.type) {
        case 'auth':
          return; // Already authenticated.
        case 'resume':
          if (!first && conn.lastSeq > 0) throw new FrameError('invalid_frame', 'resume must be the first frame on a socket');
          return await this.#o.sessions.resume(conn, frame.sessionId, frame.lastSeq);
        case 'ping':
          return await this.#o.sessions.pong(conn, frame.id);
        case 'message':
          if (!this.#admit(client)) throw new FrameError('rate_limited', `too many messages: slow down (retry in ${this.#o.perClient.retryAfter(conn.sessionId!)} s)`, frame.id);
          return await this.#o.sessions.message(conn.sessionId!, client.principal!, frame);
      }
    } catch (err) {
      return this.#error(client, err);
    }
  }

  #admit(client: Client): boolean {
    const ok = this.#o.perIp.take(client.ip) && this.#o.perClient.take(client.conn!.sessionId!);
    client.refused = ok ? 0 : client.refused + 1;
    if (client.refused > this.#o.limits.maxRefusedInRow) client.conn!.close(1008, 'flooding: too many messages over the rate limit');
    return ok;
  }

  async #error(client: Client, err: unknown): Promise<void> {
    if (!(err instanceof FrameError)) {
      this.#o.log('frame failed', { error: (err as Error).message });
      err = new FrameError('unavailable', 'the gateway could not handle the frame: try again');
    }
    const e = err as FrameError;
    if (client.conn) return this.#o.sessions.fail(client.conn, e.code, e.message, e.id);
    if (client.ws.readyState === client.ws.OPEN) client.ws.send(JSON.stringify({ v: 1, type: 'error', code: e.code, message: e.message, ...(e.id ? { id: e.id } : {}) }));
  }
}
