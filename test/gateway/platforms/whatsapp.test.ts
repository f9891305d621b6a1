import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatReplyEvent } from '../../../eventing/chat.ts';
import { type CloudEvent, validateCloudEvent } from '../../../eventing/codec.ts';
import { WebhookError, type WebhookRequest } from '../../../gateway/platforms/types.ts';
import { webhookRoutes } from '../../../gateway/hooks.ts';
import { wireId } from '../../../gateway/platforms/buttons.ts';
import { replyOutcomeEvent } from '../../../gateway/platforms/egress.ts';
import { WHATSAPP_API_VERSION, deliverWhatsAppReply, handleWhatsAppWebhook, whatsappVerdict } from '../../../gateway/platforms/whatsapp.ts';
import { MemoryGatewayStore } from '../../../gateway/store.ts';
import { type FakeWhatsApp, startFakeWhatsApp } from '../../fakes/platforms.ts';
import { overHttp, signHub, webhook } from '../../fakes/signing.ts';
import { chatEgress, egressContext } from './context.ts';

const secrets = { appSecret: "It's a Secret to Everybody", verifyToken: 'meatyhamhock', accessToken: 'EAAJB-access-token', phoneNumberId: '106540352242922' };
const NOW = 1_750_000_000_000;

function signed(body: unknown): WebhookRequest {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return webhook({ body: text, headers: { 'content-type': 'application/json', 'x-hub-signature-256': signHub(secrets.appSecret, text) } });
}

function rejection(req: WebhookRequest): WebhookError {
  try {
    handleWhatsAppWebhook(req, secrets, NOW);
  } catch (e) {
    expect(e).toBeInstanceOf(WebhookError);
    return e as WebhookError;
  }
  throw new Error('expected the webhook to be rejected');
}

const GITHUB_VECTOR = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';

// The messages webhook as Meta documents it (Cloud API reference, "messages" webhook), with two
// messages from two people and a status in one delivery.
const value = {
  messaging_product: 'whatsapp',
  metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' },
  contacts: [
    { profile: { name: 'Sheena Nelson' }, wa_id: '16505551234' },
    { profile: { name: 'Raj' }, wa_id: '447700900123' },
  ],
  messages: [
    { from: '16505551234', id: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=', timestamp: '1749416383', type: 'text', text: { body: 'Does it come in another color? 😀' } },
    { from: '447700900123', id: 'wamid.HBgMNDQ3NzAwOTAwMTIzFQIAEhgWM0VCMEI2QkI5QjU2NkE0RDg3QjU5RQA=', timestamp: '1749416390', type: 'interactive', interactive: { type: 'button_reply', button_reply: { id: 'color_blue', title: 'Blue' } } },
  ],
};
const delivery = {
  object: 'whatsapp_business_account',
  entry: [
    { id: '102290129340398', changes: [{ field: 'messages', value }] },
    {
      id: '102290129340398',
      changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: value.metadata, statuses: [{ id: 'wamid.OUT1', status: 'read', timestamp: '1749416400', recipient_id: '16505551234' }] } }],
    },
  ],
};

describe('WhatsApp verification handshake', () => {
  it('echoes hub.challenge for the right verify token', () => {
    const req = webhook({ method: 'GET', query: 'hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=meatyhamhock' });
    expect(handleWhatsAppWebhook(req, secrets, NOW)).toEqual({ response: { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: '1158201444' }, events: [] });
  });

  it.each([
    ['a wrong verify token', 'hub.mode=subscribe&hub.challenge=1&hub.verify_token=meatyhamhocks', 403],
    ['a missing challenge', 'hub.mode=subscribe&hub.verify_token=meatyhamhock', 400],
    ['another mode', 'hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=meatyhamhock', 400],
    ['no parameters', '', 400],
  ])('refuses %s', (_, query, status) => {
    expect(rejection(webhook({ method: 'GET', query }))).toMatchObject({ status });
  });
});

describe('WhatsApp signature', () => {
  it("accepts GitHub's published X-Hub-Signature-256 vector", () => {
    const req = webhook({ body: 'Hello, World!', headers: { 'x-hub-signature-256': GITHUB_VECTOR } });
    // The signature holds; the body is then not a WhatsApp payload.
    expect(rejection(req)).toMatchObject({ status: 400 });
  });

  it.each([
    ['a sha1= prefix', GITHUB_VECTOR.replace('sha256=', 'sha1=')],
    ['no prefix', GITHUB_VECTOR.slice(7)],
    ['a truncated signature', GITHUB_VECTOR.slice(0, -1)],
    ['another digest', GITHUB_VECTOR.replace('757107', '757108')],
  ])('rejects %s with 401', (_, signature) => {
    expect(rejection(webhook({ body: 'Hello, World!', headers: { 'x-hub-signature-256': signature } }))).toMatchObject({ status: 401 });
  });

  it('rejects a tampered byte and a body re-serialized with the emoji unescaped', () => {
    const sent = JSON.stringify(delivery).replace('😀', '\\ud83d\\ude00'); // Meta sends escaped Unicode
    const signature = signHub(secrets.appSecret, sent);
    expect(handleWhatsAppWebhook(webhook({ body: sent, headers: { 'x-hub-signature-256': signature } }), secrets, NOW).events).toHaveLength(3);
    expect(rejection(webhook({ body: JSON.stringify(JSON.parse(sent)), headers: { 'x-hub-signature-256': signature } }))).toMatchObject({ status: 401 });
    expect(rejection(webhook({ body: sent.replace('another', 'anothe_'), headers: { 'x-hub-signature-256': signature } }))).toMatchObject({ status: 401 });
  });

  it('reads the header whatever its case on the wire', async () => {
    const body = JSON.stringify(delivery);
    const req = await overHttp({ body, headers: { 'Content-Type': 'application/json', 'X-Hub-Signature-256': signHub(secrets.appSecret, body) } });
    expect(handleWhatsAppWebhook(req, secrets, NOW).events).toHaveLength(3);
  });
});

describe('WhatsApp normalization', () => {
  it('splits entry[].changes[].value.messages[] and statuses[] into one event each', () => {
    const { response, events } = handleWhatsAppWebhook(signed(delivery), secrets, NOW);
    expect(response).toEqual({ status: 200 });
    const [text, button, status] = events;
    expect(text!.normalized).toEqual({
      specversion: '1.0',
      id: value.messages[0]!.id,
      source: '/whatsapp/102290129340398/106540352242922',
      type: 'dev.knbot.chat.message.received',
      datacontenttype: 'application/json',
      subject: '16505551234',
      time: '2025-06-08T20:59:43.000Z',
      chatbot: 'echo',
      chatplatform: 'whatsapp',
      chattenant: '102290129340398',
      chatuser: '16505551234',
      partitionkey: '16505551234',
      data: { text: 'Does it come in another color? 😀', user: { id: '16505551234', name: 'Sheena Nelson' }, conversation: { id: '16505551234' } },
    });
    // The raw event keeps Meta's envelope around its own message and contact only.
    expect(text!.raw).toMatchObject({ type: 'dev.knbot.whatsapp.message.text', id: `${value.messages[0]!.id}:raw` });
    expect((text!.raw.data as any).entry[0].changes[0].value).toEqual({ messaging_product: 'whatsapp', metadata: value.metadata, contacts: [value.contacts[0]], messages: [value.messages[0]] });
    expect(button!.normalized).toMatchObject({ type: 'dev.knbot.chat.action.invoked', subject: '447700900123', data: { text: 'Blue', user: { name: 'Raj' }, action: { type: 'button_reply', id: 'color_blue', value: 'Blue' } } });
    expect(status!.raw).toMatchObject({ type: 'dev.knbot.whatsapp.status.read', id: 'wamid.OUT1:read:raw', subject: '16505551234' });
    expect(status!.normalized).toBeUndefined();
    expect(status!.dedupeKey).toBe('/whatsapp/102290129340398/106540352242922 wamid.OUT1:read');
    for (const e of events) {
      expect(e.replyHandle).toBeUndefined();
      expect(validateCloudEvent(e.raw)).toEqual([]);
    }
  });

  it('turns an image into a message with its caption and an attachment', () => {
    const image = { from: '16505551234', id: 'wamid.IMG', timestamp: '1749416383', type: 'image', image: { caption: 'this one', mime_type: 'image/jpeg', sha256: 'abc', id: '1003383421387256' } };
    const [e] = handleWhatsAppWebhook(signed({ ...delivery, entry: [{ id: '1', changes: [{ field: 'messages', value: { ...value, messages: [image] } }] }] }), secrets, NOW).events;
    expect(e!.normalized?.data).toMatchObject({ text: 'this one', attachments: [{ type: 'image', id: '1003383421387256', mimeType: 'image/jpeg' }] });
  });

  it('keeps changes without messages as raw events with a stable id', () => {
    const template = { object: 'whatsapp_business_account', entry: [{ id: '1', changes: [{ field: 'message_template_status_update', value: { event: 'APPROVED', message_template_id: 594425479261596 } }] }] };
    const first = handleWhatsAppWebhook(signed(template), secrets, NOW).events;
    const again = handleWhatsAppWebhook(signed(template), secrets, NOW + 60_000).events;
    expect(first[0]!.raw.type).toBe('dev.knbot.whatsapp.change.message_template_status_update');
    expect(again[0]!.dedupeKey).toBe(first[0]!.dedupeKey);
  });
});

describe('WhatsApp egress', () => {
  let fake: FakeWhatsApp;
  beforeAll(async () => {
    fake = await startFakeWhatsApp(secrets.accessToken, secrets.phoneNumberId);
  });
  afterAll(() => fake.close());

  const reply = (to = '16505551234') => chatReplyEvent({ id: 'wamid.IN', conversation: { id: to } }, { text: 'Yes, in blue.' }, '/bots/default/echo');

  it('sends a text message to the phone number, with a Bearer token', async () => {
    fake.requests.length = 0;
    const out = await deliverWhatsAppReply(reply(), undefined, secrets, egressContext(fake.url));
    expect(out).toEqual({ ok: true, platformMessageId: expect.stringMatching(/^wamid\./), sentMessageIds: [expect.stringMatching(/^wamid\./)] });
    expect(fake.requests[0]).toMatchObject({
      path: `/${WHATSAPP_API_VERSION}/106540352242922/messages`,
      body: { messaging_product: 'whatsapp', recipient_type: 'individual', to: '16505551234', type: 'text', text: { preview_url: false, body: 'Yes, in blue.' } },
    });
    expect(fake.requests[0]!.headers.authorization).toBe(`Bearer ${secrets.accessToken}`);
  });

  it('retries a 500 and then succeeds', async () => {
    fake.requests.length = 0;
    fake.fail({ status: 500, times: 1 });
    expect((await deliverWhatsAppReply(reply(), undefined, secrets, egressContext(fake.url))).ok).toBe(true);
    expect(fake.requests).toHaveLength(2);
  });

  it('honours Retry-After given as an HTTP date', async () => {
    fake.requests.length = 0;
    fake.fail({ status: 429, times: 1, retryAfter: 2, asDate: true });
    const ctx = egressContext(fake.url);
    expect((await deliverWhatsAppReply(reply(), undefined, secrets, ctx)).ok).toBe(true);
    // An HTTP date has one-second precision (the fake truncates, as servers do): the wait is between
    // one and two seconds, less the few ms the answer took to arrive.
    expect(ctx.retries[0]!.delayMs).toBeGreaterThan(900);
    expect(ctx.retries[0]!.delayMs).toBeLessThanOrEqual(2000);
    expect(fake.requests[1]!.at - fake.requests[0]!.at).toBeGreaterThanOrEqual(ctx.retries[0]!.delayMs - 10);
  });

  it('gives up at once on a 4xx, and after the attempts on 500s', async () => {
    fake.requests.length = 0;
    expect(await deliverWhatsAppReply(reply(), undefined, { ...secrets, accessToken: 'expired' }, egressContext(fake.url))).toEqual({
      ok: false,
      status: 401,
      reason: 'Invalid OAuth access token - Cannot parse access token',
      retryable: false,
      platformErrorCode: 190,
    });
    expect(fake.requests).toHaveLength(1);

    fake.requests.length = 0;
    fake.fail({ status: 500, times: 3 });
    const out = await deliverWhatsAppReply(reply(), undefined, secrets, egressContext(fake.url, { retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 10 } }));
    expect(out).toEqual({ ok: false, status: 500, reason: 'Service temporarily unavailable', retryable: true, platformErrorCode: 2 });
    expect(fake.requests).toHaveLength(3);
  });
});

describe("WhatsApp's 24-hour customer-service window", () => {
  let fake: FakeWhatsApp;
  const LAPSED = '447700900999';
  beforeAll(async () => {
    fake = await startFakeWhatsApp(secrets.accessToken, secrets.phoneNumberId);
    fake.outsideWindow(LAPSED);
  });
  afterAll(() => fake.close());

  const reply = (to: string) => chatReplyEvent({ id: 'wamid.IN', conversation: { id: to } }, { text: 'Your order shipped.' }, '/bots/default/echo');

  it('fails for good on 131047, at once, naming the window and the platform code', async () => {
    fake.requests.length = 0;
    const ctx = egressContext(fake.url);
    const out = await deliverWhatsAppReply(reply(LAPSED), undefined, secrets, ctx);
    expect(out).toEqual({ ok: false, status: 400, reason: 'outside_customer_service_window', retryable: false, platformErrorCode: 131047 });
    expect(fake.requests).toHaveLength(1);
    expect(ctx.retries).toEqual([]);
    const event = replyOutcomeEvent(reply(LAPSED), out, '/knbot/gateway', 0);
    expect(event).toMatchObject({ type: 'dev.knbot.chat.reply.failed', data: { reason: 'outside_customer_service_window', platformErrorCode: 131047, retryable: false, status: 400 } });
    expect(validateCloudEvent(event)).toEqual([]);
  });

  it.each([
    ['131047 whatever the HTTP status', 500, 131047, { fail: 'outside_customer_service_window' }],
    ['a throughput limit answered with 400', 400, 130429, 'retry'],
    ['a pair rate limit answered with 400', 400, 131056, 'retry'],
    ['any other Graph 400', 400, 100, { fail: 'Invalid parameter' }],
  ])('judges %s', (_, status, code, verdict) => {
    expect(whatsappVerdict(status, { error: { message: 'Invalid parameter', type: 'OAuthException', code } })).toEqual(verdict);
  });

  it('reaches the broker as reply.failed, and the reply is not retried', async () => {
    fake.requests.length = 0;
    const sent: { type: string; data?: unknown }[] = [];
    const logs: string[] = [];
    const log = (msg: string) => void logs.push(msg);
    const egress = chatEgress({ platform: 'whatsapp', apiUrl: fake.url, bot: 'echo', secrets, store: new MemoryGatewayStore(), send: async (e) => void sent.push(e), log });
    const event = { ...reply(LAPSED), chatbot: 'echo', chatplatform: 'whatsapp' };
    // Resolves (the broker's delivery succeeds): retrying cannot reopen the window.
    expect(await egress(event)).toBe('delivered');
    expect(sent).toEqual([expect.objectContaining({ type: 'dev.knbot.chat.reply.failed', data: expect.objectContaining({ reason: 'outside_customer_service_window', platformErrorCode: 131047 }) })]);
    expect(fake.requests).toHaveLength(1);
    expect(logs).toContain('reply failed');
  });
});

describe('a message WhatsApp took, then reported failed', () => {
  let fake: FakeWhatsApp;
  let server: Server;
  let url: string;
  const store = new MemoryGatewayStore();
  const sent: CloudEvent[] = [];
  const logs: [string, Record<string, unknown> | undefined][] = [];
  const log = (msg: string, fields?: Record<string, unknown>) => void logs.push([msg, fields]);
  const channels = (bot: string, platform: string) => (bot === 'echo' && platform === 'whatsapp' ? secrets : undefined);
  beforeAll(async () => {
    fake = await startFakeWhatsApp(secrets.accessToken, secrets.phoneNumberId);
    const app = express();
    app.use(webhookRoutes({ store, send: async (e) => void sent.push(e), channels, namespace: 'default', maxBodyBytes: 1 << 20, dedupeTtlMs: 60_000, log }));
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/whatsapp/echo`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await fake.close();
    await store.close();
  });

  /** Meta's status webhook for one of our messages: `failed`, with the error it names. */
  const failedStatus = (wamid: string, error: Record<string, unknown>) => ({
    object: 'whatsapp_business_account',
    entry: [{ id: '102290129340398', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: value.metadata, statuses: [{ id: wamid, status: 'failed', timestamp: '1749416500', recipient_id: '16505551234', errors: [error] }] } }] }],
  });
  const postSigned = (body: unknown) => {
    const text = JSON.stringify(body);
    return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-hub-signature-256': signHub(secrets.appSecret, text) }, body: text });
  };

  it('turns into reply.failed for the reply, late, after its reply.delivered; once per reply; never for messages it did not send', async () => {
    const egress = chatEgress({ platform: 'whatsapp', apiUrl: fake.url, bot: 'echo', secrets, store, send: async (e) => void sent.push(e), log });
    // Long enough for two messages: both are remembered, and a failure of either fails the reply.
    const text = `${'a'.repeat(4000)} ${'b'.repeat(200)}`;
    const reply = { ...chatReplyEvent({ id: 'wamid.IN', conversation: { id: '16505551234' } }, { text }, '/bots/default/echo'), chatbot: 'echo', chatplatform: 'whatsapp' };
    expect(await egress(reply)).toBe('delivered');
    const delivered = sent.find((e) => e.type === 'dev.knbot.chat.reply.delivered')!;
    expect(fake.requests.filter((r) => r.path.endsWith('/messages'))).toHaveLength(2);
    // The fake numbers the messages it takes: the reply's second message is the one after its first.
    const first = String((delivered.data as { platformMessageId: string }).platformMessageId);
    const second = `wamid.FAKE${String(Number(first.slice('wamid.FAKE'.length)) + 1).padStart(8, '0')}`;

    sent.length = 0;
    expect((await postSigned(failedStatus(second, { code: 131047, title: 'Re-engagement message', message: 'Re-engagement message' }))).status).toBe(200);
    expect(sent.map((e) => e.type)).toEqual(['dev.knbot.whatsapp.status.failed', 'dev.knbot.chat.reply.failed']);
    const failed = sent[1]!;
    expect(failed).toMatchObject({ id: `${reply.id}:failed`, source: '/knbot/gateway', subject: reply.subject, chatbot: 'echo', chatplatform: 'whatsapp' });
    expect(failed.data).toEqual({ replyId: reply.id, replySource: reply.source, inReplyTo: 'wamid.IN', reason: 'outside_customer_service_window', retryable: false, platformErrorCode: 131047, platformMessageId: second, late: true });
    expect(validateCloudEvent(failed)).toEqual([]);
    expect(JSON.stringify(failed)).not.toContain('aaaa');

    // The first message failing too names the same reply: the same outcome id, which the broker keeps once.
    sent.length = 0;
    await postSigned(failedStatus(first, { code: 131026, title: 'Message undeliverable' }));
    expect(sent.find((e) => e.type === 'dev.knbot.chat.reply.failed')).toMatchObject({ id: `${reply.id}:failed`, data: { reason: 'Message undeliverable', platformErrorCode: 131026 } });

    // A status for a message this gateway never sent is a raw event only.
    sent.length = 0;
    await postSigned(failedStatus('wamid.SOMEONE-ELSES', { code: 131047, title: 'Re-engagement message' }));
    expect(sent.map((e) => e.type)).toEqual(['dev.knbot.whatsapp.status.failed']);
  });
});

describe('WhatsApp reply buttons', () => {
  let fake: FakeWhatsApp;
  beforeAll(async () => {
    fake = await startFakeWhatsApp(secrets.accessToken, secrets.phoneNumberId);
  });
  afterAll(() => fake.close());

  const withButtons = (buttons: unknown, text = 'Which size?') => chatReplyEvent({ id: 'wamid.IN', conversation: { id: '16505551234' } }, { text, buttons }, '/bots/default/shop');
  const send = async (event: ReturnType<typeof withButtons>) => {
    fake.requests.length = 0;
    const out = await deliverWhatsAppReply(event, undefined, secrets, egressContext(fake.url));
    expect(out).toMatchObject({ ok: true, platformMessageId: expect.stringMatching(/^wamid\./) });
    // Every message the reply went out as, the first one first.
    expect(out.ok && [out.sentMessageIds?.length, out.sentMessageIds?.[0]]).toEqual([fake.requests.length, out.ok && out.platformMessageId]);
    return fake.requests.map((r) => r.body);
  };
  const envelope = { messaging_product: 'whatsapp', recipient_type: 'individual', to: '16505551234' };

  it('sends up to three as reply buttons: id the button id, title the label', async () => {
    expect(await send(withButtons(['Small', { label: 'Large', id: 'size_l', value: 'L' }]))).toEqual([
      {
        ...envelope,
        type: 'interactive',
        interactive: {
          type: 'button',
          body: { text: 'Which size?' },
          action: {
            buttons: [
              { type: 'reply', reply: { id: 'Small', title: 'Small' } },
              { type: 'reply', reply: { id: 'size_l', title: 'Large' } },
            ],
          },
        },
      },
    ]);
  });

  it('cuts titles to 20 characters', async () => {
    const [body] = await send(withButtons(['Deliver to my home address', 'Pick it up']));
    expect(body.interactive.action.buttons.map((b: { reply: { title: string } }) => b.reply.title)).toEqual(['Deliver to my home…', 'Pick it up']);
  });

  it('sends four to ten as a list of one section, the whole label in the description when the title is cut', async () => {
    const labels = ['XS', 'S', 'M', 'L', 'A size that needs a longer name than that'];
    const [body] = await send(withButtons([...labels.slice(0, 4), { label: labels[4]!, id: 'x'.repeat(201) }]));
    expect(body).toEqual({
      ...envelope,
      type: 'interactive',
      interactive: {
        type: 'list',
        body: { text: 'Which size?' },
        action: {
          button: 'Choose',
          sections: [
            {
              rows: [
                { id: 'XS', title: 'XS' },
                { id: 'S', title: 'S' },
                { id: 'M', title: 'M' },
                { id: 'L', title: 'L' },
                { id: wireId('whatsapp', 'x'.repeat(201)), title: 'A size that needs a lon…', description: labels[4] },
              ],
            },
          ],
        },
      },
    });
  });

  it('uses a list for three buttons whose cut titles would be alike', async () => {
    const [body] = await send(withButtons(['Deliver to my home address', 'Deliver to my home office', 'Pick up']));
    expect(body.interactive.type).toBe('list');
  });

  it('lists more than ten by number under the text, as plain text', async () => {
    const labels = Array.from({ length: 11 }, (_, i) => `Size ${i + 1}`);
    expect(await send(withButtons(labels))).toEqual([{ ...envelope, type: 'text', text: { preview_url: false, body: `Which size?\n\n${labels.map((l, i) => `${i + 1}. ${l}`).join('\n')}` } }]);
  });

  it('sends text past what a button message holds first, as text, and the last 1,024 characters with the buttons', async () => {
    const text = `${'a'.repeat(1500)}\n${'b'.repeat(1000)}`;
    const bodies = await send(withButtons(['OK'], text));
    expect(bodies.map((b) => [b.type, b.text?.body ?? b.interactive.body.text])).toEqual([
      ['text', 'a'.repeat(1500)],
      ['interactive', 'b'.repeat(1000)],
    ]);
  });

  it('sends the text alone when the buttons are malformed', async () => {
    expect(await send(withButtons({ label: 'OK' }))).toEqual([{ ...envelope, type: 'text', text: { preview_url: false, body: 'Which size?' } }]);
  });

  const interactive = (interactive: unknown) =>
    fetch(`${fake.url}/${WHATSAPP_API_VERSION}/${secrets.phoneNumberId}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secrets.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ...envelope, type: 'interactive', interactive }),
    });
  const reply = (id: string, title: string) => ({ type: 'reply', reply: { id, title } });
  it.each([
    ['four reply buttons', { type: 'button', body: { text: 'x' }, action: { buttons: ['a', 'b', 'c', 'd'].map((t) => reply(t, t)) } }],
    ['a title over 20 characters', { type: 'button', body: { text: 'x' }, action: { buttons: [reply('a', 'x'.repeat(21))] } }],
    ['two alike titles', { type: 'button', body: { text: 'x' }, action: { buttons: [reply('a', 'Same'), reply('b', 'Same')] } }],
    ['a body over 1,024 characters', { type: 'button', body: { text: 'x'.repeat(1025) }, action: { buttons: [reply('a', 'a')] } }],
    ['eleven list rows', { type: 'list', body: { text: 'x' }, action: { button: 'Choose', sections: [{ rows: Array.from({ length: 11 }, (_, i) => ({ id: `${i}`, title: `${i}` })) }] } }],
    ['a row title over 24 characters', { type: 'list', body: { text: 'x' }, action: { button: 'Choose', sections: [{ rows: [{ id: 'a', title: 'x'.repeat(25) }] }] } }],
  ])('has a fake that refuses %s with 131009, as the Cloud API does', async (_, body) => {
    const res = await interactive(body);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 131009, message: '(#131009) Parameter value is not valid' } });
  });
});
