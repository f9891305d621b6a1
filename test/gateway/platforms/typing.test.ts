import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatReplyEvent } from '../../../eventing/chat.ts';
import { startDiscordTyping } from '../../../gateway/platforms/discord.ts';
import { startLineTyping } from '../../../gateway/platforms/line.ts';
import { slack } from '../../../gateway/platforms/slack.ts';
import { deliverTelegramReply, startTelegramTyping, telegramLimits } from '../../../gateway/platforms/telegram.ts';
import type { ReplyHandle } from '../../../gateway/platforms/types.ts';
import { RateLimiter } from '../../../gateway/platforms/rate-limit.ts';
import { loadingSeconds } from '../../../gateway/platforms/typing.ts';
import { WHATSAPP_API_VERSION, startWhatsAppTyping } from '../../../gateway/platforms/whatsapp.ts';
import { PlatformTyping } from '../../../gateway/platform-typing.ts';
import { Gateway } from '../../../gateway/server.ts';
import { type FakeDiscord, type FakeLine, type FakePlatform, type FakeSlack, startFakeDiscord, startFakeLine, startFakeSlack, startFakeTelegram, startFakeWhatsApp } from '../../fakes/platforms.ts';
import { waitFor } from '../../pod.ts';
import { egressContext } from './context.ts';

const TG = { secretToken: 'tg-secret_token', botToken: '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw' };
const DC = { publicKey: '00'.repeat(32), applicationId: '1180000000000000000', botToken: 'discord-bot-token' };
const LN = { channelSecret: '0123456789abcdef0123456789abcdef', channelAccessToken: 'line-access-token' };
const WA = { appSecret: 's', verifyToken: 'v', accessToken: 'wa-access-token', phoneNumberId: '106540352242922' };
const LINE_USER = 'U4af4980629a0b1c2d3e4f5a6b7c8d9e0';
const WAMID = 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=';

let telegram: FakePlatform;
let discord: FakeDiscord;
let line: FakeLine;
let whatsapp: FakePlatform;
let slackApi: FakeSlack;
beforeAll(async () => {
  [telegram, discord, line, whatsapp, slackApi] = await Promise.all([
    startFakeTelegram(TG.botToken, ['42', '-1001234567890']),
    startFakeDiscord(DC.applicationId, DC.botToken),
    startFakeLine(LN.channelAccessToken),
    startFakeWhatsApp(WA.accessToken, WA.phoneNumberId),
    startFakeSlack('xoxb-t'),
  ]);
});
afterAll(async () => {
  await Promise.all([telegram, discord, line, whatsapp, slackApi].map((f) => f.close()));
});

const interaction = (token: string, editOriginal: boolean): ReplyHandle => ({ platform: 'discord', kind: 'discord.interaction', value: token, expiresAt: Date.now() + 60_000, uses: 0, maxUses: 99, editOriginal });

describe('typing indicators, per platform', () => {
  it('Telegram: sendChatAction "typing", in the topic the message came from', async () => {
    telegram.requests.length = 0;
    const out = await startTelegramTyping({ conversation: { id: '-1001234567890', thread: '7' } }, TG, egressContext(telegram.url));
    expect(out).toEqual({ result: 'shown' });
    expect(telegram.requests).toHaveLength(1);
    expect(telegram.requests[0]).toMatchObject({ method: 'POST', path: `/bot${TG.botToken}/sendChatAction`, body: { chat_id: -1001234567890, action: 'typing', message_thread_id: 7 } });
  });

  it('Discord: POST /channels/{id}/typing with the bot token, once no "thinking…" placeholder shows', async () => {
    discord.requests.length = 0;
    const out = await startDiscordTyping({ conversation: { id: '1190000000000000000' }, handle: interaction(discord.interactionToken(), false) }, DC, egressContext(discord.url));
    expect(out).toEqual({ result: 'shown' });
    expect(discord.requests).toHaveLength(1);
    expect(discord.requests[0]).toMatchObject({ method: 'POST', path: '/channels/1190000000000000000/typing', body: undefined });
    expect(discord.requests[0]!.headers.authorization).toBe(`Bot ${DC.botToken}`);
  });

  it('Discord: nothing for an interaction deferred with type 5, which shows "thinking…" already', async () => {
    discord.requests.length = 0;
    const out = await startDiscordTyping({ conversation: { id: '1190000000000000000' }, handle: interaction(discord.interactionToken(), true) }, DC, egressContext(discord.url));
    expect(out).toMatchObject({ result: 'skipped' });
    expect(discord.requests).toHaveLength(0);
  });

  it('LINE: the loading animation in a one-to-one chat, for the bot timeout rounded up to 5 s', async () => {
    line.requests.length = 0;
    expect(await startLineTyping({ conversation: { id: LINE_USER }, seconds: 12 }, LN, egressContext(line.url))).toEqual({ result: 'shown' });
    expect(line.requests[0]).toMatchObject({ method: 'POST', path: '/v2/bot/chat/loading/start', body: { chatId: LINE_USER, loadingSeconds: 15 } });
    expect(line.requests[0]!.headers.authorization).toBe(`Bearer ${LN.channelAccessToken}`);
  });

  it.each([
    [undefined, 20],
    [1, 5],
    [20, 20],
    [21, 25],
    [300, 60],
  ])('LINE: a bot timeout of %s s shows the animation for %i s', (timeout, seconds) => {
    expect(loadingSeconds(timeout)).toBe(seconds);
  });

  it.each([
    ['a group', 'Ca56f94637c0000000000000000000000'],
    ['a room', 'Rb60d7fc5e0000000000000000000000'],
  ])('LINE: nothing in %s (one-to-one chats only)', async (_, id) => {
    line.requests.length = 0;
    expect(await startLineTyping({ conversation: { id } }, LN, egressContext(line.url))).toMatchObject({ result: 'skipped' });
    expect(line.requests).toHaveLength(0);
  });

  it('WhatsApp: the message being answered marked read, with a typing indicator', async () => {
    whatsapp.requests.length = 0;
    expect(await startWhatsAppTyping({ conversation: { id: '16505551234' }, messageId: WAMID }, WA, egressContext(whatsapp.url))).toEqual({ result: 'shown' });
    expect(whatsapp.requests[0]).toMatchObject({
      method: 'POST',
      path: `/${WHATSAPP_API_VERSION}/${WA.phoneNumberId}/messages`,
      body: { messaging_product: 'whatsapp', status: 'read', message_id: WAMID, typing_indicator: { type: 'text' } },
    });
    expect(whatsapp.requests[0]!.headers.authorization).toBe(`Bearer ${WA.accessToken}`);
  });

  it('WhatsApp: nothing without the id of the message being answered', async () => {
    whatsapp.requests.length = 0;
    expect(await startWhatsAppTyping({ conversation: { id: '16505551234' } }, WA, egressContext(whatsapp.url))).toMatchObject({ result: 'skipped' });
    expect(whatsapp.requests).toHaveLength(0);
  });

  it('Slack: nothing at all (no typing indicator for bot messages in channels)', async () => {
    slackApi.requests.length = 0;
    expect(await slack.startTyping({ conversation: { id: 'C0001' } }, { botToken: 'xoxb-t' }, egressContext(slackApi.url))).toMatchObject({ result: 'skipped' });
    expect(slackApi.requests).toHaveLength(0);
  });

  it.each([
    ['Telegram', () => startTelegramTyping({ conversation: { id: '42' } }, { botToken: '123456789:wrong' }, egressContext(telegram.url)), { status: 401, reason: 'Unauthorized' }, '123456789:wrong'],
    ['Discord', () => startDiscordTyping({ conversation: { id: '1190000000000000000' } }, { botToken: 'wrong-bot-token' }, egressContext(discord.url)), { status: 401, reason: '401: Unauthorized' }, 'wrong-bot-token'],
    [
      'LINE',
      () => startLineTyping({ conversation: { id: LINE_USER } }, { channelAccessToken: 'wrong-line-token' }, egressContext(line.url)),
      { status: 401, reason: 'Authentication failed. Confirm that the access token in the authorization header is valid.' },
      'wrong-line-token',
    ],
    [
      'WhatsApp',
      () => startWhatsAppTyping({ conversation: { id: '16505551234' }, messageId: WAMID }, { ...WA, accessToken: 'wrong-wa-token' }, egressContext(whatsapp.url)),
      { status: 401, reason: 'Invalid OAuth access token - Cannot parse access token' },
      'wrong-wa-token',
    ],
  ])('%s: a refused credential is a failed indicator, reported without the credential', async (_, call, expected, credential) => {
    const out = await call();
    expect(out).toEqual({ result: 'failed', ...expected });
    expect(JSON.stringify(out)).not.toContain(credential);
  });

  it.each([
    ['Telegram', 'a chat the bot is not in', () => startTelegramTyping({ conversation: { id: '999' } }, TG, egressContext(telegram.url)), { status: 400, reason: 'Bad Request: chat not found' }],
    ['LINE', 'a chat id that is no user id', () => startLineTyping({ conversation: { id: 'Unot-a-user' } }, LN, egressContext(line.url)), { status: 400, reason: 'The request body has 1 error(s)' }],
    ['WhatsApp', 'a message id that is no wamid', () => startWhatsAppTyping({ conversation: { id: '16505551234' }, messageId: 'm1' }, WA, egressContext(whatsapp.url)), { status: 400, reason: 'Invalid parameter' }],
  ])('%s: %s is refused as the API refuses it', async (_, __, call, expected) => {
    expect(await call()).toEqual({ result: 'failed', ...expected });
  });

  it('tries once: a failing platform is not retried for an indicator', async () => {
    telegram.requests.length = 0;
    telegram.fail({ status: 500, times: 1 });
    const ctx = egressContext(telegram.url);
    expect(await startTelegramTyping({ conversation: { id: '42' } }, TG, ctx)).toEqual({ result: 'failed', status: 500, reason: 'Internal Server Error' });
    expect(telegram.requests).toHaveLength(1);
    expect(ctx.retries).toEqual([]);
  });
});

describe('typing and the rate limits', () => {
  it('skips the indicator, without waiting, when the platform budget is down to what replies need', async () => {
    telegram.requests.length = 0;
    const limiter = new RateLimiter();
    const ctx = egressContext(telegram.url, { limiter });
    // Half of the bot-wide bucket (30) is kept for replies: with 15 tokens left, typing gets none.
    const botWide = telegramLimits(TG.botToken, '42')[0]!;
    for (let i = 0; i < 15; i++) limiter.reserve([botWide]);
    // Skipped, where waiting for a token (as a reply would) would have shown it.
    expect(await startTelegramTyping({ conversation: { id: '42' } }, TG, ctx)).toMatchObject({ result: 'skipped' });
    expect(telegram.requests).toHaveLength(0);
  });

  it('leaves replies no wait: the reply right after an indicator goes at once, a second indicator within the second is skipped', async () => {
    telegram.requests.length = 0;
    const ctx = egressContext(telegram.url);
    expect(await startTelegramTyping({ conversation: { id: '42' } }, TG, ctx)).toEqual({ result: 'shown' });
    const start = performance.now();
    const reply = chatReplyEvent({ id: '10000', conversation: { id: '42' } }, { text: 'hello' }, '/bots/default/echo');
    expect(await deliverTelegramReply(reply, undefined, TG, ctx)).toMatchObject({ ok: true });
    // The chat's bucket holds one message a second: had typing taken from it, the reply would wait ~1 s.
    expect(performance.now() - start).toBeLessThan(500);
    expect(await startTelegramTyping({ conversation: { id: '42' } }, TG, ctx)).toMatchObject({ result: 'skipped' });
    expect(telegram.requests.map((r) => r.path.split('/').pop())).toEqual(['sendChatAction', 'sendMessage']);
  });
});

describe('typing through the gateway', () => {
  let broker: http.Server;
  let silent: http.Server;
  let silentUrl: string;
  const stored: { type: string }[] = [];
  const silentRequests: string[] = [];
  beforeAll(async () => {
    broker = http.createServer((req, res) => {
      req.resume();
      stored.push({ type: String(req.headers['ce-type']) });
      res.writeHead(202).end();
    });
    // A platform API that takes requests and never answers them.
    silent = http.createServer((req) => void silentRequests.push(String(req.url)));
    await Promise.all([broker, silent].map((s) => new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()))));
    silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const s of [broker, silent]) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  });

  async function gateway(apis: Record<string, string>, logs: { msg: string; fields?: Record<string, unknown> }[] = []) {
    const g = new Gateway({
      brokerUrl: `http://127.0.0.1:${(broker.address() as AddressInfo).port}/`,
      bots: () => [{ name: 'helper', namespace: 'default', timeoutSeconds: 30 }],
      auth: { open: true },
      channels: (bot, platform) => (bot !== 'helper' ? undefined : platform === 'telegram' ? TG : platform === 'line' ? LN : platform === 'whatsapp' ? WA : platform === 'discord' ? DC : undefined),
      env: apis,
      log: (msg, fields) => void logs.push(fields === undefined ? { msg } : { msg, fields }),
    });
    const ports = await g.start(0);
    return { g, ...ports };
  }

  const tgUpdate = (updateId: number, chat: number, text: string) =>
    JSON.stringify({ update_id: updateId, message: { date: 1441645532, chat: { id: chat, type: 'private', first_name: 'T' }, message_id: updateId, from: { id: chat, first_name: 'T' }, text } });
  const hook = (port: number, body: string) =>
    fetch(`http://127.0.0.1:${port}/hooks/telegram/helper`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': TG.secretToken }, body });

  it('shows typing once a webhook message is stored, and the acknowledgement does not wait for the platform', async () => {
    const { g, port } = await gateway({ KNBOT_TELEGRAM_API_URL: silentUrl });
    try {
      silentRequests.length = 0;
      const start = performance.now();
      const res = await hook(port, tgUpdate(30001, 42, 'hello'));
      expect(res.status).toBe(200);
      expect(performance.now() - start).toBeLessThan(1000);
      expect(stored.map((e) => e.type)).toContain('dev.knbot.chat.message.received');
      await waitFor(() => silentRequests.some((u) => u.endsWith('/sendChatAction')), 'the sendChatAction request');
    } finally {
      await g.close();
    }
  });

  it('logs a refused indicator without the token or the message text, and still acknowledges the webhook', async () => {
    const logs: { msg: string; fields?: Record<string, unknown> }[] = [];
    const { g, port } = await gateway({ KNBOT_TELEGRAM_API_URL: telegram.url }, logs);
    try {
      // Chat 777 is not one the (fake) bot is in: Telegram answers 400.
      const res = await hook(port, tgUpdate(30002, 777, 'my secret question'));
      expect(res.status).toBe(200);
      const failure = await waitFor(() => logs.find((l) => l.msg === 'typing indicator failed'), 'the failure to be logged');
      expect(failure.fields).toEqual({ platform: 'telegram', bot: 'helper', status: 400, reason: 'Bad Request: chat not found' });
      expect(JSON.stringify(logs)).not.toContain(TG.botToken);
      expect(JSON.stringify(logs)).not.toContain('my secret question');
    } finally {
      await g.close();
    }
  });

  it('shows no typing for a retry of a message already handed to the bot', async () => {
    const { g, port } = await gateway({ KNBOT_TELEGRAM_API_URL: telegram.url });
    try {
      const body = tgUpdate(30003, 42, 'once');
      expect((await hook(port, body)).status).toBe(200);
      await waitFor(() => telegram.requests.some((r) => r.path.endsWith('/sendChatAction') && r.body?.chat_id === 42), 'the first indicator');
      // Past the conversation's one-a-second typing budget, so only dedupe can hold a second one back.
      await new Promise((r) => setTimeout(r, 1100));
      telegram.requests.length = 0;
      expect((await hook(port, body)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 200));
      expect(telegram.requests).toHaveLength(0);
    } finally {
      await g.close();
    }
  });

  const typingEvent = (extra: Record<string, unknown>) =>
    JSON.stringify({ specversion: '1.0', id: `t-${Math.random()}`, source: '/bots/default/helper', type: 'dev.knbot.chat.typing.start', chatbot: 'helper', ...extra });
  const egress = (egressPort: number, body: string) => fetch(`http://127.0.0.1:${egressPort}/`, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body });

  it("sends the indicator for a bot's dev.knbot.chat.typing.start, for the message it names", async () => {
    const { g, egressPort } = await gateway({ KNBOT_TELEGRAM_API_URL: telegram.url, KNBOT_WHATSAPP_API_URL: whatsapp.url, KNBOT_LINE_API_URL: line.url });
    try {
      telegram.requests.length = 0;
      whatsapp.requests.length = 0;
      line.requests.length = 0;
      const tg = await egress(egressPort, typingEvent({ chatplatform: 'telegram', subject: '-1001234567890/7', data: { inReplyTo: '40001' } }));
      expect(tg.status).toBe(202);
      expect(telegram.requests.map((r) => r.body)).toEqual([{ chat_id: -1001234567890, action: 'typing', message_thread_id: 7 }]);
      const wa = await egress(egressPort, typingEvent({ chatplatform: 'whatsapp', subject: '16505551234', data: { inReplyTo: WAMID, conversation: { id: '16505551234' } } }));
      expect(wa.status).toBe(202);
      expect(whatsapp.requests.map((r) => r.body)).toEqual([{ messaging_product: 'whatsapp', status: 'read', message_id: WAMID, typing_indicator: { type: 'text' } }]);
      // The bot's timeout (30 s) sets how long LINE shows its animation.
      expect((await egress(egressPort, typingEvent({ chatplatform: 'line', subject: LINE_USER }))).status).toBe(202);
      expect(line.requests.map((r) => r.body)).toEqual([{ chatId: LINE_USER, loadingSeconds: 30 }]);
    } finally {
      await g.close();
    }
  });

  it('acknowledges a typing.start the platform refuses (it is best effort), and refuses a malformed one with 400', async () => {
    const { g, egressPort } = await gateway({ KNBOT_TELEGRAM_API_URL: telegram.url });
    try {
      telegram.requests.length = 0;
      expect((await egress(egressPort, typingEvent({ chatplatform: 'telegram', subject: '404404' }))).status).toBe(202);
      expect(telegram.requests).toHaveLength(1);
      for (const bad of [
        typingEvent({ chatplatform: 'telegram' }),
        typingEvent({ chatplatform: 'telegram', subject: '42', data: { inReplyTo: 5 } }),
        typingEvent({ chatplatform: 'telegram', data: { conversation: { thread: '7' } } }),
        typingEvent({ subject: '42' }),
      ]) {
        const res = await egress(egressPort, bad);
        expect(res.status, bad).toBe(400);
        expect(await res.json()).toMatchObject({ type: 'urn:knbot:problem:malformed_typing', status: 400 });
      }
      expect(telegram.requests).toHaveLength(1);
    } finally {
      await g.close();
    }
  });
});

describe('keeping an indicator up while the bot works', () => {
  const actions = () => telegram.requests.filter((r) => r.path.endsWith('/sendChatAction') && r.body?.chat_id === 42).length;

  it('shows it again as the platform lets it lapse, until the answer is there', async () => {
    telegram.requests.length = 0;
    const typing = new PlatformTyping({ context: () => egressContext(telegram.url), timeoutSeconds: () => 30, log: () => {}, refreshMs: { telegram: 100 } });
    let answered = false;
    try {
      typing.keepShowing('telegram', 'echo', TG, { conversation: { id: '42' }, messageId: '1' }, async () => answered);
      await waitFor(() => actions() >= 3, 'the indicator shown three times');
      answered = true;
      await new Promise((r) => setTimeout(r, 150));
      const settled = actions();
      await new Promise((r) => setTimeout(r, 400));
      expect(actions()).toBe(settled);
    } finally {
      typing.close();
    }
  });

  it('stops at the bot\'s timeout, answered or not', async () => {
    telegram.requests.length = 0;
    const typing = new PlatformTyping({ context: () => egressContext(telegram.url), timeoutSeconds: () => 0.35, log: () => {}, refreshMs: { telegram: 100 } });
    try {
      typing.keepShowing('telegram', 'echo', TG, { conversation: { id: '42' }, messageId: '2' }, async () => false);
      await new Promise((r) => setTimeout(r, 900));
      // The first, then at most the refreshes that fit in 350 ms; none after.
      const shown = actions();
      expect(shown).toBeGreaterThanOrEqual(1);
      expect(shown).toBeLessThanOrEqual(4);
      await new Promise((r) => setTimeout(r, 300));
      expect(actions()).toBe(shown);
    } finally {
      typing.close();
    }
  });

  it('shows Slack nothing, and LINE once for the whole timeout', async () => {
    const typing = new PlatformTyping({ context: (p) => egressContext(p === 'line' ? line.url : slackApi.url), timeoutSeconds: () => 30, log: () => {}, refreshMs: {} });
    const before = line.requests.length;
    try {
      typing.keepShowing('line', 'echo', LN, { conversation: { id: LINE_USER }, messageId: '3' }, async () => false);
      await waitFor(() => line.requests.length > before, 'the loading animation');
      await new Promise((r) => setTimeout(r, 300));
      expect(line.requests.slice(before).filter((r) => r.path.endsWith('/chat/loading/start'))).toHaveLength(1);
      expect(line.requests.slice(before)[0]!.body).toMatchObject({ chatId: LINE_USER, loadingSeconds: 30 });
    } finally {
      typing.close();
    }
  });
});
