import { randomUUID } from 'node:crypto';
import { MESSAGE_RECEIVED, keywordOf, parseConversationKey } from '../eventing/chat.ts';
import type { CloudEvent } from '../eventing/codec.ts';
import { ingressTraceparent } from '../eventing/trace-context.ts';
import { clientSessionKey } from '../runtime/chat.ts';
import { Tracing, failSpan } from '../runtime/tracing.ts';
import type { Principal } from './auth.ts';
import { BrokerUnavailableError } from './broker-client.ts';
import { Connection, type ConnectionLimits, type Transport } from './connection.ts';
import { type ClientFrame, type ErrorCode, FrameError, errorBody } from './envelope.ts';
import { replyButtons } from './platforms/buttons.ts';
import { type GatewayStore, SessionGoneError } from './store.ts';

/** What the gateway knows of a bot a client may talk to. */
export interface BotEntry {
  name: string;
  namespace: string;
  /** DESIGN §4.3; the gateway itself applies `reject`, the bot's runtime the others. */
  turnPolicy?: 'queue' | 'debounce' | 'interrupt' | 'reject';
  /** Longest a turn may take; a `reject` turn is forgotten after it. */
  timeoutSeconds?: number;
}

export interface SessionOptions {
  store: GatewayStore;
  send: (event: CloudEvent) => Promise<void>;
  bot: (name: string) => BotEntry | undefined;
  sessionTtlMs: number;
  connection: ConnectionLimits;
  /** How long a client message id is remembered (a resend in that time is acknowledged, not sent). */
  dedupeTtlMs: number;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

export type MessageFrame = Extract<ClientFrame, { type: 'message' }>;

/** The chat source of a bot's WebSocket clients (DESIGN §6). */
export function wsSource(bot: BotEntry): string {
  return `/ws/${bot.namespace}/${bot.name}`;
}

/** The value of a message key while its event is being stored: `pending ` + the session. */
const PENDING = 'pending ';
/** How long a message may stay pending: past it, a replica that died while storing it blocks nothing. */
const PENDING_TTL_MS = 30_000;
const messageKey = (source: string, id: string) => `m:${source}:${id}`;
/** A conversation's running turn; clients name their own conversations, so it is the user's too. */
/**
 * A conversation's running turn under `reject`, from its message or any of the bot's answers to it
 * (they carry its `chatuser` and subject): per user, as the bot's runtime keeps its session.
 */
const turnKey = (source: string, event: CloudEvent) => `t:${clientSessionKey(source, event)}`;

/**
 * Client sessions (DESIGN §7): a message becomes a `dev.knbot.chat.message.received` event in the
 * broker and is acknowledged once the broker has it; what the bot answers comes back through `egress`
 * and is appended to the session that asked, whichever replica holds its socket.
 */
export class ChatSessions {
  readonly #o: SessionOptions;
  readonly #tracing = new Tracing({ 'knbot.component': 'gateway' });
  /** Messages this replica delivered the reply of, most recent last (`<sessionId> <id>`). */
  readonly #answered = new Set<string>();

  constructor(options: SessionOptions) {
    this.#o = options;
  }

  /** A client on `transport`, not yet in a session. */
  connect(transport: Transport, principal: string, ip: string): Connection {
    return new Connection(this.#o.store, transport, principal, ip, this.#o.connection);
  }

  async open(conn: Connection, ttlMs = this.#o.sessionTtlMs): Promise<void> {
    const id = randomUUID();
    await this.#o.store.openSession(id, conn.principal, ttlMs);
    conn.start(id);
  }

  /** True when `sessionId` is live and `principal`'s. */
  async owns(sessionId: string, principal: string): Promise<boolean> {
    return (await this.#o.store.sessionOwner(sessionId)) === principal;
  }

  /** Re-attaches `conn` to its session; frames after `lastSeq` are replayed, then `session {resumed}`. */
  async resume(conn: Connection, sessionId: string, lastSeq: number): Promise<void> {
    const owner = await this.#o.store.sessionOwner(sessionId);
    if (owner === undefined || owner !== conn.principal) throw new FrameError('unknown_session', 'no such session (it expired, or it belongs to someone else): start a new one');
    // Checked before the socket is attached, so a refused resume leaves the session untouched.
    const head = await this.#o.store.replay(sessionId, Number.MAX_SAFE_INTEGER);
    if (!head) throw new FrameError('unknown_session', 'the session expired: start a new one');
    if (lastSeq > head.lastSeq) throw new FrameError('invalid_frame', `lastSeq ${lastSeq} is ahead of the session (${head.lastSeq})`);
    // A socket is given a session before its first frame; when that frame resumes another, the new
    // one was never used and goes now rather than at its TTL.
    const unused = conn.sessionId !== undefined && conn.sessionId !== sessionId && conn.lastSeq === 0 ? conn.sessionId : undefined;
    const result = await conn.resume(sessionId, lastSeq);
    if (!result) throw new FrameError('unknown_session', 'the session expired: start a new one');
    if (unused) await this.#o.store.endSession(unused);
    if (!result.complete) await this.#append(sessionId, errorBody('resume_gap', `frames before ${conn.lastSeq} were dropped from the replay buffer`));
    await this.#append(sessionId, JSON.stringify({ type: 'session', sessionId, resumed: true }));
  }

  /** A client's chat message: into the broker, then `ack`; a message id seen before is acknowledged again only. */
  async message(sessionId: string, principal: Principal, frame: MessageFrame): Promise<void> {
    const bot = this.#o.bot(frame.bot);
    if (!bot || (principal.bots && !principal.bots.includes(frame.bot))) throw new FrameError('unknown_bot', `no bot named ${frame.bot} here`, frame.id);
    const source = wsSource(bot);
    const key = messageKey(source, frame.id);
    // Claimed as pending while the broker stores it, then as the session's: a resend that finds it
    // pending (the first still at work, or a replica that died meanwhile) is asked to try again,
    // never acknowledged as a duplicate of a message that was not stored.
    const holder = await this.#o.store.claim(key, `${PENDING}${sessionId}`, PENDING_TTL_MS);
    if (holder === sessionId) return void (await this.#append(sessionId, JSON.stringify({ type: 'ack', id: frame.id, duplicate: true })));
    if (holder === `${PENDING}${sessionId}`) throw new FrameError('unavailable', 'this message is still being queued: try again shortly', frame.id);
    if (holder !== undefined) throw new FrameError('id_in_use', 'another session sent a message with this id: use unique ids (UUIDs)', frame.id);
    const event = this.#event(bot, principal, frame);
    const turn = turnKey(source, event);
    if (bot.turnPolicy === 'reject') {
      const running = await this.#o.store.claim(turn, frame.id, (bot.timeoutSeconds ?? 300) * 1000);
      if (running !== undefined) {
        await this.#o.store.delete(key);
        throw new FrameError('turn_in_progress', 'the bot is still answering the last message of this conversation', frame.id);
      }
    }
    // One trace per user turn starts here: the bot's spans (and what it calls) continue it.
    const span = this.#tracing.start('chat.message', undefined);
    span.setAttribute('knbot.bot', bot.name);
    event.traceparent = ingressTraceparent(span.spanContext());
    try {
      await this.#o.send(event);
      span.end();
    } catch (err) {
      failSpan(span, err);
      await this.#o.store.delete(key);
      if (bot.turnPolicy === 'reject') await this.#o.store.delete(turn);
      if (err instanceof BrokerUnavailableError) {
        this.#o.log('broker refused a message', { error: err.message, status: err.status });
        throw new FrameError('unavailable', 'the message could not be queued: try again', frame.id);
      }
      throw err;
    }
    // Pending to stored in one step: a resend in between would otherwise find no claim and go out again.
    await this.#o.store.put(key, sessionId, this.#o.dedupeTtlMs);
    await this.#append(sessionId, JSON.stringify({ type: 'ack', id: frame.id }));
    await this.#append(sessionId, JSON.stringify({ type: 'typing', id: frame.id, bot: frame.bot, conversation: frame.conversation }));
  }

  /** An `error` frame into the session (or straight to a client without one). */
  async fail(conn: Connection, code: ErrorCode, message: string, id?: string): Promise<void> {
    const body = errorBody(code, message, id);
    if (conn.sessionId && !conn.closed) await this.#append(conn.sessionId, body).catch(() => conn.sendUnsequenced(body));
    else conn.sendUnsequenced(body);
  }

  async pong(conn: Connection, id: string | undefined): Promise<void> {
    await this.#append(conn.sessionId!, JSON.stringify(id === undefined ? { type: 'pong' } : { type: 'pong', id }));
  }

  /**
   * A bot's output for a WebSocket conversation (from the broker): `typing`, `chunk` or `reply` in
   * the session that sent the message. False when no session asked (expired, or another gateway's).
   */
  async egress(kind: 'typing' | 'chunk' | 'reply', event: CloudEvent): Promise<boolean> {
    const data = (event.data ?? {}) as Record<string, unknown>;
    const inReplyTo = typeof data.inReplyTo === 'string' ? data.inReplyTo : undefined;
    const bot = typeof event.chatbot === 'string' ? event.chatbot : undefined;
    const tenant = typeof event.chattenant === 'string' ? event.chattenant : undefined;
    if (!inReplyTo || !bot || !tenant) return false;
    const source = `/ws/${tenant}/${bot}`;
    const holder = await this.#o.store.get(messageKey(source, inReplyTo));
    if (!holder) return false;
    // A fast bot can answer before its message is marked stored.
    const sessionId = holder.startsWith(PENDING) ? holder.slice(PENDING.length) : holder;
    const conversation = event.subject ?? '';
    if (kind === 'typing') return this.#appended(sessionId, { type: 'typing', id: inReplyTo, bot, conversation });
    if (kind === 'chunk') {
      // A chunk delivered after its reply (a Broker without ordered delivery) would only repeat it.
      if (this.#answered.has(`${sessionId} ${inReplyTo}`)) return true;
      return this.#appended(sessionId, { type: 'chunk', id: inReplyTo, text: String(data.text ?? ''), ...(typeof data.index === 'number' ? { index: data.index } : {}) });
    }
    this.#remember(`${sessionId} ${inReplyTo}`);
    const { inReplyTo: _, conversation: __, buttons: ___, ...rest } = data;
    // Buttons go to clients as they go to platforms: checked, as `{label, id, value}`, or not at all.
    const { buttons, problem } = replyButtons(data);
    if (problem) this.#o.log('reply buttons left out', { platform: 'websocket', bot, id: event.id, code: problem.code, path: problem.path });
    const ok =
      typeof data.error === 'string'
        ? await this.#appended(sessionId, { type: 'error', code: data.error, message: 'the bot could not answer this message', id: inReplyTo })
        : await this.#appended(sessionId, { ...rest, ...(buttons.length ? { buttons } : {}), type: 'reply', id: inReplyTo, bot, conversation, text: String(data.text ?? '') });
    // The conversation's turn is over only when this answers the message holding it.
    if (this.#o.bot(bot)?.turnPolicy === 'reject') {
      const turn = turnKey(source, event);
      if ((await this.#o.store.get(turn)) === inReplyTo) await this.#o.store.delete(turn);
    }
    return ok;
  }

  #remember(key: string): void {
    this.#answered.add(key);
    if (this.#answered.size > 10_000) this.#answered.delete(this.#answered.values().next().value!);
  }

  async #appended(sessionId: string, frame: Record<string, unknown>): Promise<boolean> {
    try {
      await this.#append(sessionId, JSON.stringify(frame));
      return true;
    } catch (err) {
      if (err instanceof SessionGoneError) return false;
      throw err;
    }
  }

  #append(sessionId: string, body: string): Promise<number> {
    return this.#o.store.append(sessionId, body);
  }

  #event(bot: BotEntry, principal: Principal, frame: MessageFrame): CloudEvent {
    const user = principal.id === 'anonymous' && frame.user ? frame.user : { id: principal.id, ...(frame.user?.name ? { name: frame.user.name } : {}) };
    const keyword = keywordOf(frame.text);
    return {
      specversion: '1.0',
      id: frame.id,
      source: wsSource(bot),
      type: MESSAGE_RECEIVED,
      subject: frame.conversation,
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      chatbot: bot.name,
      chatplatform: 'ws',
      chattenant: bot.namespace,
      chatuser: user.id,
      partitionkey: frame.conversation,
      chatstream: 'true',
      ...(keyword ? { chatkeyword: keyword } : {}),
      data: { text: frame.text, user, conversation: parseConversationKey(frame.conversation) },
    };
  }
}
