import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatChunkEvent, chatReplyEvent } from '../../eventing/chat.ts';
import { PlatformStreams } from '../../gateway/platform-stream.ts';
import { deliverDiscordReply } from '../../gateway/platforms/discord.ts';
import { splitText } from '../../gateway/platforms/egress.ts';
import type { ReplyHandle } from '../../gateway/platforms/types.ts';
import { MemoryGatewayStore } from '../../gateway/store.ts';
import { type FakeDiscord, type FakeSlack, startFakeDiscord, startFakeSlack } from '../fakes/platforms.ts';
import { egressContext } from './platforms/context.ts';

const secrets = { publicKey: '00'.repeat(32), applicationId: '1180000000000000000', botToken: 'discord-bot-token' };
const CHANNEL = '1190000000000000000';
const SOURCE = '/bots/default/writer';

/** About 4,500 characters of prose, sentences and paragraphs, so pieces break where a person would. */
const LONG = Array.from({ length: 92 }, (_, i) => `Sentence ${i + 1} says Knative scales the bot to zero${i % 8 === 7 ? '.\n' : '. '}`)
  .join('')
  .trimEnd();

function chunksOf(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

describe('a reply streamed to a Discord interaction past 2,000 characters', () => {
  let discord: FakeDiscord;
  beforeAll(async () => {
    discord = await startFakeDiscord(secrets.applicationId, secrets.botToken);
  });
  afterAll(() => discord.close());

  function setup(fetchOverride?: typeof fetch) {
    let t = 1_700_000_000_000;
    const token = discord.interactionToken();
    const message = { id: `int-${token.slice(-8)}`, conversation: { id: CHANNEL } };
    const handles = new Map<string, ReplyHandle>([
      [message.id, { platform: 'discord', kind: 'discord.interaction', value: token, expiresAt: Date.now() + 600_000, uses: 0, maxUses: Number.MAX_SAFE_INTEGER, editOriginal: true }],
    ]);
    const streams = new PlatformStreams({
      store: new MemoryGatewayStore(),
      context: () => egressContext(discord.url, fetchOverride ? { fetch: fetchOverride, retry: { maxAttempts: 1 } } : {}),
      handle: async (_p, _b, id) => handles.get(id),
      keepHandle: async (_p, _b, id, handle) => void handles.set(id, handle),
      log: () => {},
      // Each chunk comes a second after the last: every one of them may edit.
      now: () => (t += 1000),
    });
    const chunk = (text: string, index: number) => streams.chunk(chatChunkEvent(message, text, index, SOURCE), 'discord', 'writer', secrets);
    const finish = () => streams.finish(chatReplyEvent(message, { text: LONG }, SOURCE), 'discord', 'writer', secrets);
    return { token, message, handles, chunk, finish };
  }

  const calls = (token: string) => discord.requests.filter((r) => r.path.includes(token)).map((r) => ({ method: r.method, to: r.path.split(token)[1]!, content: String(r.body?.content) }));

  it('keeps piece 1 in the original response and pieces 2 and 3 in two follow-ups, edited by their ids', async () => {
    const pieces = splitText(LONG, 2000);
    expect(LONG.length).toBeGreaterThan(4400);
    expect(pieces).toHaveLength(3);
    const { token, message, handles, chunk, finish } = setup();
    for (const [i, text] of chunksOf(LONG.slice(0, 4000), 250).entries()) await chunk(text, i);
    // While streaming, past 2,000 characters the text already went on in a follow-up.
    expect(discord.interaction(token).followups.length).toBeGreaterThanOrEqual(1);
    await chunk(LONG.slice(4000), 99);
    expect(await finish()).toBe(true);

    expect(discord.interaction(token)).toEqual({ original: pieces[0], followups: [expect.objectContaining({ content: pieces[1] }), expect.objectContaining({ content: pieces[2] })] });
    const made = calls(token);
    // Two follow-ups created, never more: no piece posted twice.
    expect(made.filter((c) => c.method === 'POST')).toHaveLength(2);
    // The original is only ever written with the reply's beginning, never with a later piece.
    const toOriginal = made.filter((c) => c.to === '/messages/@original');
    expect(toOriginal.length).toBeGreaterThan(1);
    for (const c of toOriginal) expect(LONG.startsWith(c.content)).toBe(true);
    // Follow-ups are edited by their own ids.
    const ids = discord.interaction(token).followups.map((f) => f.id);
    for (const c of made.filter((c) => c.method === 'PATCH' && c.to !== '/messages/@original')) expect(ids).toContain(c.to.replace('/messages/', ''));
    // A later reply to the same message is a follow-up: the placeholder is gone.
    expect(handles.get(message.id)!.editOriginal).toBe(false);
    const later = await deliverDiscordReply(chatReplyEvent(message, { text: 'One more thing.' }, SOURCE), handles.get(message.id), secrets, egressContext(discord.url));
    expect(later.ok).toBe(true);
    expect(calls(token).at(-1)).toEqual({ method: 'POST', to: '', content: 'One more thing.' });
    expect(discord.interaction(token).original).toBe(pieces[0]);
  });

  it('goes on where it stopped when the final reply fails part-way, posting no piece twice', async () => {
    const pieces = splitText(LONG, 2000);
    let posts = 0;
    const flaky: typeof fetch = (input, init) => {
      // The second follow-up's creation breaks off once.
      if (init?.method === 'POST' && ++posts === 2) return Promise.reject(new TypeError('fetch failed'));
      return fetch(input, init);
    };
    const { token, chunk, finish } = setup(flaky);
    await chunk(LONG.slice(0, 1500), 0);
    await expect(finish()).rejects.toThrow();
    expect(discord.interaction(token).followups.map((f) => f.content)).toEqual([pieces[1]]);
    // The broker delivers the reply again.
    expect(await finish()).toBe(true);
    expect(discord.interaction(token)).toEqual({ original: pieces[0], followups: [expect.objectContaining({ content: pieces[1] }), expect.objectContaining({ content: pieces[2] })] });
    expect(calls(token).filter((c) => c.method === 'POST').map((c) => c.content)).toEqual([pieces[1], pieces[2]]);
  });
});

describe('a streamed reply with buttons', () => {
  let slack: FakeSlack;
  beforeAll(async () => {
    slack = await startFakeSlack('xoxb-stream');
  });
  afterAll(() => slack.close());

  function setup(fetchOverride?: typeof fetch) {
    let t = 1_700_000_000_000;
    const message = { id: `Ev-${Math.random()}`, conversation: { id: 'C500' } };
    const streams = new PlatformStreams({
      store: new MemoryGatewayStore(),
      context: () => egressContext(slack.url, fetchOverride ? { fetch: fetchOverride, retry: { maxAttempts: 1 } } : {}),
      handle: async () => undefined,
      keepHandle: async () => {},
      log: () => {},
      now: () => (t += 1000),
    });
    const secrets = { botToken: 'xoxb-stream' };
    const chunk = (text: string, index: number) => streams.chunk(chatChunkEvent(message, text, index, SOURCE), 'slack', 'shop', secrets);
    const finish = (text: string) => streams.finish(chatReplyEvent(message, { text, buttons: ['Small', 'Large'] }, SOURCE), 'slack', 'shop', secrets);
    return { chunk, finish };
  }
  const actions = { type: 'actions', elements: ['Small', 'Large'].map((l) => ({ type: 'button', text: { type: 'plain_text', text: l, emoji: true }, action_id: l, value: l })) };

  it('gets its buttons with the final edit, the message whole', async () => {
    slack.requests.length = 0;
    const { chunk, finish } = setup();
    await chunk('Which', 0);
    await chunk(' size?', 1);
    expect(await finish('Which size? Pick one.')).toBe(true);
    expect(slack.requests.map((r) => [r.path, r.body.text, r.body.blocks])).toEqual([
      ['/chat.postMessage', 'Which', undefined],
      ['/chat.update', 'Which size?', undefined],
      ['/chat.update', 'Which size? Pick one.', [{ type: 'section', text: { type: 'mrkdwn', text: 'Which size? Pick one.' } }, actions]],
    ]);
  });

  it('is edited for its buttons alone when the stream already showed the whole text, and only once', async () => {
    slack.requests.length = 0;
    const { chunk, finish } = setup();
    await chunk('Which size?', 0);
    expect(await finish('Which size?')).toBe(true);
    // The broker delivers the final reply again: nothing more to do.
    expect(await finish('Which size?')).toBe(true);
    expect(slack.requests.map((r) => [r.path, r.body.blocks?.length])).toEqual([
      ['/chat.postMessage', undefined],
      ['/chat.update', 2],
    ]);
  });

  it('gets its buttons when the broker retries a final edit that failed', async () => {
    slack.requests.length = 0;
    let updates = 0;
    const flaky: typeof fetch = (input, init) => (String(input).endsWith('/chat.update') && ++updates === 1 ? Promise.reject(new TypeError('fetch failed')) : fetch(input, init));
    const { chunk, finish } = setup(flaky);
    await chunk('Which size?', 0);
    await expect(finish('Which size?')).rejects.toThrow();
    expect(await finish('Which size?')).toBe(true);
    expect(slack.requests.filter((r) => r.path === '/chat.update').map((r) => r.body.blocks?.at(-1))).toEqual([actions]);
  });
});
