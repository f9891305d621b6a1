import type { ServerResponse } from 'node:http';
import { type CloudEvent, encodeBinaryText } from '../eventing/codec.ts';
import type { ChatMessage, Reply } from './bot.ts';
import { TurnSkipped } from './turn-policy.ts';

// How the pod writes its answers: health, a reply event, chat JSON and server-sent events.

export const NO_CONTENT = { 'content-length': '0' };

export function health(res: ServerResponse, ok: boolean, why: string): void {
  const body = ok ? 'ok' : why;
  res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain', 'content-length': String(body.length), 'cache-control': 'no-store' }).end(body);
}

export function answerOne(res: ServerResponse, reply: CloudEvent | undefined): void {
  if (res.headersSent) return;
  if (!reply) return void res.writeHead(202, NO_CONTENT).end();
  // Text goes to end() as a string: Node then writes headers and body in one write.
  const msg = encodeBinaryText(reply);
  const length = typeof msg.body === 'string' ? Buffer.byteLength(msg.body, msg.encoding) : msg.body.byteLength;
  msg.headers.push('content-length', String(length));
  res.writeHead(200, msg.headers).end(msg.body, msg.encoding);
}

/** A message that got no turn of its own says why, and which message took its place. */
export function chatAnswer(key: string, msg: ChatMessage, reply: Reply | TurnSkipped | undefined): Record<string, unknown> {
  if (reply instanceof TurnSkipped) return { conversation: key, text: '', inReplyTo: msg.id, skipped: reply.reason, ...(reply.by === undefined ? {} : { supersededBy: reply.by }) };
  return { ...reply, conversation: key, text: reply?.text ?? '', inReplyTo: msg.id };
}

/** Writes one server-sent event, waiting when the client reads slower than the bot writes. */
export function sse(res: ServerResponse, event: string, data: unknown): Promise<void> | void {
  if (res.destroyed) return;
  if (res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)) return;
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

export function isCloudEventsMediaType(contentType: string | undefined): boolean {
  return contentType !== undefined && /^\s*application\/cloudevents/i.test(contentType);
}
