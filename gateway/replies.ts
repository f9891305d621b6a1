import express from 'express';
import { chatReplyEvent, conversationOfEvent } from '../eventing/chat.ts';
import { CloudEventError, decodeHttp, encodeBinaryText } from '../eventing/codec.ts';

/** The canned reply of an Event (`spec.reply`), by namespace and Event name. */
export type CannedReplies = (namespace: string, event: string) => { text: string } | undefined;

export const CANNED_SOURCE = '/knbot/gateway/replies';

/**
 * `POST /v1/replies/<namespace>/<event>` (DESIGN §5): the subscriber of the Triggers the model
 * compiles for Events with a canned `reply`. It answers the message with the reply event itself, so
 * the Broker routes it back to the conversation and no bot is woken.
 */
export function replyRoutes(replies: CannedReplies, maxBodyBytes: number): express.Router {
  const router = express.Router();
  router.post('/v1/replies/:namespace/:event', express.raw({ type: () => true, limit: maxBodyBytes }), (req, res) => {
    const reply = replies(String(req.params.namespace), String(req.params.event));
    if (!reply) return void res.status(404).type('application/problem+json').send(JSON.stringify({ type: 'urn:knbot:problem:unknown_event', status: 404, detail: `no Event ${req.params.namespace}/${req.params.event} with a reply here` }));
    let events;
    try {
      events = decodeHttp(req.headers, Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0)).events;
    } catch (err) {
      if (!(err instanceof CloudEventError)) throw err;
      return void res.status(err.status).type('application/problem+json').send(JSON.stringify({ type: `urn:knbot:problem:${err.code}`, status: err.status, detail: err.message }));
    }
    const message = events[0];
    if (!message) return void res.status(202).end();
    const answer = chatReplyEvent({ id: message.id, conversation: conversationOfEvent(message), event: message }, reply, CANNED_SOURCE);
    if (typeof message.traceparent === 'string') answer.traceparent = message.traceparent;
    const msg = encodeBinaryText(answer);
    const body = typeof msg.body === 'string' ? Buffer.from(msg.body, msg.encoding) : Buffer.from(msg.body);
    msg.headers.push('content-length', String(body.byteLength));
    res.writeHead(200, msg.headers).end(body);
  });
  return router;
}
