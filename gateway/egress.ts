import type { IncomingMessage, ServerResponse } from 'node:http';
import { REPLY_CHUNK, REPLY_SEND, TYPING_START } from '../eventing/chat.ts';
import { type CloudEvent, CloudEventError, decodeHttp } from '../eventing/codec.ts';
import { Tracing, failSpan } from '../runtime/tracing.ts';
import type { EgressResult, EgressRoute } from './metrics.ts';
import { isChatPlatform } from './platforms/registry.ts';
import type { ChatSessions } from './sessions.ts';

/** The event types the gateway's egress Trigger subscribes to. */
export const EGRESS_TYPES = [REPLY_SEND, REPLY_CHUNK, TYPING_START] as const;

/** Delivers one bot output event to a chat platform (issue-specific adapters plug in here). */
export type PlatformEgress = (event: CloudEvent) => Promise<'delivered' | 'ignored'>;

/**
 * Bot output that no retry can deliver as it is (a malformed event): answered 400, so the broker
 * dead-letters it rather than retrying. `code` goes into the problem answer.
 */
export class EgressRejection extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'EgressRejection';
    this.code = code;
  }
}

const KIND: Record<string, 'reply' | 'chunk' | 'typing'> = { [REPLY_SEND]: 'reply', [REPLY_CHUNK]: 'chunk', [TYPING_START]: 'typing' };

function egressRoute(event: CloudEvent): EgressRoute {
  const p = String(event.chatplatform ?? '');
  return p === 'ws' || isChatPlatform(p) ? p : 'other';
}

/**
 * The gateway's subscriber endpoint: what bots answer comes here from the broker (a Trigger on the
 * egress types). WebSocket and SSE conversations (`chatplatform: ws`) go to their session; others to
 * the platform adapters. A 2xx tells the broker the event is handled; 5xx makes it retry. `delivered`
 * is told what became of each event (metrics).
 */
export function egressHandler(
  sessions: ChatSessions,
  platforms: PlatformEgress | undefined,
  log: (msg: string, fields?: Record<string, unknown>) => void,
  delivered: (route: EgressRoute, result: EgressResult) => void = () => {},
) {
  const tracing = new Tracing({ 'knbot.component': 'gateway' });
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method !== 'POST') return void res.writeHead(405, { allow: 'POST', 'content-length': '0' }).end();
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 4 << 20) chunks.push(c);
    });
    const problem = (status: number, code: string, detail: string) => {
      const body = JSON.stringify({ type: `urn:knbot:problem:${code}`, status, detail });
      res.writeHead(status, { 'content-type': 'application/problem+json', 'content-length': String(Buffer.byteLength(body)) }).end(body);
    };
    req.on('end', () => {
      let events: CloudEvent[];
      try {
        if (size > 4 << 20) return problem(413, 'body_too_large', 'the body exceeds 4 MiB');
        events = decodeHttp(req.headers, Buffer.concat(chunks)).events;
      } catch (err) {
        if (!(err instanceof CloudEventError)) throw err;
        return problem(err.status, err.code, err.message);
      }
      void Promise.allSettled(events.map((e) => route(e))).then((results) => {
        const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Error] : []));
        if (errors.length === 0) return void res.writeHead(202, { 'content-length': '0' }).end();
        // Anything that may pass makes the broker retry; only when every failure is final is it a 400.
        const passing = errors.find((e) => !(e instanceof EgressRejection));
        if (passing) {
          log('egress failed', { error: passing.message });
          return void res.writeHead(503, { 'content-length': '0', 'retry-after': '1' }).end();
        }
        const rejection = errors[0] as EgressRejection;
        log('egress rejected', { code: rejection.code, error: rejection.message });
        problem(400, rejection.code, rejection.message);
      });
    });
  };

  async function route(event: CloudEvent): Promise<void> {
    const kind = KIND[event.type];
    if (!kind) return delivered(egressRoute(event), 'ignored');
    // The turn's trace ends here: the reply (or chunk) reaching its client or platform.
    const span = tracing.start(`egress ${kind}`, event.traceparent);
    span.setAttribute('knbot.bot', String(event.chatbot ?? ''));
    span.setAttribute('knbot.platform', String(event.chatplatform ?? ''));
    try {
      delivered(egressRoute(event), await deliver(kind, event));
      span.end();
    } catch (err) {
      delivered(egressRoute(event), err instanceof EgressRejection ? 'rejected' : 'failed');
      failSpan(span, err);
      throw err;
    }
  }

  async function deliver(kind: 'reply' | 'chunk' | 'typing', event: CloudEvent): Promise<EgressResult> {
    if (event.chatplatform === 'ws') {
      const appended = await sessions.egress(kind, event);
      if (!appended && kind === 'reply') log('reply for no session', { id: event.id, bot: event.chatbot });
      return appended ? 'delivered' : 'no_session';
    }
    return platforms ? await platforms(event) : 'ignored';
  }
}
