/**
 * The WebSocket envelope of DESIGN §7: JSON frames `{v: 1, type, ...}`, spoken by the gateway's
 * `/v1/ws` and by a bot pod's own (runtime/ws.ts). Client frames are checked here, without I/O, so
 * every malformed frame gets the same clear `error` frame wherever it arrives. It lives in runtime/
 * because both may import it; the gateway re-exports it (gateway/envelope.ts).
 */

export const ENVELOPE_VERSION = 1;

export type MessageFrame = { type: 'message'; id: string; bot: string; conversation: string; text: string; user?: { id: string; name?: string } };

export type ClientFrame =
  | MessageFrame
  | { type: 'resume'; sessionId: string; lastSeq: number }
  | { type: 'auth'; token: string }
  | { type: 'ping'; id?: string };

/** A frame to a bot pod's own `/v1/ws`: the pod serves one bot, so a message may leave `bot` out. */
export type DirectFrame = Exclude<ClientFrame, MessageFrame> | (Omit<MessageFrame, 'bot'> & { bot?: string });

/** Error codes sent in `error` frames; stable, for clients to branch on. */
export type ErrorCode =
  | 'malformed_json'
  | 'unsupported_version'
  | 'unknown_type'
  | 'invalid_frame'
  | 'binary_frame'
  | 'unauthorized'
  | 'rate_limited'
  | 'unknown_bot'
  | 'unknown_session'
  | 'resume_gap'
  | 'id_in_use'
  | 'turn_in_progress'
  | 'unavailable'
  | 'bot_error';

export class FrameError extends Error {
  readonly code: ErrorCode;
  readonly id: string | undefined;

  constructor(code: ErrorCode, message: string, id?: string) {
    super(message);
    this.name = 'FrameError';
    this.code = code;
    this.id = id;
  }
}

/** Limits on what a client may put in a frame. */
export const MAX_ID_LENGTH = 128;
export const MAX_NAME_LENGTH = 256;
const ID = /^[\x21-\x7e]+$/;
const BOT = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Parses one text frame to the gateway; throws FrameError naming what is wrong. */
export function parseClientFrame(text: string): ClientFrame {
  return parseFrame(text, true) as ClientFrame;
}

/** Parses one text frame to a bot pod's own `/v1/ws`, where `bot` is optional; throws FrameError. */
export function parseDirectFrame(text: string): DirectFrame {
  return parseFrame(text, false);
}

function parseFrame(text: string, botRequired: boolean): DirectFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new FrameError('malformed_json', `the frame is not JSON: ${(e as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new FrameError('invalid_frame', 'a frame is a JSON object {v: 1, type, ...}');
  const f = value as Record<string, unknown>;
  const id = typeof f.id === 'string' && f.id.length <= MAX_ID_LENGTH ? f.id : undefined;
  if (f.v !== ENVELOPE_VERSION) throw new FrameError('unsupported_version', `this server speaks envelope v: ${ENVELOPE_VERSION}; the frame has v: ${JSON.stringify(f.v) ?? 'none'}`, id);
  switch (f.type) {
    case 'message':
      return messageFrame(f, botRequired);
    case 'resume': {
      if (typeof f.sessionId !== 'string' || f.sessionId === '' || f.sessionId.length > MAX_ID_LENGTH) throw invalid('sessionId', 'must be a non-empty string');
      if (typeof f.lastSeq !== 'number' || !Number.isSafeInteger(f.lastSeq) || f.lastSeq < 0) throw invalid('lastSeq', 'must be an integer ≥ 0');
      return { type: 'resume', sessionId: f.sessionId, lastSeq: f.lastSeq };
    }
    case 'auth':
      if (typeof f.token !== 'string' || f.token === '' || f.token.length > 4096) throw invalid('token', 'must be a non-empty string');
      return { type: 'auth', token: f.token };
    case 'ping':
      return id === undefined ? { type: 'ping' } : { type: 'ping', id };
    default:
      throw new FrameError('unknown_type', `unknown frame type ${JSON.stringify(f.type) ?? '(none)'}: expected message, resume, auth or ping`, id);
  }
}

function messageFrame(f: Record<string, unknown>, botRequired: boolean): DirectFrame {
  if (typeof f.id !== 'string' || f.id.length > MAX_ID_LENGTH || !ID.test(f.id)) throw invalid('id', `must be 1–${MAX_ID_LENGTH} printable ASCII characters`);
  const id = f.id;
  if ((botRequired || f.bot !== undefined) && (typeof f.bot !== 'string' || !BOT.test(f.bot))) throw invalid('bot', 'must be a bot name (a DNS-1035 label)', id);
  if (typeof f.conversation !== 'string' || f.conversation === '' || f.conversation.length > MAX_NAME_LENGTH || f.conversation.startsWith('/')) {
    throw invalid('conversation', `must be a conversation key of 1–${MAX_NAME_LENGTH} characters, <conversation>[/<thread>]`, id);
  }
  if (typeof f.text !== 'string') throw invalid('text', 'must be a string', id);
  const frame: DirectFrame = { type: 'message', id, conversation: f.conversation, text: f.text };
  if (typeof f.bot === 'string') frame.bot = f.bot;
  if (f.user !== undefined) {
    const u = f.user as Record<string, unknown> | null;
    if (typeof f.user === 'string' && f.user !== '' && f.user.length <= MAX_NAME_LENGTH) frame.user = { id: f.user };
    else if (u && typeof u === 'object' && typeof u.id === 'string' && u.id !== '' && u.id.length <= MAX_NAME_LENGTH) {
      frame.user = typeof u.name === 'string' ? { id: u.id, name: u.name.slice(0, MAX_NAME_LENGTH) } : { id: u.id };
    } else throw invalid('user', 'must be a user id or {id, name?}', id);
  }
  return frame;
}

function invalid(field: string, message: string, id?: string): FrameError {
  return new FrameError('invalid_frame', `${field}: ${message}`, id);
}

/** The body of a server `error` frame, without `v` and `seq` (the gateway's store numbers it, gateway/store.ts). */
export function errorBody(code: ErrorCode, message: string, id?: string): string {
  return JSON.stringify(id === undefined ? { type: 'error', code, message } : { type: 'error', code, message, id });
}
