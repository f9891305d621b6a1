// Generic CloudEvents ingress, for sources that already speak CloudEvents: any event in binary,
// structured or batch mode, decoded by the eventing codec and stored as it is. There is no platform
// signature; a channel may require `Authorization: Bearer <bearerToken>`.
import type { IncomingHttpHeaders } from 'node:http';
import { CloudEventError, decodeHttp } from '../../eventing/codec.ts';
import { type IngressAdapter, type Secrets, WebhookError, type WebhookRequest, type WebhookResult } from './types.ts';
import { headerValue, requirePost, secretEquals } from './verify.ts';

export function handleCloudEventsWebhook(req: WebhookRequest, secrets: Secrets, _nowMs: number): WebhookResult {
  requirePost(req.method);
  const expected = secrets.bearerToken;
  if (expected) {
    const m = /^Bearer +(\S+) *$/i.exec(headerValue(req.headers, 'authorization') ?? '');
    if (!m || !secretEquals(m[1]!, expected)) {
      throw new WebhookError(401, 'bad_token', 'a bearer token is required', { 'www-authenticate': 'Bearer realm="knbot"' });
    }
  }
  let events;
  try {
    events = decodeHttp(lowerCased(req.headers), req.rawBody).events;
  } catch (e) {
    if (e instanceof CloudEventError) throw new WebhookError(e.status, e.code, e.message);
    throw e;
  }
  return {
    // Accepted, as the broker answers: stored, not yet delivered.
    response: { status: 202 },
    events: events.map((event) => ({
      // The path names the bot, and the token (if any) is that bot's: the sender cannot route elsewhere.
      raw: { ...event, chatbot: req.bot },
      dedupeKey: `${event.source} ${event.id}`,
    })),
  };
}

/** The codec reads `ce-` headers by their lower-case names, as Node gives them. */
function lowerCased(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  return out;
}

export const cloudevents: IngressAdapter = {
  platform: 'cloudevents',
  handleWebhook: handleCloudEventsWebhook,
};
