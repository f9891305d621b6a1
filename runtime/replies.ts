import type { Span } from '@opentelemetry/api';
import { type CloudEvent, validateCloudEvent } from '../eventing/codec.ts';
import type { ChatMessage, EmitEvent, Reply } from './bot.ts';
import { replyEvent } from './chat.ts';
import { completeEvent } from './sink.ts';
import { formatTraceparent } from './tracing.ts';
import { TurnSkipped } from './turn-policy.ts';

// The events a pod answers with: a chat message's reply, and whatever `onEvent` returned.

const INVALID_TRACE = '00000000000000000000000000000000';

/**
 * The reply event to a chat message. One that `reject` turned away is answered 200 with a reply
 * carrying `error: 'turn_in_progress'`, not 409: Knative's delivery retries 409 (as 404, 408, 429 and
 * 5xx; so does eventing/broker/delivery.ts), which would make `reject` a slow `queue`. Through the
 * gateway's egress the client sees an error for its message. A message merged by `debounce` or
 * interrupted gets an empty reply saying so (`skipped`, `supersededBy`): a client waiting on its id
 * learns it is settled, and platform egress sends nothing for an empty text.
 */
export function messageReply(msg: ChatMessage, r: Reply | undefined | TurnSkipped, span: Span, source: string): CloudEvent | undefined {
  let reply: CloudEvent | undefined;
  if (r instanceof TurnSkipped) {
    reply =
      r.reason === 'turn_in_progress'
        ? replyEvent(msg, { text: '', error: 'turn_in_progress' }, source)
        : replyEvent(msg, { text: '', skipped: r.reason, ...(r.by === undefined ? {} : { supersededBy: r.by }) }, source);
  } else reply = r && replyEvent(msg, r, source);
  // The reply's trace goes on from the turn that wrote it.
  const sc = span.spanContext();
  if (reply && span.isRecording() && sc.traceId !== INVALID_TRACE) reply.traceparent = formatTraceparent(sc);
  return reply;
}

/** What `onEvent` returned: an event (completed and checked), data for a reply event, or nothing. */
export function eventReply(out: unknown, event: CloudEvent, source: string): CloudEvent | undefined {
  if (out === undefined || out === null) return undefined;
  const o = out as Record<string, unknown>;
  if (typeof out === 'object' && !(out instanceof Uint8Array) && typeof o.type === 'string' && typeof o.specversion === 'string') {
    const reply = completeEvent(o as EmitEvent, { overrides: {}, source });
    const errors = validateCloudEvent(reply);
    if (errors.length) throw new Error(`onEvent returned an invalid CloudEvent: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`);
    return reply;
  }
  const reply = completeEvent(
    {
      type: 'dev.knbot.event.reply',
      data: out,
      ...(out instanceof Uint8Array ? { datacontenttype: 'application/octet-stream' } : {}),
      ...(event.subject === undefined ? {} : { subject: event.subject }),
    },
    { overrides: {}, source },
  );
  if (typeof event.chatbot === 'string') reply.chatbot = event.chatbot;
  return reply;
}
