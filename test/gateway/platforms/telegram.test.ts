import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatReplyEvent } from '../../../eventing/chat.ts';
import { validateCloudEvent } from '../../../eventing/codec.ts';
import { wireId } from '../../../gateway/platforms/buttons.ts';
import { telegramEditTarget } from '../../../gateway/platforms/stream-targets.ts';
import { deliverTelegramReply, handleTelegramWebhook } from '../../../gateway/platforms/telegram.ts';
import { type ReplyHandle, WebhookError, type WebhookRequest } from '../../../gateway/platforms/types.ts';
import { type FakePlatform, startFakeTelegram } from '../../fakes/platforms.ts';
import { overHttp, webhook } from '../../fakes/signing.ts';
import { egressContext } from './context.ts';

const secrets = { secretToken: 'Sec_ret-token_123', botToken: '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw' };
const NOW = 1_700_000_000_000;

function update(body: unknown, token = secrets.secretToken): WebhookRequest {
  return webhook({ body: JSON.stringify(body), headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': token } });
}

function rejection(req: WebhookRequest): WebhookError {
  try {
    handleTelegramWebhook(req, secrets, NOW);
  } catch (e) {
    expect(e).toBeInstanceOf(WebhookError);
    return e as WebhookError;
  }
  throw new Error('expected the webhook to be rejected');
}

// The Bot API's own example update (core.telegram.org/bots/webhooks, "Testing your bot with updates").
const privateMessage = {
  update_id: 10000,
  message: {
    date: 1441645532,
    chat: { last_name: 'Test Lastname', id: 1111111, type: 'private', first_name: 'Test Firstname', username: 'Testusername' },
    message_id: 1365,
    from: { last_name: 'Test Lastname', id: 1111111, first_name: 'Test Firstname', username: 'Testusername' },
    text: '/start',
  },
};

describe('Telegram secret token', () => {
  it.each([
    ['a wrong token', 'Sec_ret-token_124'],
    ['a shorter token', 'Sec_ret-token_12'],
    ['a longer token', 'Sec_ret-token_1234'],
    ['an empty token', ''],
  ])('rejects %s with 401', (_, token) => {
    expect(rejection(update(privateMessage, token))).toMatchObject({ status: 401, code: 'bad_secret_token' });
  });

  it('rejects a request without the header', () => {
    expect(rejection(webhook({ body: JSON.stringify(privateMessage) }))).toMatchObject({ status: 401 });
  });

  it('reads the header whatever its case on the wire', async () => {
    const req = await overHttp({ body: JSON.stringify(privateMessage), headers: { 'Content-Type': 'application/json', 'X-Telegram-Bot-Api-Secret-Token': secrets.secretToken } });
    expect(handleTelegramWebhook(req, secrets, NOW).events).toHaveLength(1);
  });

  it('checks the token before reading the body', () => {
    expect(rejection(webhook({ body: '{not json', headers: { 'x-telegram-bot-api-secret-token': 'nope' } }))).toMatchObject({ status: 401 });
    expect(rejection(update('{not json'))).toMatchObject({ status: 400 });
    expect(rejection(webhook({ body: '{not json', headers: { 'x-telegram-bot-api-secret-token': secrets.secretToken } }))).toMatchObject({ status: 400 });
  });
});

describe('Telegram normalization', () => {
  it('normalizes a private message, keyed by the bot and the update_id', () => {
    const { response, events } = handleTelegramWebhook(update(privateMessage), secrets, NOW);
    expect(response).toEqual({ status: 200 });
    const [e] = events;
    expect(e!.raw).toMatchObject({ id: '10000:raw', type: 'dev.knbot.telegram.update.message', source: '/telegram/bots/123456789', data: privateMessage });
    expect(e!.normalized).toEqual({
      specversion: '1.0',
      id: '10000',
      source: '/telegram/bots/123456789',
      type: 'dev.knbot.chat.message.received',
      datacontenttype: 'application/json',
      subject: '1111111',
      time: '2015-09-07T17:05:32.000Z',
      chatbot: 'echo',
      chatplatform: 'telegram',
      chattenant: '123456789',
      chatuser: '1111111',
      partitionkey: '1111111',
      data: { text: '/start', user: { id: '1111111', name: 'Test Firstname Test Lastname' }, conversation: { id: '1111111' } },
    });
    expect(e!.dedupeKey).toBe('/telegram/bots/123456789 10000');
    // A private chat needs no quoting, so there is no handle.
    expect(e!.replyHandle).toBeUndefined();
    expect(validateCloudEvent(e!.normalized!)).toEqual([]);
  });

  it('quotes the message in groups, and keeps forum topics as threads', () => {
    const body = {
      update_id: 10001,
      message: {
        message_id: 77,
        message_thread_id: 5,
        is_topic_message: true,
        date: 1700000000,
        chat: { id: -1001234567890, title: 'Team', type: 'supergroup', is_forum: true },
        from: { id: 42, is_bot: false, first_name: 'Ann', username: 'ann' },
        text: '@knbot_bot hello @bob',
        entities: [
          { offset: 0, length: 10, type: 'mention' },
          { offset: 17, length: 4, type: 'mention' },
        ],
      },
    };
    const [e] = handleTelegramWebhook(update(body), secrets, NOW).events;
    expect(e!.normalized).toMatchObject({ subject: '-1001234567890/5', data: { conversation: { id: '-1001234567890', thread: '5' }, mentions: [{ id: '@knbot_bot' }, { id: '@bob' }] } });
    expect(e!.replyHandle).toMatchObject({ kind: 'telegram.reply_to', value: '77' });
    // Quoting context is no reply deadline: a Telegram bot can always send.
    expect(e!.normalized).not.toHaveProperty('chatreplyby');
  });

  it('turns a photo with a caption into a message with an attachment', () => {
    const body = {
      update_id: 10002,
      message: {
        message_id: 9,
        date: 1700000000,
        chat: { id: 1111111, type: 'private' },
        from: { id: 1111111, first_name: 'Ann' },
        caption: 'look',
        photo: [
          { file_id: 'small', file_unique_id: 's', width: 90, height: 90 },
          { file_id: 'large', file_unique_id: 'l', width: 1280, height: 1280 },
        ],
      },
    };
    const [e] = handleTelegramWebhook(update(body), secrets, NOW).events;
    expect(e!.normalized?.data).toMatchObject({ text: 'look', attachments: [{ type: 'photo', id: 'large' }] });
  });

  it('answers a callback_query in the webhook response and normalizes it as an action on the button’s callback_data', () => {
    const body = {
      update_id: 10003,
      callback_query: {
        id: '4382bfdwdsb323b2d9',
        from: { id: 42, first_name: 'Ann' },
        message: { message_id: 8, date: 1700000000, chat: { id: 42, type: 'private' }, text: 'Choose' },
        chat_instance: '-123',
        data: 'yes',
      },
    };
    const { response, events } = handleTelegramWebhook(update(body), secrets, NOW);
    expect(response).toEqual({ status: 200, headers: { 'content-type': 'application/json' }, body: { method: 'answerCallbackQuery', callback_query_id: '4382bfdwdsb323b2d9' } });
    expect(events[0]!.normalized).toMatchObject({ type: 'dev.knbot.chat.action.invoked', subject: '42', data: { text: 'yes', action: { type: 'callback_query', id: 'yes', value: 'yes' } } });
    // The query's own id only answers it: it is the answer's, not the action's.
    expect(JSON.stringify(events[0]!.normalized)).not.toContain('4382bfdwdsb323b2d9');
  });

  it('turns new_chat_members into chat.member.joined and leaves edits raw', () => {
    const joined = {
      update_id: 10004,
      message: { message_id: 10, date: 1700000000, chat: { id: -100, type: 'group', title: 'G' }, from: { id: 7, first_name: 'Eve' }, new_chat_members: [{ id: 7, first_name: 'Eve' }, { id: 8, first_name: 'Mo' }] },
    };
    expect(handleTelegramWebhook(update(joined), secrets, NOW).events[0]!.normalized).toMatchObject({
      type: 'dev.knbot.chat.member.joined',
      data: { user: { id: '7', name: 'Eve' }, members: [{ id: '7', name: 'Eve' }, { id: '8', name: 'Mo' }] },
    });
    const edited = { update_id: 10005, edited_message: { message_id: 1, date: 1700000000, edit_date: 1700000100, chat: { id: 5, type: 'private' }, from: { id: 5, first_name: 'A' }, text: 'x' } };
    const [e] = handleTelegramWebhook(update(edited), secrets, NOW).events;
    expect(e!.raw).toMatchObject({ type: 'dev.knbot.telegram.update.edited_message', subject: '5', time: '2023-11-14T22:15:00.000Z' });
    expect(e!.normalized).toBeUndefined();
  });

  it('rejects an update without an update_id', () => {
    expect(rejection(update({ message: privateMessage.message }))).toMatchObject({ status: 400 });
  });
});

describe('Telegram egress', () => {
  let fake: FakePlatform;
  beforeAll(async () => {
    fake = await startFakeTelegram(secrets.botToken, ['1111111', '-1001234567890']);
  });
  afterAll(() => fake.close());

  const reply = (conversation: { id: string; thread?: string }) => chatReplyEvent({ id: '10000', conversation }, { text: 'pong' }, '/bots/default/echo');

  it('sends with sendMessage, the token in the path, quoting the message it answers', async () => {
    fake.requests.length = 0;
    const handle: ReplyHandle = { platform: 'telegram', kind: 'telegram.reply_to', value: '77', expiresAt: Date.now() + 60_000, uses: 0, maxUses: Number.MAX_SAFE_INTEGER };
    const out = await deliverTelegramReply(reply({ id: '-1001234567890', thread: '5' }), handle, secrets, egressContext(fake.url));
    expect(out).toEqual({ ok: true, platformMessageId: expect.stringMatching(/^\d+$/) });
    expect(fake.requests[0]).toMatchObject({
      path: `/bot${secrets.botToken}/sendMessage`,
      body: { chat_id: -1001234567890, text: 'pong', message_thread_id: 5, reply_parameters: { message_id: 77, allow_sending_without_reply: true } },
    });
  });

  it('waits for the retry_after Telegram puts in the body of a 429', async () => {
    fake.requests.length = 0;
    fake.fail({ status: 429, times: 1, retryAfter: 1 });
    const ctx = egressContext(fake.url);
    const out = await deliverTelegramReply(reply({ id: '1111111' }), undefined, secrets, ctx);
    expect(out.ok).toBe(true);
    expect(ctx.retries).toEqual([{ attempt: 1, delayMs: 1000, status: 429, reason: 'Too Many Requests: retry after 1' }]);
    expect(fake.requests[1]!.at - fake.requests[0]!.at).toBeGreaterThanOrEqual(990);
  });

  it('retries a 500 and then succeeds', async () => {
    fake.requests.length = 0;
    fake.fail({ status: 500, times: 2 });
    const out = await deliverTelegramReply(reply({ id: '1111111' }), undefined, secrets, egressContext(fake.url));
    expect(out.ok).toBe(true);
    expect(fake.requests).toHaveLength(3);
  });

  it.each([
    ['an unknown chat', { id: '999' }, secrets, 400, 'Bad Request: chat not found'],
    ['a wrong token', { id: '1111111' }, { ...secrets, botToken: '123456789:wrong' }, 401, 'Unauthorized'],
  ])('does not retry %s', async (_, conversation, s, status, reason) => {
    fake.requests.length = 0;
    expect(await deliverTelegramReply(reply(conversation), undefined, s, egressContext(fake.url))).toEqual({ ok: false, status, reason, retryable: false });
    expect(fake.requests).toHaveLength(1);
  });

  it('splits text longer than 4096 characters into several messages', async () => {
    fake.requests.length = 0;
    const long = chatReplyEvent({ id: '1', conversation: { id: '1111111' } }, { text: `${'a'.repeat(4000)} ${'b'.repeat(200)}` }, '/bots/default/echo');
    expect((await deliverTelegramReply(long, undefined, secrets, egressContext(fake.url))).ok).toBe(true);
    expect(fake.requests.map((r) => r.body.text.length)).toEqual([4000, 200]);
  });
});

describe('Telegram reply buttons', () => {
  let fake: FakePlatform;
  beforeAll(async () => {
    fake = await startFakeTelegram(secrets.botToken, ['1111111']);
  });
  afterAll(() => fake.close());

  const withButtons = (buttons: unknown, text = 'Which size?') => chatReplyEvent({ id: '10000', conversation: { id: '1111111' } }, { text, buttons }, '/bots/default/shop');
  const send = async (event: ReturnType<typeof withButtons>) => {
    fake.requests.length = 0;
    const out = await deliverTelegramReply(event, undefined, secrets, egressContext(fake.url));
    expect(out.ok).toBe(true);
    return fake.requests;
  };

  it('sends an inline keyboard, callback_data the button id, three short labels a row', async () => {
    const [r] = await send(withButtons(['S', 'M', { label: 'L', id: 'size_l' }, { label: 'XL', value: 'extra large' }]));
    expect(r!.body).toEqual({
      chat_id: 1111111,
      text: 'Which size?',
      reply_markup: {
        inline_keyboard: [
          [
            { text: 'S', callback_data: 'S' },
            { text: 'M', callback_data: 'M' },
            { text: 'L', callback_data: 'size_l' },
          ],
          [{ text: 'XL', callback_data: 'XL' }],
        ],
      },
    });
  });

  it('gives a long label a row of its own, cut at 64 characters', async () => {
    const long = 'Deliver it to the pick-up point nearest to my home address, please, thank you';
    const [r] = await send(withButtons(['Yes', long, 'No']));
    expect(r!.body.reply_markup.inline_keyboard).toEqual([[{ text: 'Yes', callback_data: 'Yes' }], [{ text: `${long.slice(0, 63).trimEnd()}…`, callback_data: wireId('telegram', long) }], [{ text: 'No', callback_data: 'No' }]]);
    // The long label is its id too: more than 64 bytes, it goes as a digest.
    expect(r!.body.reply_markup.inline_keyboard[1][0].callback_data).toMatch(/^#[A-Za-z0-9_-]{27}$/);
  });

  it('sends an id of more than 64 bytes as its digest, which Telegram takes', async () => {
    const id = 'order:2024-06-01:customer-4711:basket-0815:item-42:size-large:colour-blue';
    expect(Buffer.byteLength(id)).toBeGreaterThan(64);
    const [r] = await send(withButtons([{ label: 'Buy', id }]));
    expect(r!.body.reply_markup.inline_keyboard).toEqual([[{ text: 'Buy', callback_data: wireId('telegram', id) }]]);
  });

  it('puts the keyboard on the last message of a long reply', async () => {
    const requests = await send(withButtons(['OK'], `${'a'.repeat(4000)} ${'b'.repeat(200)}`));
    expect(requests.map((r) => [r.body.text.length, r.body.reply_markup !== undefined])).toEqual([
      [4000, false],
      [200, true],
    ]);
  });

  it('sends the text alone when the buttons are malformed', async () => {
    const [r] = await send(withButtons('Yes'));
    expect(r!.body).toEqual({ chat_id: 1111111, text: 'Which size?' });
  });

  it('adds the keyboard to a streamed message with the edit that makes it whole', async () => {
    fake.requests.length = 0;
    const target = telegramEditTarget(egressContext(fake.url), secrets.botToken, { id: '1111111' });
    const id = await target.post('Which');
    await target.edit(id, 'Which size?', [{ label: 'S', id: 's', value: 'S' }]);
    expect(fake.requests.map((r) => [r.path.split('/').pop(), r.body.reply_markup])).toEqual([
      ['sendMessage', undefined],
      ['editMessageText', { inline_keyboard: [[{ text: 'S', callback_data: 's' }]] }],
    ]);
  });

  it.each([
    ['callback_data over 64 bytes', [[{ text: 'x', callback_data: 'x'.repeat(65) }]], 'Bad Request: BUTTON_DATA_INVALID'],
    ['empty callback_data', [[{ text: 'x', callback_data: '' }]], 'Bad Request: BUTTON_DATA_INVALID'],
    ['a text-only button', [[{ text: 'x' }]], "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"],
    ['nine buttons in a row', [Array.from({ length: 9 }, (_, i) => ({ text: `${i}`, callback_data: `${i}` }))], 'Bad Request: reply markup is too long'],
  ])('has a fake that refuses %s, as Telegram does', async (_, inline_keyboard, description) => {
    const res = await fetch(`${fake.url}/bot${secrets.botToken}/sendMessage`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ chat_id: 1111111, text: 'x', reply_markup: { inline_keyboard } }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ ok: false, error_code: 400, description });
  });
});
