import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatReplyEvent } from '../../eventing/chat.ts';
import type { CloudEvent } from '../../eventing/codec.ts';
import { webhookRoutes } from '../../gateway/hooks.ts';
import { rememberButtons, restoreAction } from '../../gateway/platform-buttons.ts';
import { wireId } from '../../gateway/platforms/buttons.ts';
import { MemoryGatewayStore } from '../../gateway/store.ts';
import { type FakePlatform, startFakeTelegram } from '../fakes/platforms.ts';
import { chatEgress } from './platforms/context.ts';

const secrets = { secretToken: 'tg-secret_token', botToken: '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw' };
const CHAT = '1111111';
const LONG_ID = 'order:2024-06-01:customer-4711:basket-0815:item-42:size-large:colour-blue';

/** A store whose button memory is broken: everything else works. */
class BrokenButtonStore extends MemoryGatewayStore {
  override async get(key: string): Promise<string | undefined> {
    if (key.startsWith('b:')) throw new Error('connection reset');
    return super.get(key);
  }
}

describe('button presses through the gateway', () => {
  let telegram: FakePlatform;
  let server: Server;
  let url: string;
  let store: MemoryGatewayStore;
  let broken = false;
  const sent: CloudEvent[] = [];
  const logs: [string, Record<string, unknown> | undefined][] = [];
  const log = (msg: string, fields?: Record<string, unknown>) => void logs.push([msg, fields]);
  const brokenStore = new BrokenButtonStore();

  beforeAll(async () => {
    telegram = await startFakeTelegram(secrets.botToken, [CHAT, '2222222']);
    store = new MemoryGatewayStore();
    const app = express();
    const routes = (s: MemoryGatewayStore) =>
      webhookRoutes({ store: s, send: async (e) => void sent.push(e), channels: (bot, platform) => (bot === 'shop' && platform === 'telegram' ? secrets : undefined), namespace: 'default', maxBodyBytes: 1 << 20, dedupeTtlMs: 60_000, log });
    const healthy = routes(store);
    const failing = routes(brokenStore);
    app.use((req, res, next) => (broken ? failing : healthy)(req, res, next));
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await telegram.close();
    await store.close();
    await brokenStore.close();
  });

  const egress = () => chatEgress({ platform: 'telegram', apiUrl: telegram.url, bot: 'shop', secrets, store, send: async (e) => void sent.push(e), log });

  const reply = (data: Record<string, unknown>, chat = CHAT) => ({
    ...chatReplyEvent({ id: `m-${Math.random()}`, conversation: { id: chat } }, { text: 'Buy it?', ...data }, '/bots/default/shop'),
    chatbot: 'shop',
    chatplatform: 'telegram',
  });

  let update = 50_000;
  async function press(callbackData: string, chat = CHAT): Promise<{ status: number; body: unknown; normalized: CloudEvent }> {
    const body = {
      update_id: ++update,
      callback_query: { id: `cq${update}`, from: { id: 42, first_name: 'Ann' }, message: { message_id: 8, date: 1700000000, chat: { id: Number(chat), type: 'private' }, text: 'Buy it?' }, chat_instance: '-1', data: callbackData },
    };
    const res = await fetch(`${url}/hooks/telegram/shop`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-telegram-bot-api-secret-token': secrets.secretToken }, body: JSON.stringify(body) });
    const normalized = sent.find((e) => e.id === String(update))!;
    return { status: res.status, body: await res.json(), normalized };
  }

  it('maps a press on an id too long for callback_data back to the bot’s id and value', async () => {
    telegram.requests.length = 0;
    expect(await egress()(reply({ buttons: [{ label: 'Buy', id: LONG_ID, value: 'buy-42' }, 'Skip'] }))).toBe('delivered');
    const keyboard = telegram.requests[0]!.body.reply_markup.inline_keyboard;
    expect(keyboard).toEqual([
      [
        { text: 'Buy', callback_data: wireId('telegram', LONG_ID) },
        { text: 'Skip', callback_data: 'Skip' },
      ],
    ]);

    const buy = await press(keyboard[0][0].callback_data);
    // The client's spinner stops: the webhook's answer is the answerCallbackQuery.
    expect(buy.body).toMatchObject({ method: 'answerCallbackQuery' });
    expect(buy.normalized).toMatchObject({ type: 'dev.knbot.chat.action.invoked', data: { text: 'Buy', action: { type: 'callback_query', id: LONG_ID, value: 'buy-42' } } });
    expect((await press('Skip')).normalized.data).toMatchObject({ text: 'Skip', action: { id: 'Skip', value: 'Skip' } });
  });

  it('leaves presses it did not send alone: unknown data, or another conversation', async () => {
    expect((await press('not-ours')).normalized.data).toMatchObject({ action: { id: 'not-ours', value: 'not-ours' } });
    const digest = wireId('telegram', LONG_ID);
    expect((await press(digest, '2222222')).normalized.data).toMatchObject({ action: { id: digest } });
  });

  it('acknowledges a press when the button memory fails, unmapped, and says so in the log', async () => {
    broken = true;
    try {
      const out = await press('Skip');
      expect(out.status).toBe(200);
      expect(out.normalized.data).toMatchObject({ action: { id: 'Skip' } });
      expect(logs.at(-1)).toEqual(['button press not mapped back', expect.objectContaining({ platform: 'telegram', bot: 'shop', error: 'connection reset' })]);
    } finally {
      broken = false;
    }
  });

  it('sends a reply with malformed buttons as text, logging the problem without the text', async () => {
    telegram.requests.length = 0;
    logs.length = 0;
    const event = reply({ text: 'a secret answer', buttons: [{ label: 'Yes' }, { label: 42 }] });
    expect(await egress()(event)).toBe('delivered');
    expect(telegram.requests[0]!.body).toEqual({ chat_id: Number(CHAT), text: 'a secret answer' });
    expect(logs).toEqual([['reply buttons left out', { platform: 'telegram', bot: 'shop', id: event.id, code: 'bad_button', path: 'buttons[1].label' }]]);
    expect(sent.at(-1)).toMatchObject({ type: 'dev.knbot.chat.reply.delivered' });
  });
});

describe('the button memory', () => {
  it('remembers the latest value of an id, per platform, bot and conversation', async () => {
    const store = new MemoryGatewayStore();
    await rememberButtons(store, 'discord', 'shop', 'C1', [{ label: 'Large', id: 'size', value: 'L' }]);
    await rememberButtons(store, 'discord', 'shop', 'C1', [{ label: 'Small', id: 'size', value: 'S' }]);
    const press = (bot: string, conversation: string) =>
      ({ specversion: '1.0', id: '1', source: '/d', type: 'dev.knbot.chat.action.invoked', data: { text: '', user: { id: 'u' }, conversation: { id: conversation }, action: { type: 'message_component', id: 'size' } } }) as CloudEvent;
    const mine = press('shop', 'C1');
    expect(await restoreAction(store, 'discord', 'shop', mine)).toBe(true);
    expect(mine.data).toMatchObject({ text: 'Small', action: { type: 'message_component', id: 'size', value: 'S' } });
    expect(await restoreAction(store, 'discord', 'other', press('other', 'C1'))).toBe(false);
    expect(await restoreAction(store, 'slack', 'shop', press('shop', 'C1'))).toBe(false);
    expect(await restoreAction(store, 'discord', 'shop', { ...press('shop', 'C1'), type: 'dev.knbot.chat.message.received' })).toBe(false);
    await store.close();
  });

  it('forgets after its time', async () => {
    let now = 0;
    const store = new MemoryGatewayStore({}, () => now);
    await rememberButtons(store, 'line', 'shop', 'U1', [{ label: 'Yes', id: 'y', value: 'yes' }], 1000);
    now = 1001;
    const press = { specversion: '1.0', id: '1', source: '/l', type: 'dev.knbot.chat.action.invoked', data: { text: 'y', user: { id: 'U1' }, conversation: { id: 'U1' }, action: { type: 'postback', id: 'y', value: 'y' } } } as CloudEvent;
    expect(await restoreAction(store, 'line', 'shop', press)).toBe(false);
    expect(press.data).toMatchObject({ action: { id: 'y', value: 'y' } });
    await store.close();
  });
});
