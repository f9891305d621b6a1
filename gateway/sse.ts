import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from './auth.ts';
import type { Connection } from './connection.ts';
import { FrameError, parseClientFrame } from './envelope.ts';
import type { ChatSessions, MessageFrame } from './sessions.ts';

/** An HTTP error for the gateway's JSON endpoints. */
export class GatewayProblem extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

const STATUS: Record<string, number> = {
  unknown_bot: 404,
  unknown_session: 404,
  rate_limited: 429,
  turn_in_progress: 409,
  id_in_use: 409,
  unavailable: 503,
  unauthorized: 401,
};

export function problemOfFrameError(err: FrameError): GatewayProblem {
  return new GatewayProblem(STATUS[err.code] ?? 400, err.code, err.message);
}

function sseWrite(res: ServerResponse, id: string | undefined, event: string, data: string): void {
  if (!res.destroyed) res.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${data}\n\n`);
}

/**
 * `GET /v1/stream`: the WebSocket's frames as server-sent events, for clients that cannot open a
 * socket. Each event's `id` is `<sessionId>:<seq>`, so a browser's EventSource resumes by itself
 * (`Last-Event-ID`); messages go in with `POST /v1/chat` naming the `sessionId`.
 */
export async function openStream(sessions: ChatSessions, principal: Principal, req: IncomingMessage, res: ServerResponse, heartbeatMs: number): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://gateway');
  const last = String(req.headers['last-event-id'] ?? '');
  const colon = last.lastIndexOf(':');
  const resumeId = colon > 0 ? last.slice(0, colon) : url.searchParams.get('sessionId');
  const lastSeq = Number(colon > 0 ? last.slice(colon + 1) : (url.searchParams.get('lastSeq') ?? '0'));
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  const conn: Connection = sessions.connect(
    {
      write: (seq, text, type) => sseWrite(res, seq >= 0 && conn.sessionId ? `${conn.sessionId}:${seq}` : undefined, type, text),
      buffered: () => res.writableLength,
      close: () => res.end(),
    },
    principal.id,
    req.socket.remoteAddress ?? 'unknown',
  );
  const beat = setInterval(() => res.write(': ping\n\n'), heartbeatMs).unref();
  res.on('close', () => {
    clearInterval(beat);
    conn.detach();
  });
  if (resumeId) {
    try {
      return await sessions.resume(conn, resumeId, Number.isSafeInteger(lastSeq) && lastSeq >= 0 ? lastSeq : 0);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      conn.sendUnsequenced(JSON.stringify({ type: 'error', code: err.code, message: err.message }));
    }
  }
  await sessions.open(conn);
}

/** Reads `POST /v1/chat`'s JSON into a message frame: `{bot, conversation, text, user?, id?, sessionId?}`. */
export function chatRequest(body: unknown): { frame: MessageFrame; sessionId: string | undefined } {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new GatewayProblem(400, 'invalid_chat_message', 'the body must be a JSON object {bot, conversation, text, user?}');
  const b = body as Record<string, unknown>;
  if (b.sessionId !== undefined && (typeof b.sessionId !== 'string' || b.sessionId === '')) throw new GatewayProblem(400, 'invalid_chat_message', 'sessionId: must be a non-empty string');
  let frame;
  try {
    frame = parseClientFrame(JSON.stringify({ ...b, v: 1, type: 'message', id: b.id ?? randomUUID() }));
  } catch (err) {
    if (err instanceof FrameError) throw new GatewayProblem(400, 'invalid_chat_message', err.message);
    throw err;
  }
  return { frame: frame as MessageFrame, sessionId: b.sessionId as string | undefined };
}

interface Outcome {
  reply?: Record<string, unknown>;
  error?: { code: string; message: string };
}

/**
 * `POST /v1/chat` without a session: the message goes through the broker like any other, and the
 * answer comes back on this request — as JSON, or as SSE `chunk` events then `reply` (the shape of a
 * bot pod's own `/v1/chat`).
 */
export async function chatOnce(sessions: ChatSessions, principal: Principal, frame: MessageFrame, req: IncomingMessage, res: ServerResponse, timeoutMs: number): Promise<void> {
  const stream = /\btext\/event-stream\b/i.test(req.headers.accept ?? '');
  let settle!: (o: Outcome) => void;
  const outcome = new Promise<Outcome>((resolve) => (settle = resolve));
  let chunked = false;
  const conn = sessions.connect(
    {
      write: (_seq, text, type) => {
        const f = JSON.parse(text) as Record<string, unknown>;
        if (f.id !== frame.id) return;
        if (type === 'chunk' && stream) {
          chunked = true;
          sseWrite(res, undefined, 'chunk', JSON.stringify({ text: f.text }));
        }
        else if (type === 'reply') settle({ reply: f });
        else if (type === 'error') settle({ error: { code: String(f.code), message: String(f.message) } });
      },
      buffered: () => res.writableLength,
      close: () => settle({ error: { code: 'unavailable', message: 'the answer could not be streamed' } }),
    },
    principal.id,
    req.socket.remoteAddress ?? 'unknown',
  );
  const timer = setTimeout(() => settle({ error: { code: 'timeout', message: `no answer in ${timeoutMs} ms` } }), timeoutMs);
  res.on('close', () => settle({ error: { code: 'gone', message: 'the client went away' } }));
  try {
    await sessions.open(conn, timeoutMs + 60_000);
    try {
      await sessions.message(conn.sessionId!, principal, frame);
    } catch (err) {
      if (err instanceof FrameError) throw problemOfFrameError(err);
      throw err;
    }
    if (stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
      res.flushHeaders();
    }
    const o = await outcome;
    if (stream) {
      // A bot that answered in one piece streams as one chunk, as a pod's own /v1/chat does.
      if (o.reply && !chunked && o.reply.text) sseWrite(res, undefined, 'chunk', JSON.stringify({ text: o.reply.text }));
      if (o.reply) sseWrite(res, undefined, 'reply', JSON.stringify(answer(o.reply, frame)));
      else sseWrite(res, undefined, 'error', JSON.stringify(o.error));
      return void res.end();
    }
    if (o.reply) return json(res, 200, answer(o.reply, frame));
    const status = o.error?.code === 'timeout' ? 504 : 502;
    json(res, status, { type: `urn:knbot:problem:${o.error?.code}`, title: o.error?.code, status, detail: o.error?.message });
  } finally {
    clearTimeout(timer);
    conn.detach();
  }
}

function answer(reply: Record<string, unknown>, frame: MessageFrame): Record<string, unknown> {
  const { v: _, seq: __, type: ___, id: ____, bot: _____, ...rest } = reply;
  return { ...rest, conversation: frame.conversation, text: String(reply.text ?? ''), inReplyTo: frame.id };
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  const type = status >= 400 ? 'application/problem+json' : 'application/json';
  res.writeHead(status, { 'content-type': type, 'content-length': String(Buffer.byteLength(text)), ...headers }).end(text);
}
