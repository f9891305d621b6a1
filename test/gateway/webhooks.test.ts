import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevHost } from '../../cli/dev/host.ts';
import { type FakeDiscord, type FakeLine, type FakePlatform, type FakeSlack, startFakeDiscord, startFakeLine, startFakeSlack, startFakeTelegram, startFakeWhatsApp } from '../fakes/platforms.ts';
import { RFC8032_TEST1, signDiscord, signHub, signLine, signSlack } from '../fakes/signing.ts';
import { waitFor } from '../pod.ts';
import { ROOT } from '../shared.ts';

// Every platform's webhook into `knbot dev`, to a bot that takes 5 s to start from zero: each is
// acknowledged inside its platform's deadline, and the bot's reply reaches that platform's (fake) API.

const SECRETS = {
  SLACK_SIGNING_SECRET: 'slack-signing-secret',
  SLACK_BOT_TOKEN: 'xoxb-test',
  TELEGRAM_SECRET_TOKEN: 'tg-secret_token',
  TELEGRAM_BOT_TOKEN: '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw',
  DISCORD_PUBLIC_KEY: RFC8032_TEST1.publicKey,
  DISCORD_APPLICATION_ID: '1180000000000000000',
  DISCORD_BOT_TOKEN: 'discord-bot-token',
  LINE_CHANNEL_SECRET: '0123456789abcdef0123456789abcdef',
  LINE_CHANNEL_ACCESS_TOKEN: 'line-access-token',
  WHATSAPP_APP_SECRET: 'whatsapp-app-secret',
  WHATSAPP_VERIFY_TOKEN: 'verify-me',
  WHATSAPP_ACCESS_TOKEN: 'wa-access-token',
  WHATSAPP_PHONE_NUMBER_ID: '106540352242922',
};
/** Each platform's deadline for an answer (DESIGN §1). */
const DEADLINE_MS = { slack: 3000, telegram: 3000, discord: 3000, line: 2000, whatsapp: 5000 };

let slack: FakeSlack;
let telegram: FakePlatform;
let discord: FakeDiscord;
let line: FakeLine;
let whatsapp: FakePlatform;
let host: DevHost;
let url: string;
const work = mkdtempSync(join(tmpdir(), 'knbot-hooks-'));

beforeAll(async () => {
  [slack, telegram, discord, line, whatsapp] = await Promise.all([
    startFakeSlack(SECRETS.SLACK_BOT_TOKEN),
    startFakeTelegram(SECRETS.TELEGRAM_BOT_TOKEN, ['1111111']),
    startFakeDiscord(SECRETS.DISCORD_APPLICATION_ID, SECRETS.DISCORD_BOT_TOKEN),
    startFakeLine(SECRETS.LINE_CHANNEL_ACCESS_TOKEN),
    startFakeWhatsApp(SECRETS.WHATSAPP_ACCESS_TOKEN, SECRETS.WHATSAPP_PHONE_NUMBER_ID),
  ]);
  const env = {
    ...process.env,
    ...SECRETS,
    SLOWSTART_MS: '5000',
    KNBOT_SLACK_API_URL: slack.url,
    KNBOT_TELEGRAM_API_URL: telegram.url,
    KNBOT_DISCORD_API_URL: discord.url,
    KNBOT_LINE_API_URL: line.url,
    KNBOT_WHATSAPP_API_URL: whatsapp.url,
    KNBOT_DEV_SCALE_DOWN_DELAY: '60s',
  };
  host = new DevHost({ root: join(ROOT, 'test', 'fixtures', 'hooks-project'), knbotRoot: ROOT, port: 0, stateDir: join(work, 'state'), env, log: (m, f) => process.env.DEBUG_HOOKS && console.log(m, f) });
  ({ url } = await host.start());
}, 60_000);

afterAll(async () => {
  await host?.close();
  await Promise.all([slack, telegram, discord, line, whatsapp].map((f) => f?.close()));
  rmSync(work, { recursive: true, force: true });
});

async function post(path: string, body: string, headers: Record<string, string>): Promise<{ status: number; ms: number; text: string }> {
  const t0 = performance.now();
  const res = await fetch(`${url}${path}`, { method: 'POST', headers, body });
  const text = await res.text();
  return { status: res.status, ms: performance.now() - t0, text };
}

const nowSeconds = () => String(Math.floor(Date.now() / 1000));

function slackMessage(eventId: string, text: string) {
  return JSON.stringify({
    token: 'unused',
    team_id: 'T0001',
    api_app_id: 'A0001',
    type: 'event_callback',
    event_id: eventId,
    event_time: Math.floor(Date.now() / 1000),
    event: { type: 'message', channel: 'C0001', user: 'U0001', text, ts: '1700000000.000100', channel_type: 'channel' },
  });
}

const slackHeaders = (body: string, extra: Record<string, string> = {}) => {
  const ts = nowSeconds();
  return { 'content-type': 'application/json', 'x-slack-request-timestamp': ts, 'x-slack-signature': signSlack(SECRETS.SLACK_SIGNING_SECRET, ts, body), ...extra };
};

describe('webhooks, with the bot starting from zero (5 s init)', () => {
  it('acknowledges every platform inside its deadline, and each reply reaches that platform', async () => {
    expect(host.scaler('slowstart')!.snapshot().instances).toHaveLength(0);
    const slackBody = slackMessage('Ev0001', 'hi from slack');
    const tgBody = JSON.stringify({ update_id: 10000, message: { date: 1441645532, chat: { id: 1111111, type: 'private', first_name: 'T' }, message_id: 1365, from: { id: 1111111, first_name: 'T' }, text: 'hi from telegram' } });
    const dcTs = nowSeconds();
    const dcBody = JSON.stringify({
      application_id: SECRETS.DISCORD_APPLICATION_ID,
      channel_id: '1190000000000000000',
      data: { id: '1200000000000000000', name: 'ask', type: 1, options: [{ name: 'question', type: 3, value: 'hi from discord' }] },
      guild_id: '1170000000000000000',
      id: '175928847299117063',
      member: { user: { id: '1160000000000000000', username: 'alice' }, roles: [], permissions: '0' },
      token: 'interaction-token-abc',
      type: 2,
      version: 1,
    });
    const lineBody = JSON.stringify({
      destination: 'Uxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
      events: [{ replyToken: 'nHuyWiB7yP5Zw52FIkcQobQuGDXCTA', type: 'message', mode: 'active', timestamp: Date.now(), source: { type: 'user', userId: 'U4af4980629000000000000000000000' }, webhookEventId: '01FZ74A0TDDPYRVKNK77XKC3ZR', deliveryContext: { isRedelivery: false }, message: { id: '444573844083572737', type: 'text', quoteToken: 'q', text: 'hi from line' } }],
    });
    const waBody = JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [{ id: '102290129340398', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '15550783881', phone_number_id: SECRETS.WHATSAPP_PHONE_NUMBER_ID }, contacts: [{ profile: { name: 'Sheena' }, wa_id: '16505551234' }], messages: [{ from: '16505551234', id: 'wamid.TEST1', timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: 'hi from whatsapp' } }] } }] }],
    });
    const answers = await Promise.all([
      post('/hooks/slack/slowstart', slackBody, slackHeaders(slackBody)),
      post('/hooks/telegram/slowstart', tgBody, { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': SECRETS.TELEGRAM_SECRET_TOKEN }),
      post('/hooks/discord/slowstart', dcBody, { 'content-type': 'application/json', 'x-signature-timestamp': dcTs, 'x-signature-ed25519': signDiscord(RFC8032_TEST1.secretKey, dcTs, dcBody) }),
      post('/hooks/line/slowstart', lineBody, { 'content-type': 'application/json', 'x-line-signature': signLine(SECRETS.LINE_CHANNEL_SECRET, lineBody) }),
      post('/hooks/whatsapp/slowstart', waBody, { 'content-type': 'application/json', 'x-hub-signature-256': signHub(SECRETS.WHATSAPP_APP_SECRET, waBody) }),
    ]);
    const [s, t, d, l, w] = answers;
    for (const a of answers) expect(a.status, a.text).toBe(200);
    // Acknowledged while the bot is still starting (its init takes 5 s): nothing waited for it.
    expect(host.scaler('slowstart')!.snapshot().instances.filter((i) => i.state === 'ready')).toHaveLength(0);
    expect(s!.ms).toBeLessThan(DEADLINE_MS.slack);
    expect(t!.ms).toBeLessThan(DEADLINE_MS.telegram);
    expect(d!.ms).toBeLessThan(DEADLINE_MS.discord);
    expect(l!.ms).toBeLessThan(DEADLINE_MS.line);
    expect(w!.ms).toBeLessThan(DEADLINE_MS.whatsapp);
    expect(JSON.parse(d!.text)).toEqual({ type: 5 });

    const sent = (fake: FakePlatform, text: string) => fake.requests.some((r) => JSON.stringify(r.body ?? '').includes(text));
    await waitFor(() => sent(slack, 'echo: hi from slack'), 'the Slack reply', 30_000);
    await waitFor(() => sent(telegram, 'echo: hi from telegram'), 'the Telegram reply', 30_000);
    await waitFor(() => sent(discord, 'echo: hi from discord'), 'the Discord follow-up', 30_000);
    await waitFor(() => sent(line, 'echo: hi from line'), 'the LINE reply', 30_000);
    await waitFor(() => sent(whatsapp, 'echo: hi from whatsapp'), 'the WhatsApp message', 30_000);
    // Telegram showed the bot typing while it started, before its reply was sent.
    const tgCalls = telegram.requests.map((r) => `${r.path.split('/').pop()} ${r.body?.action ?? r.body?.text}`);
    const typingAt = tgCalls.indexOf('sendChatAction typing');
    expect(typingAt, JSON.stringify(tgCalls)).toBeGreaterThanOrEqual(0);
    expect(typingAt, JSON.stringify(tgCalls)).toBeLessThan(tgCalls.indexOf('sendMessage echo: hi from telegram'));
    expect(slack.requests.find((r) => r.path === '/chat.postMessage')!.headers.authorization).toBe(`Bearer ${SECRETS.SLACK_BOT_TOKEN}`);
    expect(line.requests.find((r) => JSON.stringify(r.body).includes('echo: hi from line'))!.path).toBe('/v2/bot/message/reply');
    expect(host.scaler('slowstart')!.snapshot().instances.length).toBeGreaterThan(0);
  }, 90_000);

  it('acknowledges a Slack retry of an accepted event and does not deliver it twice', async () => {
    const body = slackMessage('Ev0002', 'only once');
    expect((await post('/hooks/slack/slowstart', body, slackHeaders(body))).status).toBe(200);
    const retry = await post('/hooks/slack/slowstart', body, slackHeaders(body, { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' }));
    expect(retry.status).toBe(200);
    await waitFor(() => slack.requests.some((r) => r.body?.text === 'echo: only once'), 'the reply', 20_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(slack.requests.filter((r) => r.body?.text === 'echo: only once')).toHaveLength(1);
  }, 30_000);

  it('streams a reply into Slack: posted at the first words, edited as it grows, made whole at the end', async () => {
    const body = JSON.stringify({
      token: 'unused',
      team_id: 'T0001',
      api_app_id: 'A0001',
      type: 'event_callback',
      event_id: 'EvStream1',
      event_time: Math.floor(Date.now() / 1000),
      event: { type: 'message', channel: 'CSTREAM', user: 'U0001', text: 'count', ts: '1700000000.000200', channel_type: 'channel' },
    });
    expect((await post('/hooks/slack/streamer', body, slackHeaders(body))).status).toBe(200);
    const calls = () => slack.requests.filter((r) => r.body?.channel === 'CSTREAM');
    await waitFor(() => calls().some((r) => r.path === '/chat.update' && r.body.text === 'one two three four'), 'the message made whole', 30_000).catch((e) => {
      throw new Error(`${e.message}: ${JSON.stringify(calls().map((r) => [r.path, r.body]))} ${JSON.stringify(slack.requests.slice(-3).map((r) => [r.path, r.body]))}`);
    });
    const [first, ...rest] = calls();
    expect(first!.path).toBe('/chat.postMessage');
    // Posted before the whole reply was written, then only edited: one message in the channel.
    expect(first!.body.text).not.toBe('one two three four');
    expect('one two three four'.startsWith(first!.body.text)).toBe(true);
    expect(rest.every((r) => r.path === '/chat.update')).toBe(true);
    // Edits at most about once a second (the platform's bound), not one per piece plus the final one.
    expect(rest.length).toBeLessThanOrEqual(3);
  }, 60_000);

  /** An update for the streamer bot on Telegram: its reply is posted at the first words, then edited until whole. */
  async function expectStreamedToTelegram(update: Record<string, unknown>): Promise<void> {
    const from = telegram.requests.length;
    const body = JSON.stringify(update);
    expect((await post('/hooks/telegram/streamer', body, { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': SECRETS.TELEGRAM_SECRET_TOKEN })).status).toBe(200);
    const calls = () => telegram.requests.slice(from).filter((r) => /\/(sendMessage|editMessageText)$/.test(r.path) && (r.body?.text ?? '').startsWith('one'));
    await waitFor(() => calls().some((r) => r.path.endsWith('/editMessageText') && r.body.text === 'one two three four'), 'the Telegram message made whole', 30_000);
    const [first, ...rest] = calls();
    expect(first!.path).toMatch(/\/sendMessage$/);
    expect(first!.body.text).not.toBe('one two three four');
    expect(rest.every((r) => r.path.endsWith('/editMessageText'))).toBe(true);
  }

  it('streams a reply into Telegram the same way (sendMessage, then editMessageText)', async () => {
    await expectStreamedToTelegram({ update_id: 20001, message: { date: 1441645532, chat: { id: 1111111, type: 'private', first_name: 'T' }, message_id: 2001, from: { id: 1111111, first_name: 'T' }, text: 'count' } });
  }, 60_000);

  it('streams the reply to a button pressed in Telegram too', async () => {
    await expectStreamedToTelegram({
      update_id: 20002,
      callback_query: { id: 'cq-stream', from: { id: 1111111, first_name: 'T' }, message: { message_id: 2002, date: 1441645533, chat: { id: 1111111, type: 'private' }, text: 'Count?' }, chat_instance: '-1', data: 'count' },
    });
  }, 60_000);

  it('refuses bad signatures with 401 and unknown channels with 404, storing nothing', async () => {
    const body = slackMessage('Ev0003', 'forged');
    // The streaming tests' last deliveries may still be in flight: start from an empty queue.
    await waitFor(() => host.state().pending === 0, 'the earlier deliveries to finish', 30_000);
    const forged = await post('/hooks/slack/slowstart', body, { ...slackHeaders(body), 'x-slack-signature': signSlack('wrong-secret', nowSeconds(), body) });
    expect(forged.status).toBe(401);
    const stale = await post('/hooks/slack/slowstart', body, { 'content-type': 'application/json', 'x-slack-request-timestamp': String(Math.floor(Date.now() / 1000) - 600), 'x-slack-signature': signSlack(SECRETS.SLACK_SIGNING_SECRET, Math.floor(Date.now() / 1000) - 600, body) });
    expect(stale.status).toBe(401);
    expect((await post('/hooks/slack/nobody', body, slackHeaders(body))).status).toBe(404);
    expect((await post('/hooks/myspace/slowstart', body, slackHeaders(body))).status).toBe(404);
    expect(host.state().pending).toBe(0);
    // A rightly signed message after them is stored and answered; none of the refused ones ever was.
    const signed = slackMessage('Ev0004', 'signed');
    expect((await post('/hooks/slack/slowstart', signed, slackHeaders(signed))).status).toBe(200);
    const replied = (text: string) => slack.requests.some((r) => JSON.stringify(r.body ?? '').includes(text));
    await waitFor(() => replied('echo: signed'), 'the reply to the signed message', 30_000);
    expect(replied('echo: forged')).toBe(false);
  }, 60_000);

  it('starts a trace for each platform message: the bot gets a traceparent, fresh for each', async () => {
    const tg = (updateId: number) =>
      JSON.stringify({ update_id: updateId, message: { date: 1441645532, chat: { id: 1111111, type: 'private', first_name: 'T' }, message_id: updateId, from: { id: 1111111, first_name: 'T' }, text: 'trace' } });
    const headers = { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': SECRETS.TELEGRAM_SECRET_TOKEN };
    expect((await post('/hooks/telegram/slowstart', tg(30001), headers)).status).toBe(200);
    expect((await post('/hooks/telegram/slowstart', tg(30002), headers)).status).toBe(200);
    const traces = () => telegram.requests.map((r) => /^trace: (\S+)$/.exec(String(r.body?.text ?? ''))?.[1]).filter((t) => t !== undefined);
    await waitFor(() => traces().length === 2, 'both answers', 30_000);
    for (const t of traces()) expect(t).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    const [a, b] = traces().map((t) => t!.split('-')[1]);
    expect(a).not.toBe(b);
  }, 60_000);

  it('answers the WhatsApp verification handshake and Slack url_verification', async () => {
    const ok = await fetch(`${url}/hooks/whatsapp/slowstart?hub.mode=subscribe&hub.verify_token=${SECRETS.WHATSAPP_VERIFY_TOKEN}&hub.challenge=1158201444`);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('1158201444');
    const wrong = await fetch(`${url}/hooks/whatsapp/slowstart?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1`);
    expect(wrong.status).toBe(403);
    const body = JSON.stringify({ token: 'x', challenge: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P', type: 'url_verification' });
    const verified = await post('/hooks/slack/slowstart', body, slackHeaders(body));
    expect(verified.status).toBe(200);
    expect(verified.text).toContain('3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P');
  });
});

describe('a platform retry while the first delivery is still being stored', () => {
  it('is asked to come back (503), not acknowledged as a duplicate, and goes through once the first gave up', async () => {
    const { createServer } = await import('node:http');
    const { Gateway } = await import('../../gateway/server.ts');
    // A broker that holds the first request without answering, then takes everything.
    let held: import('node:http').ServerResponse | undefined;
    const received: string[] = [];
    const broker = createServer((req, res) => {
      req.resume();
      if (!held) {
        held = res;
        return;
      }
      received.push(String(req.headers['ce-type']));
      res.writeHead(202).end();
    });
    await new Promise<void>((r) => broker.listen(0, '127.0.0.1', () => r()));
    const gateway = new Gateway({
      brokerUrl: `http://127.0.0.1:${(broker.address() as { port: number }).port}/`,
      bots: () => [{ name: 'slowstart', namespace: 'default' }],
      auth: { open: true },
      channels: (bot, platform) => (bot === 'slowstart' && platform === 'slack' ? { signingSecret: SECRETS.SLACK_SIGNING_SECRET, botToken: SECRETS.SLACK_BOT_TOKEN } : undefined),
    });
    const { port } = await gateway.start(0);
    try {
      const body = slackMessage('Ev0100', 'stored once');
      const hook = () => fetch(`http://127.0.0.1:${port}/hooks/slack/slowstart`, { method: 'POST', headers: slackHeaders(body), body });
      const first = hook();
      await waitFor(() => held, 'the broker to hold the first request');
      const retry = await hook();
      expect(retry.status).toBe(503);
      expect(((await retry.json()) as { type: string }).type).toBe('urn:knbot:problem:in_progress');
      // The first attempt fails (the broker breaks off): nothing was acknowledged, nothing is claimed.
      held!.socket!.destroy();
      expect((await first).status).toBe(503);
      const again = await hook();
      expect(again.status).toBe(200);
      expect(received.filter((t) => t === 'dev.knbot.chat.message.received')).toHaveLength(1);
      // And now it is a duplicate: acknowledged, not stored again.
      expect((await hook()).status).toBe(200);
      expect(received.filter((t) => t === 'dev.knbot.chat.message.received')).toHaveLength(1);
    } finally {
      await gateway.close();
      broker.closeAllConnections();
      await new Promise<void>((r) => broker.close(() => r()));
    }
  });
});
