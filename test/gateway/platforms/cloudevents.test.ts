import { describe, expect, it } from 'vitest';
import { handleCloudEventsWebhook } from '../../../gateway/platforms/cloudevents.ts';
import { WebhookError, type WebhookRequest } from '../../../gateway/platforms/types.ts';
import { overHttp, webhook } from '../../fakes/signing.ts';

const binary = { 'ce-specversion': '1.0', 'ce-id': 'A234-1234-1234', 'ce-source': '/mycontext', 'ce-type': 'com.example.someevent', 'content-type': 'application/json' };

function rejection(req: WebhookRequest, secrets: Record<string, string> = {}): WebhookError {
  try {
    handleCloudEventsWebhook(req, secrets, 0);
  } catch (e) {
    expect(e).toBeInstanceOf(WebhookError);
    return e as WebhookError;
  }
  throw new Error('expected the webhook to be rejected');
}

describe('CloudEvents ingress', () => {
  it('takes a binary-mode event as it is, routed to the bot in the path', () => {
    const { response, events } = handleCloudEventsWebhook(webhook({ headers: binary, body: '{"a":1}', bot: 'faq' }), {}, 0);
    expect(response).toEqual({ status: 202 });
    expect(events).toEqual([
      {
        raw: { specversion: '1.0', id: 'A234-1234-1234', source: '/mycontext', type: 'com.example.someevent', datacontenttype: 'application/json', data: { a: 1 }, chatbot: 'faq' },
        dedupeKey: '/mycontext A234-1234-1234',
      },
    ]);
  });

  it('reads ce- headers written in any case on the wire', async () => {
    const req = await overHttp({ headers: { 'CE-SpecVersion': '1.0', 'Ce-Id': '1', 'CE-SOURCE': '/s', 'ce-Type': 't', 'Content-Type': 'text/plain' }, body: 'hi' });
    expect(handleCloudEventsWebhook(req, {}, 0).events[0]!.raw).toMatchObject({ id: '1', source: '/s', type: 't', data: 'hi' });
  });

  it('splits a batch and overrides a chatbot the sender set', () => {
    const batch = JSON.stringify([
      { specversion: '1.0', id: '1', source: '/s', type: 't', chatbot: 'someone-else' },
      { specversion: '1.0', id: '2', source: '/s', type: 't' },
    ]);
    const { events } = handleCloudEventsWebhook(webhook({ headers: { 'content-type': 'application/cloudevents-batch+json' }, body: batch, bot: 'echo' }), {}, 0);
    expect(events.map((e) => [e.raw.id, e.raw.chatbot, e.dedupeKey])).toEqual([
      ['1', 'echo', '/s 1'],
      ['2', 'echo', '/s 2'],
    ]);
  });

  it('answers an invalid event with 400 and an unsupported format with 415', () => {
    expect(rejection(webhook({ headers: { ...binary, 'ce-id': '' }, body: '{}' }))).toMatchObject({ status: 400, code: 'empty_attribute' });
    expect(rejection(webhook({ headers: { 'content-type': 'application/cloudevents+xml' }, body: '<e/>' }))).toMatchObject({ status: 415 });
    expect(rejection(webhook({ headers: { 'content-type': 'application/json' }, body: '{}' }))).toMatchObject({ status: 415, code: 'not_cloudevent' });
  });

  it('asks for the bearer token when the channel has one', () => {
    const secrets = { bearerToken: 's3cret-token' };
    expect(rejection(webhook({ headers: binary, body: '{}' }), secrets)).toMatchObject({ status: 401, headers: { 'www-authenticate': 'Bearer realm="knbot"' } });
    expect(rejection(webhook({ headers: { ...binary, authorization: 'Bearer s3cret-tokem' }, body: '{}' }), secrets)).toMatchObject({ status: 401 });
    expect(rejection(webhook({ headers: { ...binary, authorization: 'Basic s3cret-token' }, body: '{}' }), secrets)).toMatchObject({ status: 401 });
    expect(handleCloudEventsWebhook(webhook({ headers: { ...binary, authorization: 'bearer s3cret-token' }, body: '{}' }), secrets, 0).events).toHaveLength(1);
  });

  it('checks the token before reading the event', () => {
    expect(rejection(webhook({ headers: { 'content-type': 'application/cloudevents+json' }, body: '{' }), { bearerToken: 't' })).toMatchObject({ status: 401 });
  });
});
