import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { parseConversationKey } from '../eventing/chat.ts';
import type { Bot, ChatMessage, Reply } from './bot.ts';
import { collectReply, conversationKey, isStreamed, sessionKey } from './chat.ts';
import type { ServeConfig } from './config.ts';
import { type DirectFrame, type ErrorCode, FrameError, parseDirectFrame } from './envelope.ts';
import type { Logger } from './log.ts';
import { andThen, isPromiseLike } from './maybe.ts';
import { HttpProblem } from './problem.ts';
import { type FrameSink, SOCKET_SESSION_LIMITS, type SocketSession, type SocketSessionLimits, SocketSessions } from './socket-sessions.ts';
import { handshakeTaken, heartbeat, refuseBadHandshakes } from './sockets.ts';
import { type Tracing, failSpan } from './tracing.ts';
import type { Turns } from './turn.ts';
import { TurnSkipped } from './turn-policy.ts';
import type { MessageWork } from './work.ts';

/** What a direct socket needs of its pod. */
export interface SocketHost {
  readonly config: ServeConfig;
  readonly log: Logger;
  readonly bot: Bot;
  readonly turns: Turns;
  readonly tracing: Tracing;
  /**
   * A message's place in the pod's in-flight work, as a request gets one (deadline, concurrency limit,
   * metrics), or why the pod cannot take it now. `onProblem` answers it when the pod stops waiting.
   */
  admit(onProblem: (problem: HttpProblem) => void): MessageWork | HttpProblem;
}

export interface DirectSocketLimits {
  heartbeatMs: number;
  /** A client this far behind (bytes queued) is closed with 1013; it may resume. */
  maxBufferedBytes: number;
  /** How long a closing socket may take to answer the close frame before it is cut. */
  closeTimeoutMs: number;
}

export const DIRECT_SOCKET_LIMITS: DirectSocketLimits = { heartbeatMs: 25_000, maxBufferedBytes: 1 << 20, closeTimeoutMs: 2000 };

type MessageFrame = Extract<DirectFrame, { type: 'message' }>;

/** A socket, and the session its frames come from. */
interface Client extends FrameSink {
  ws: WebSocket;
  session: SocketSession;
  /** The seq of the last frame written to this socket. */
  sentSeq: number;
  alive: boolean;
  /** No frame taken yet that counts (a `resume` must come first). */
  first: boolean;
  closing: boolean;
}

/**
 * A bot pod's own `GET /v1/ws` (DESIGN §4.1, the envelope of §7), for a bot with `bot.websocket: true`.
 * Each message is a turn as a `POST /v1/chat` message is: the same turn policy, session scope, limits
 * and metrics. Sessions and their replay buffers live in this pod's memory, so a client resumes only
 * on the pod it was on; the gateway is what survives a pod going away (scale to zero, a new revision).
 */
export class DirectSockets {
  readonly #host: SocketHost;
  readonly #limits: DirectSocketLimits;
  readonly #sessions: SocketSessions;
  readonly #wss: WebSocketServer;
  readonly #clients = new Set<Client>();
  readonly #heartbeat: NodeJS.Timeout;

  constructor(host: SocketHost, limits: DirectSocketLimits = DIRECT_SOCKET_LIMITS, sessionLimits: SocketSessionLimits = SOCKET_SESSION_LIMITS) {
    this.#host = host;
    this.#limits = limits;
    this.#sessions = new SocketSessions(sessionLimits);
    // A frame carries one message: it may be as large as a request body, and no larger.
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: host.config.maxBodyBytes, perMessageDeflate: false, clientTracking: false });
    refuseBadHandshakes(this.#wss);
    this.#heartbeat = setInterval(() => this.#beat(), limits.heartbeatMs).unref();
  }

  /** Sockets open now. */
  get size(): number {
    return this.#clients.size;
  }

  /** Takes an HTTP upgrade the server has routed here. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      handshakeTaken(socket);
      this.#accept(ws);
    });
  }

  /** SIGTERM, once in-flight turns are over: every socket closes with 1001 and where it was. */
  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    await Promise.all(
      [...this.#clients].map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.ws.readyState === c.ws.CLOSED) return resolve();
            c.ws.once('close', () => resolve());
            this.#close(c, 1001, { reason: 'bot shutting down', resume: { sessionId: c.session.id, lastSeq: c.sentSeq } });
          }),
      ),
    );
  }

  #accept(ws: WebSocket): void {
    const session = this.#sessions.open();
    const client: Client = {
      ws,
      session,
      sentSeq: -1,
      alive: true,
      first: true,
      closing: false,
      write: (seq, text) => this.#write(client, seq, text),
    };
    this.#clients.add(client);
    ws.on('pong', () => (client.alive = true));
    ws.on('close', () => {
      this.#clients.delete(client);
      this.#sessions.detach(client.session, client);
    });
    // ws answers a protocol error (an oversize frame: 1009, bad UTF-8: 1007) with its close frame itself.
    ws.on('error', (err) => this.#host.log.debug('socket error', { err }));
    ws.on('message', (data, isBinary) => this.#onFrame(client, data as Buffer, isBinary));
    this.#sessions.attach(session, client);
    this.#append(session, { type: 'session', sessionId: session.id });
  }

  #onFrame(client: Client, data: Buffer, isBinary: boolean): void {
    client.alive = true;
    if (client.closing) return;
    const first = client.first;
    client.first = false;
    try {
      if (isBinary) throw new FrameError('binary_frame', 'frames are JSON text; binary frames are not taken');
      const frame = parseDirectFrame(data.toString('utf8'));
      switch (frame.type) {
        case 'auth':
          // The pod asks no token of its own (the cluster's ingress or the gateway does); a client
          // written for the gateway may still send one first, and then resume.
          client.first = first;
          return;
        case 'ping':
          return void this.#append(client.session, frame.id === undefined ? { type: 'pong' } : { type: 'pong', id: frame.id });
        case 'resume':
          return this.#resume(client, frame.sessionId, frame.lastSeq, first);
        case 'message':
          return this.#message(client.session, frame);
      }
    } catch (err) {
      this.#fail(client.session, err);
    }
  }

  /** Re-attaches the socket to a session of this pod: every frame after `lastSeq`, then `session {resumed}`. */
  #resume(client: Client, sessionId: string, lastSeq: number, first: boolean): void {
    const current = client.session;
    if (!first && current.lastSeq > 0) throw new FrameError('invalid_frame', 'resume must be the first frame on a socket');
    const target = this.#sessions.get(sessionId);
    if (!target) {
      throw new FrameError('unknown_session', 'no such session on this pod (it expired, or it was on another pod): start a new one; the gateway resumes across pods');
    }
    if (lastSeq > target.lastSeq) throw new FrameError('invalid_frame', `lastSeq ${lastSeq} is ahead of the session (${target.lastSeq})`);
    // The session's earlier socket, if the pod has not seen it drop yet, gives way to this one.
    const other = target.sink as Client | undefined;
    if (other && other !== client) this.#close(other, 1000, { reason: 'resumed on another socket' });
    if (target !== current) {
      // The session this socket was given was never used: it goes now rather than at its expiry.
      this.#sessions.detach(current, client);
      this.#sessions.delete(current);
    }
    client.session = target;
    client.sentSeq = lastSeq;
    this.#sessions.attach(target, client);
    const { frames, complete } = target.after(lastSeq);
    for (const [seq, text] of frames) client.write(seq, text);
    if (!complete) this.#append(target, errorFrame('resume_gap', `frames before ${frames[0]?.[0] ?? target.lastSeq + 1} were dropped from the replay buffer`));
    this.#append(target, { type: 'session', sessionId: target.id, resumed: true });
  }

  /** A chat message: `ack`, `typing`, then the turn's `chunk`s and its `reply` (or an `error`). */
  #message(session: SocketSession, frame: MessageFrame): void {
    const host = this.#host;
    const bot = host.config.name;
    const id = frame.id;
    if (frame.bot !== undefined && frame.bot !== bot) throw new FrameError('unknown_bot', `this pod serves the bot ${bot}, not ${frame.bot}`, id);
    if (session.seen(id)) return void this.#append(session, { type: 'ack', id, duplicate: true });
    const msg: ChatMessage = { id, text: frame.text, user: frame.user ?? { id: 'anonymous' }, conversation: parseConversationKey(frame.conversation) };
    const work = host.admit((problem) => this.#append(session, errorFrame(problem.status === 503 ? 'unavailable' : 'bot_error', problem.message, id)));
    if (work instanceof HttpProblem) {
      session.forget(id);
      throw new FrameError('unavailable', `${work.message}: try again`, id);
    }
    // Same key as the pod's own POST /v1/chat: clients name their conversations, so it is per user.
    if (host.turns.rejects(sessionKey(msg))) {
      session.forget(id);
      work.finish(409);
      throw new FrameError('turn_in_progress', 'the bot is still answering an earlier message of this conversation', id);
    }
    const conversation = conversationKey(msg);
    this.#append(session, { type: 'ack', id });
    work.onTyping = () => this.#append(session, { type: 'typing', id, bot, conversation });
    work.onTyping();
    this.#turn(session, msg, work, conversation);
  }

  #turn(session: SocketSession, msg: ChatMessage, work: MessageWork, conversation: string): void {
    const { bot, turns, tracing, log } = this.#host;
    const onMessage = bot.onMessage!;
    const id = msg.id;
    const span = tracing.start('chat', undefined);
    // After the pod gave up on the message (its error frame went out), nothing more of it is sent.
    const chunk = (text: string) => void (work.done || this.#append(session, { type: 'chunk', id, text }));
    const failed = (err: unknown) => {
      failSpan(span, err);
      if (work.done) return;
      log.error('bot failed', { err, path: '/v1/ws' });
      this.#append(session, errorFrame('bot_error', 'the bot failed to handle the message', id));
      work.finish(500);
    };
    // The span ends last: a reply that cannot be sent (not JSON) fails the turn instead.
    const settle = (reply: Reply | TurnSkipped | undefined) => {
      try {
        if (!work.done && reply instanceof TurnSkipped && reply.reason === 'turn_in_progress') {
          // Another pod holds the conversation (sessions in Redis): found only when the turn would start.
          session.forget(id);
          this.#append(session, errorFrame('turn_in_progress', 'the bot is still answering an earlier message of this conversation', id));
          work.finish(409);
        } else if (!work.done) {
          this.#append(session, replyFrame(id, this.#host.config.name, conversation, reply));
          work.finish(200);
        }
        span.end();
      } catch (err) {
        failed(err);
      }
    };
    try {
      const out = turns.message(msg, work, span, undefined, (m, ctx) => andThen(onMessage.call(bot, m, ctx), (r) => collectReply(r, isStreamed(r) ? chunk : undefined)));
      if (isPromiseLike(out)) (out as Promise<Reply | TurnSkipped | undefined>).then(settle, failed);
      else settle(out);
    } catch (err) {
      failed(err);
    }
  }

  #append(session: SocketSession, body: Record<string, unknown>): number {
    return this.#sessions.append(session, body);
  }

  #fail(session: SocketSession, err: unknown): void {
    if (!(err instanceof FrameError)) {
      this.#host.log.error('frame failed', { err, path: '/v1/ws' });
      err = new FrameError('unavailable', 'the pod could not handle the frame: try again');
    }
    const e = err as FrameError;
    this.#append(session, errorFrame(e.code, e.message, e.id));
  }

  /** A frame to the socket, unless the client has fallen too far behind: then 1013, and it resumes. */
  #write(client: Client, seq: number, text: string): void {
    const ws = client.ws;
    if (client.closing || ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount > this.#limits.maxBufferedBytes) {
      // Not the session id: it is what resumes the session, and a pod's resume asks for nothing else.
      this.#host.log.warn('closing a socket that does not read', { buffered: ws.bufferedAmount });
      return this.#close(client, 1013, { error: 'too slow: resume to catch up', sessionId: client.session.id, lastSeq: client.sentSeq });
    }
    ws.send(text);
    client.sentSeq = seq;
  }

  /** Closes with `code` and a JSON reason (at most 123 bytes); the session stays for a resume. */
  #close(client: Client, code: number, reason: Record<string, unknown>): void {
    if (client.closing) return;
    client.closing = true;
    this.#sessions.detach(client.session, client);
    client.ws.close(code, JSON.stringify(reason));
    // The close frame waits behind whatever the client has not read; a client that never reads is cut.
    setTimeout(() => client.ws.terminate(), this.#limits.closeTimeoutMs).unref();
  }

  #beat(): void {
    this.#sessions.sweep();
    heartbeat(this.#clients);
  }
}

function errorFrame(code: ErrorCode, message: string, id?: string): Record<string, unknown> {
  return id === undefined ? { type: 'error', code, message } : { type: 'error', code, message, id };
}

/** The `reply` frame: the bot's reply fields, then the envelope's own, which no reply field overrides. */
function replyFrame(id: string, bot: string, conversation: string, reply: Reply | TurnSkipped | undefined): Record<string, unknown> {
  if (reply instanceof TurnSkipped) return { type: 'reply', id, bot, conversation, text: '', skipped: reply.reason, ...(reply.by === undefined ? {} : { supersededBy: reply.by }) };
  const { v: _v, seq: _seq, ...fields } = reply ?? { text: '' };
  return { ...fields, type: 'reply', id, bot, conversation, text: reply?.text ?? '' };
}
