import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatReplyEvent } from '../../../eventing/chat.ts';
import { validateCloudEvent } from '../../../eventing/codec.ts';
import { wireId } from '../../../gateway/platforms/buttons.ts';
import { deliverLineReply, handleLineWebhook, lineRetryKey } from '../../../gateway/platforms/line.ts';
import { type ReplyHandle, WebhookError, type WebhookRequest } from '../../../gateway/platforms/types.ts';
import { type FakeLine, startFakeLine } from '../../fakes/platforms.ts';
import { overHttp, signLine, webhook } from '../../fakes/signing.ts';
import { egressContext } from './context.ts';

const secrets = { channelSecret: '0123456789abcdef0123456789abcdef', channelAccessToken: 'line-channel-access-token' };
const NOW = 1_700_000_000_000;
const VERIFY_BODY = '{"destination":"U0123456789abcdef0123456789abcdef","events":[]}';
const VERIFY_SIGNATURE = '94lIexwJJhBAEvU5fHF/i4JXKbSzbpgGUoZUZlwge9Q=';

function signed(body: unknown): WebhookRequest {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return webhook({ body: text, headers: { 'content-type': 'application/json; charset=utf-8', 'x-line-signature': signLine(secrets.channelSecret, text) } });
}

function rejection(req: WebhookRequest): WebhookError {
  try {
    handleLineWebhook(req, secrets, NOW);
  } catch (e) {
    expect(e).toBeInstanceOf(WebhookError);
    return e as WebhookError;
  }
  throw new Error('expected the webhook to be rejected');
}

// From the Messaging API reference (webhook event objects): a text message with mentions in a group.
const groupText = {
  replyToken: 'nHuyWiB7yP5Zw52FIkcQobQuGDXCTA',
  type: 'message',
  mode: 'active',
  timestamp: 1462629479859,
  source: { type: 'group', groupId: 'Ca56f94637c0000000000000000000000', userId: 'U4af4980629000000000000000000000' },
  webhookEventId: '01FZ74A0TDDPYRVKNK77XKC3ZR',
  deliveryContext: { isRedelivery: false },
  message: {
    id: '444573844083572737',
    type: 'text',
    quoteToken: 'q3Plxr4AgKd...',
    text: '@All @example Good Morning!! (love)',
    mention: {
      mentionees: [
        { index: 0, length: 4, type: 'all' },
        { index: 5, length: 8, userId: 'U49585cd0d5000000000000000000000', type: 'user', isSelf: false },
      ],
    },
  },
};

const follow = {
  replyToken: '85cbe770fa8b4f45bbe077b1d4be4a36',
  type: 'follow',
  mode: 'active',
  timestamp: 1705891467176,
  source: { type: 'user', userId: 'U3d3edab4f36c6292e6d8a8131f141b8b' },
  webhookEventId: '01HMQGW40RZJPJM3RAJP7BHC2Q',
  deliveryContext: { isRedelivery: true },
  follow: { isUnblocked: false },
};

describe('LINE signature', () => {
  it('accepts the self-made vector (the console Verify request) and emits nothing', () => {
    const req = webhook({ body: VERIFY_BODY, headers: { 'x-line-signature': VERIFY_SIGNATURE } });
    expect(handleLineWebhook(req, secrets, NOW)).toEqual({ response: { status: 200 }, events: [] });
  });

  it('accepts the signature without base64 padding', () => {
    const req = webhook({ body: VERIFY_BODY, headers: { 'x-line-signature': VERIFY_SIGNATURE.slice(0, -1) } });
    expect(handleLineWebhook(req, secrets, NOW).events).toEqual([]);
  });

  it.each([
    ['a tampered body byte', VERIFY_BODY.replace('U0', 'U1'), VERIFY_SIGNATURE],
    ['a truncated signature', VERIFY_BODY, VERIFY_SIGNATURE.slice(0, -4)],
    ['a hex signature', VERIFY_BODY, Buffer.from(VERIFY_SIGNATURE, 'base64').toString('hex')],
    ['a signature under another secret', VERIFY_BODY, signLine('another-secret', VERIFY_BODY)],
    ['no signature', VERIFY_BODY, undefined],
  ])('rejects %s with 401', (_, body, signature) => {
    expect(rejection(webhook({ body, headers: signature === undefined ? {} : { 'x-line-signature': signature } }))).toMatchObject({ status: 401 });
  });

  it('reads the header whatever its case on the wire', async () => {
    const req = await overHttp({ body: VERIFY_BODY, headers: { 'X-Line-Signature': VERIFY_SIGNATURE } });
    expect(handleLineWebhook(req, secrets, NOW).response.status).toBe(200);
  });
});

describe('LINE normalization', () => {
  it('splits events[] into one CloudEvent each, reply tokens only in handles', () => {
    const body = { destination: 'Uxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', events: [groupText, follow] };
    const { events } = handleLineWebhook(signed(body), secrets, NOW);
    expect(events).toHaveLength(2);
    const [text, followed] = events;
    expect(text!.raw).toMatchObject({ type: 'dev.knbot.line.event.message', id: '01FZ74A0TDDPYRVKNK77XKC3ZR:raw', data: { destination: body.destination, events: [{ webhookEventId: '01FZ74A0TDDPYRVKNK77XKC3ZR' }] } });
    expect(text!.normalized).toEqual({
      specversion: '1.0',
      id: '01FZ74A0TDDPYRVKNK77XKC3ZR',
      source: '/line/channels/Uxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
      type: 'dev.knbot.chat.message.received',
      datacontenttype: 'application/json',
      subject: 'Ca56f94637c0000000000000000000000',
      time: '2016-05-07T13:57:59.859Z',
      chatbot: 'echo',
      chatplatform: 'line',
      chattenant: 'Uxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
      chatuser: 'U4af4980629000000000000000000000',
      partitionkey: 'Ca56f94637c0000000000000000000000',
      chatreplyby: new Date(NOW + 60_000).toISOString(),
      data: {
        text: '@All @example Good Morning!! (love)',
        user: { id: 'U4af4980629000000000000000000000' },
        conversation: { id: 'Ca56f94637c0000000000000000000000' },
        mentions: [{ id: 'U49585cd0d5000000000000000000000' }],
      },
    });
    expect(text!.replyHandle).toEqual({ platform: 'line', kind: 'line.reply_token', value: groupText.replyToken, expiresAt: NOW + 60_000, uses: 0, maxUses: 1 });
    expect(followed!.normalized).toMatchObject({ type: 'dev.knbot.chat.member.joined', subject: follow.source.userId, chatredelivery: true, data: { members: [{ id: follow.source.userId }] } });
    expect(followed!.replyHandle?.value).toBe(follow.replyToken);
    for (const e of events) {
      expect(JSON.stringify([e.raw, e.normalized])).not.toMatch(/nHuyWiB7yP5Zw52FIkcQobQuGDXCTA|85cbe770fa8b4f45bbe077b1d4be4a36/);
      expect(validateCloudEvent(e.raw)).toEqual([]);
    }
    expect(new Set(events.map((e) => e.dedupeKey)).size).toBe(2);
  });

  it('turns an image into a message with an attachment and a postback into an action', () => {
    const image = { ...groupText, webhookEventId: '01H0000000000000000000000A', message: { id: '354718705033693861', type: 'image', contentProvider: { type: 'line' } } };
    const postback = { ...follow, type: 'postback', webhookEventId: '01H0000000000000000000000B', postback: { data: 'action=buy&itemid=111' } };
    const [img, pb] = handleLineWebhook(signed({ destination: 'Ud', events: [image, postback] }), secrets, NOW).events;
    expect(img!.normalized?.data).toEqual({ text: '', user: { id: groupText.source.userId }, conversation: { id: groupText.source.groupId }, attachments: [{ type: 'image', id: '354718705033693861' }] });
    expect(pb!.normalized).toMatchObject({ type: 'dev.knbot.chat.action.invoked', data: { text: 'action=buy&itemid=111', action: { type: 'postback', id: 'action=buy&itemid=111', value: 'action=buy&itemid=111' } } });
  });

  it('listens in standby mode but never offers a reply', () => {
    const [e] = handleLineWebhook(signed({ destination: 'Ud', events: [{ ...groupText, mode: 'standby' }] }), secrets, NOW).events;
    expect(e!.normalized).toBeUndefined();
    expect(e!.replyHandle).toBeUndefined();
    expect(JSON.stringify(e!.raw)).not.toContain(groupText.replyToken);
  });

  it('turns memberJoined into chat.member.joined and leaves unfollow raw', () => {
    const joined = { type: 'memberJoined', mode: 'active', timestamp: 1462629479960, webhookEventId: '01H0000000000000000000000C', deliveryContext: { isRedelivery: false }, replyToken: 'r', source: { type: 'group', groupId: 'C4af4980629' }, joined: { members: [{ type: 'user', userId: 'U4af4980629' }, { type: 'user', userId: 'U91eeaf62d9' }] } };
    const unfollow = { type: 'unfollow', mode: 'active', timestamp: 1462629479960, webhookEventId: '01H0000000000000000000000D', deliveryContext: { isRedelivery: false }, source: { type: 'user', userId: 'U4af4980629' } };
    const [j, u] = handleLineWebhook(signed({ destination: 'Ud', events: [joined, unfollow] }), secrets, NOW).events;
    expect(j!.normalized).toMatchObject({ type: 'dev.knbot.chat.member.joined', subject: 'C4af4980629', data: { user: { id: 'U4af4980629' }, members: [{ id: 'U4af4980629' }, { id: 'U91eeaf62d9' }] } });
    expect(u!.raw.type).toBe('dev.knbot.line.event.unfollow');
    expect(u!.normalized).toBeUndefined();
  });

  it('rejects a batch with an event that has no webhookEventId', () => {
    const { webhookEventId: _, ...old } = groupText;
    expect(rejection(signed({ destination: 'Ud', events: [old] }))).toMatchObject({ status: 400 });
  });
});

describe('LINE egress', () => {
  let fake: FakeLine;
  beforeAll(async () => {
    fake = await startFakeLine(secrets.channelAccessToken);
  });
  afterAll(() => fake.close());

  const reply = (id = 'reply-1') => {
    const e = chatReplyEvent({ id: '01FZ74A0TDDPYRVKNK77XKC3ZR', conversation: { id: 'U4af4980629' } }, { text: 'Good morning!' }, '/bots/default/echo');
    e.id = id;
    return e;
  };
  const handleFor = (token: string, expiresAt = Date.now() + 60_000): ReplyHandle => ({ platform: 'line', kind: 'line.reply_token', value: token, expiresAt, uses: 0, maxUses: 1 });

  it('replies with the reply token (Bearer token, no retry key) and spends it', async () => {
    fake.requests.length = 0;
    const token = fake.replyToken();
    const out = await deliverLineReply(reply(), handleFor(token), secrets, egressContext(fake.url));
    expect(out).toEqual({ ok: true, platformMessageId: expect.any(String), handle: null });
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]).toMatchObject({ path: '/v2/bot/message/reply', body: { replyToken: token, messages: [{ type: 'text', text: 'Good morning!' }] } });
    expect(fake.requests[0]!.headers.authorization).toBe(`Bearer ${secrets.channelAccessToken}`);
    expect(fake.requests[0]!.headers['x-line-retry-key']).toBeUndefined();
  });

  it('pushes instead once chatreplyby has passed, without trying the token', async () => {
    fake.requests.length = 0;
    const out = await deliverLineReply(reply('reply-2'), handleFor(fake.replyToken(), Date.now() - 1), secrets, egressContext(fake.url));
    expect(out).toMatchObject({ ok: true, handle: null });
    expect(fake.requests.map((r) => r.path)).toEqual(['/v2/bot/message/push']);
    expect(fake.requests[0]!.body).toEqual({ to: 'U4af4980629', messages: [{ type: 'text', text: 'Good morning!' }] });
  });

  it('pushes when LINE says the reply token is invalid, with one retry key across the push retries', async () => {
    fake.requests.length = 0;
    fake.fail({ status: 500, times: 2, path: '/v2/bot/message/push' });
    const ctx = egressContext(fake.url);
    const out = await deliverLineReply(reply('reply-3'), handleFor('already-used-token'), secrets, ctx);
    expect(out).toMatchObject({ ok: true, handle: null });
    expect(fake.requests.map((q) => q.path)).toEqual(['/v2/bot/message/reply', '/v2/bot/message/push', '/v2/bot/message/push', '/v2/bot/message/push']);
    const keys = fake.requests.slice(1).map((q) => q.headers['x-line-retry-key']);
    expect(keys).toEqual(Array(3).fill(lineRetryKey(reply('reply-3'), 0)));
    expect(ctx.retries.map((r) => r.status)).toEqual([500, 500]);
  });

  it('reuses the retry key across 500s on a push, and counts a 409 for it as delivered', async () => {
    fake.requests.length = 0;
    fake.fail({ status: 500, times: 2 });
    const r = reply('reply-5');
    const out = await deliverLineReply(r, undefined, secrets, egressContext(fake.url));
    expect(out.ok).toBe(true);
    expect(fake.requests.map((q) => `${q.path} ${q.headers['x-line-retry-key']}`)).toEqual(Array(3).fill(`/v2/bot/message/push ${lineRetryKey(r, 0)}`));
    expect(lineRetryKey(r, 0)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    // The broker redelivers the same reply: same key, LINE answers 409, nothing is sent twice.
    fake.requests.length = 0;
    expect(await deliverLineReply(r, undefined, secrets, egressContext(fake.url))).toEqual({ ok: true });
    expect(fake.requests).toHaveLength(1);
    expect(lineRetryKey(reply('reply-6'), 0)).not.toBe(lineRetryKey(r, 0));
  });

  it('does not retry a 401', async () => {
    fake.requests.length = 0;
    const out = await deliverLineReply(reply('reply-7'), undefined, { ...secrets, channelAccessToken: 'wrong' }, egressContext(fake.url));
    expect(out).toMatchObject({ ok: false, status: 401, retryable: false });
    expect(fake.requests).toHaveLength(1);
  });
});

describe('LINE reply buttons', () => {
  let fake: FakeLine;
  beforeAll(async () => {
    fake = await startFakeLine(secrets.channelAccessToken);
  });
  afterAll(() => fake.close());

  const withButtons = (buttons: unknown, text = 'Which size?') => chatReplyEvent({ id: '01FZ74A0TDDPYRVKNK77XKC3ZR', conversation: { id: 'U4af4980629' } }, { text, buttons }, '/bots/default/shop');
  const item = (label: string, data: string, displayText = label) => ({ type: 'action', action: { type: 'postback', label, data, displayText } });
  const push = async (event: ReturnType<typeof withButtons>) => {
    fake.requests.length = 0;
    expect((await deliverLineReply(event, undefined, secrets, egressContext(fake.url))).ok).toBe(true);
    return fake.requests;
  };

  it('replies with a quick reply of postback buttons: data the id, the label as what the user says', async () => {
    fake.requests.length = 0;
    const token = fake.replyToken();
    const handle: ReplyHandle = { platform: 'line', kind: 'line.reply_token', value: token, expiresAt: Date.now() + 60_000, uses: 0, maxUses: 1 };
    expect((await deliverLineReply(withButtons(['S', { label: 'Large', id: 'size_l', value: 'L' }]), handle, secrets, egressContext(fake.url))).ok).toBe(true);
    expect(fake.requests[0]!.body).toEqual({
      replyToken: token,
      messages: [{ type: 'text', text: 'Which size?', quickReply: { items: [item('S', 'S'), item('Large', 'size_l')] } }],
    });
  });

  it('cuts labels to 20 characters, keeping the whole label as displayText, and gives ids past 300 bytes as a digest', async () => {
    const label = 'Deliver to my home address';
    const id = 'x'.repeat(301);
    const [r] = await push(withButtons([label, { label: 'Other', id }]));
    expect(r!.body.messages[0].quickReply.items).toEqual([item('Deliver to my home…', label, label), item('Other', wireId('line', id))]);
  });

  it('puts the quick reply on the last message, across the five a request holds', async () => {
    const text = Array.from({ length: 7 }, (_, i) => `${String(i).repeat(4999)}`).join(' ');
    const requests = await push(withButtons(['OK'], text));
    expect(requests.map((r) => r.body.messages.map((m: { quickReply?: unknown }) => m.quickReply !== undefined))).toEqual([
      [false, false, false, false, false],
      [false, true],
    ]);
  });

  it('lists more than 13 buttons by number under the text, with no quick reply', async () => {
    const labels = Array.from({ length: 14 }, (_, i) => `Size ${i + 1}`);
    const [r] = await push(withButtons(labels));
    expect(r!.body.messages).toEqual([{ type: 'text', text: `Which size?\n\n${labels.map((l, i) => `${i + 1}. ${l}`).join('\n')}` }]);
  });

  it('sends the text alone when the buttons are malformed', async () => {
    const [r] = await push(withButtons([{ label: 'ok', value: 1 }]));
    expect(r!.body.messages).toEqual([{ type: 'text', text: 'Which size?' }]);
  });

  it.each([
    ['14 items', Array.from({ length: 14 }, (_, i) => item(`b${i}`, `b${i}`))],
    ['a label of 21 characters', [item('x'.repeat(21), 'a')]],
    ['postback data of 301 characters', [item('a', 'x'.repeat(301))]],
    ['an item that is no action', [{ type: 'button', action: { type: 'postback', label: 'a', data: 'a' } }]],
  ])('has a fake that refuses a quick reply with %s, as LINE does', async (_, items) => {
    const res = await fetch(`${fake.url}/v2/bot/message/push`, {
      method: 'POST',
      headers: { authorization: `Bearer ${secrets.channelAccessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: 'U4af4980629', messages: [{ type: 'text', text: 'x', quickReply: { items } }] }),
    });
    expect(res.status).toBe(400);
  });
});
