import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EditScheduler, STREAM_POLICY, relayStream } from '../../../gateway/platforms/stream.ts';
import { discordEditTarget, StreamSendError, telegramEditTarget } from '../../../gateway/platforms/stream-targets.ts';
import type { ReplyHandle } from '../../../gateway/platforms/types.ts';
import { type FakeDiscord, type FakePlatform, startFakeDiscord, startFakeTelegram } from '../../fakes/platforms.ts';
import { egressContext } from './context.ts';

describe('EditScheduler', () => {
  it('posts the first words at once, then edits at most once per interval', () => {
    const s = new EditScheduler(1000, 100);
    expect(s.due(0)).toBeUndefined(); // nothing to show yet
    s.append('Hel');
    expect(s.due(0)).toBe(0);
    expect(s.take(0)).toEqual([{ kind: 'post', index: 0, text: 'Hel' }]);
    s.append('lo');
    expect(s.due(10)).toBeUndefined(); // the post is still in flight
    s.settled(50);
    expect(s.due(100)).toBe(950);
    expect(s.take(100)).toEqual([]);
    s.append(', world');
    expect(s.take(1050)).toEqual([{ kind: 'edit', index: 0, text: 'Hello, world' }]);
    s.settled(1100);
    expect(s.due(5000)).toBeUndefined(); // nothing changed since
  });

  it('finishes only when the final text is shown, and still keeps the interval for the last edit', () => {
    const s = new EditScheduler(1000, 100);
    s.append('a');
    s.take(0);
    s.settled(0);
    s.append('b');
    s.end();
    expect(s.finished).toBe(false);
    expect(s.due(300)).toBe(700);
    expect(s.take(1000)).toEqual([{ kind: 'edit', index: 0, text: 'ab' }]);
    expect(s.finished).toBe(false);
    s.settled(1001);
    expect(s.finished).toBe(true);
  });

  it('continues in a new message past the size limit', () => {
    const s = new EditScheduler(0, 10);
    s.append('aaaa bbbb');
    expect(s.take(0)).toEqual([{ kind: 'post', index: 0, text: 'aaaa bbbb' }]);
    s.settled(0);
    s.append(' cccc');
    // Cut at the space: the first message already shows its part.
    expect(s.take(1)).toEqual([{ kind: 'post', index: 1, text: 'cccc' }]);
    s.settled(1);

    const t = new EditScheduler(0, 10);
    t.append('aaaa bb');
    t.take(0);
    t.settled(0);
    t.append('bbbbbbb');
    // No break in the second half: the first message is filled up, the rest starts the second.
    expect(t.take(1)).toEqual([
      { kind: 'edit', index: 0, text: 'aaaa bbbbb' },
      { kind: 'post', index: 1, text: 'bbbb' },
    ]);
  });

  it('posts nothing while the text is only whitespace, and an empty stream finishes at once', () => {
    const s = new EditScheduler(1000, 100);
    s.append('  \n');
    expect(s.due(0)).toBeUndefined();
    s.end();
    expect(s.finished).toBe(true);
  });

  it('gives each platform a policy: edits for Slack, Telegram and Discord, one message for LINE and WhatsApp', () => {
    expect(Object.fromEntries(Object.entries(STREAM_POLICY).map(([p, v]) => [p, v.mode]))).toEqual({ slack: 'edit', telegram: 'edit', discord: 'edit', line: 'final', whatsapp: 'final' });
  });
});

async function* chunks(pieces: string[], gapMs: number): AsyncIterable<string> {
  for (const piece of pieces) {
    await delay(gapMs);
    yield piece;
  }
}

describe('relayStream', () => {
  let telegram: FakePlatform;
  let discord: FakeDiscord;
  beforeAll(async () => {
    telegram = await startFakeTelegram('1:tok', ['42']);
    discord = await startFakeDiscord('1180000000000000000', 'bot');
  });
  afterAll(async () => {
    await telegram.close();
    await discord.close();
  });

  it('streams to Telegram with sendMessage then editMessageText, no faster than its policy', async () => {
    telegram.requests.length = 0;
    const policy = STREAM_POLICY.telegram as { minIntervalMs: number; maxChars: number };
    const words = 'Knative scales this bot to zero when nobody talks to it, and back up when you do.'.split(/(?= )/);
    const target = telegramEditTarget(egressContext(telegram.url), '1:tok', { id: '42' });
    const out = await relayStream(chunks(words, 120), target, policy);
    expect(out).toEqual({ text: words.join(''), messageIds: [expect.stringMatching(/^\d+$/)] });
    const methods = telegram.requests.map((r) => r.path.split('/').pop());
    expect(methods[0]).toBe('sendMessage');
    expect(methods.slice(1).every((m) => m === 'editMessageText')).toBe(true);
    expect(telegram.requests.length).toBeLessThan(words.length);
    expect(telegram.requests.at(-1)!.body).toMatchObject({ chat_id: 42, message_id: Number(out.messageIds[0]), text: out.text });
    for (let i = 1; i < telegram.requests.length; i++) {
      expect(telegram.requests[i]!.at - telegram.requests[i - 1]!.at).toBeGreaterThanOrEqual(policy.minIntervalMs - 20);
    }
  });

  it('replaces the deferred Discord placeholder, then edits that message', async () => {
    discord.requests.length = 0;
    const handle: ReplyHandle = { platform: 'discord', kind: 'discord.interaction', value: discord.interactionToken(), expiresAt: Date.now() + 60_000, uses: 0, maxUses: 9, editOriginal: true };
    const target = discordEditTarget(egressContext(discord.url), '1180000000000000000', handle);
    const out = await relayStream(chunks(['one', ' two', ' three'], 60), target, { minIntervalMs: 100, maxChars: 2000 });
    expect(out.text).toBe('one two three');
    const calls = discord.requests.map((r) => `${r.method} ${r.path.split('/').slice(-2).join('/')}`);
    expect(calls[0]).toBe('PATCH messages/@original');
    expect(calls.slice(1).every((c) => c === `PATCH messages/${out.messageIds[0]}`)).toBe(true);
    expect(discord.requests.at(-1)!.body.content).toBe('one two three');
  });

  it('rejects with the platform error, carrying no text', async () => {
    const target = telegramEditTarget(egressContext(telegram.url), '1:tok', { id: '404' });
    const error = await relayStream(chunks(['secret words'], 1), target, { minIntervalMs: 10, maxChars: 4096 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StreamSendError);
    expect(error).toMatchObject({ status: 400, retryable: false, message: 'Bad Request: chat not found' });
  });

  it('rejects when the stream itself fails', async () => {
    async function* broken(): AsyncIterable<string> {
      yield 'partial';
      throw new Error('model went away');
    }
    const target = telegramEditTarget(egressContext(telegram.url), '1:tok', { id: '42' });
    await expect(relayStream(broken(), target, { minIntervalMs: 10, maxChars: 4096 })).rejects.toThrow('model went away');
  });
});
