import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatReplyEvent } from '../../../eventing/chat.ts';
import { validateCloudEvent } from '../../../eventing/codec.ts';
import { wireId } from '../../../gateway/platforms/buttons.ts';
import { BUTTON_MENU, deliverDiscordReply, handleDiscordWebhook } from '../../../gateway/platforms/discord.ts';
import { discordEditTarget } from '../../../gateway/platforms/stream-targets.ts';
import { type ReplyHandle, WebhookError, type WebhookRequest } from '../../../gateway/platforms/types.ts';
import { type FakeDiscord, startFakeDiscord } from '../../fakes/platforms.ts';
import { RFC8032_TEST1, overHttp, signDiscord, webhook } from '../../fakes/signing.ts';
import { egressContext } from './context.ts';

const secrets = { publicKey: RFC8032_TEST1.publicKey, applicationId: '1180000000000000000', botToken: 'MTE4MDAwMDAwMDAwMDAwMDAwMA.Gx1Y2z.bot-token' };
const TS = '1700000000';
const NOW = Number(TS) * 1000;
const PING_SIGNATURE = '1695961a47c91a1ec033b819b7e87e3dbc583dd0cee6d1fd0216f58ac87b6228ae531ddbf91fb7bc28d7edf7f08604da16f54624f38a6bc0614e4dc13cd47f0f';

function signed(body: unknown, ts = TS): WebhookRequest {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return webhook({ body: text, headers: { 'content-type': 'application/json', 'x-signature-timestamp': ts, 'x-signature-ed25519': signDiscord(RFC8032_TEST1.secretKey, ts, text) } });
}

function rejection(req: WebhookRequest, now = NOW): WebhookError {
  try {
    handleDiscordWebhook(req, secrets, now);
  } catch (e) {
    expect(e).toBeInstanceOf(WebhookError);
    return e as WebhookError;
  }
  throw new Error('expected the webhook to be rejected');
}

const ping = () => webhook({ body: '{"type":1}', headers: { 'x-signature-timestamp': TS, 'x-signature-ed25519': PING_SIGNATURE } });

// An APPLICATION_COMMAND (CHAT_INPUT) interaction in a guild, as Discord documents its fields.
const command = {
  app_permissions: '442368',
  application_id: '1180000000000000000',
  channel: { id: '1190000000000000000', name: 'general', type: 0 },
  channel_id: '1190000000000000000',
  data: { id: '1200000000000000000', name: 'ask', type: 1, options: [{ name: 'question', type: 3, value: 'what is knative?' }] },
  entitlements: [],
  guild_id: '1170000000000000000',
  guild_locale: 'en-US',
  // Discord's documented snowflake example: 175928847299117063 was made at 2016-04-30T11:18:25.796Z.
  id: '175928847299117063',
  locale: 'en-US',
  member: { user: { id: '1160000000000000000', username: 'alice', global_name: 'Alice', discriminator: '0' }, roles: [], permissions: '2248473465835073' },
  token: 'aW50ZXJhY3Rpb246MTIxMDAwMDAwMDAwMDAwMDAwMDpzZWNyZXQ',
  type: 2,
  version: 1,
};

describe('Discord signature', () => {
  it('answers the RFC-key PING vector with PONG and emits nothing', () => {
    expect(handleDiscordWebhook(ping(), secrets, NOW)).toEqual({ response: { status: 200, headers: { 'content-type': 'application/json' }, body: { type: 1 } }, events: [] });
  });

  it.each([
    ['a tampered body byte', { body: '{"type":2}' }],
    ['another timestamp', { ts: '1700000001' }],
    ['a truncated signature', { sig: PING_SIGNATURE.slice(0, -2) }],
    ['a signature with a flipped bit', { sig: `${PING_SIGNATURE.slice(0, -1)}e` }],
    ['no signature', { sig: '' }],
  ])('rejects %s with 401', (_, v: { body?: string; ts?: string; sig?: string }) => {
    const headers: Record<string, string> = { 'x-signature-timestamp': v.ts ?? TS };
    if (v.sig !== '') headers['x-signature-ed25519'] = v.sig ?? PING_SIGNATURE;
    expect(rejection(webhook({ body: v.body ?? '{"type":1}', headers }), Number(v.ts ?? TS) * 1000)).toMatchObject({ status: 401 });
  });

  it('rejects a signature made with another key', () => {
    const other = generateKeyPairSync('ed25519').privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(16).toString('hex');
    const req = ping();
    req.headers['x-signature-ed25519'] = signDiscord(other, TS, '{"type":1}');
    expect(rejection(req)).toMatchObject({ status: 401, code: 'bad_signature' });
  });

  it.each([
    ['stale', NOW + 301_000],
    ['in the future', NOW - 301_000],
  ])('rejects a validly signed request whose timestamp is %s', (_, now) => {
    expect(rejection(ping(), now)).toMatchObject({ status: 401, code: 'stale_timestamp' });
    expect(handleDiscordWebhook(ping(), secrets, now > NOW ? NOW + 299_000 : NOW - 299_000).events).toEqual([]);
  });

  it('reads the headers whatever their case on the wire', async () => {
    const req = await overHttp({ body: '{"type":1}', headers: { 'X-Signature-Ed25519': PING_SIGNATURE.toUpperCase(), 'X-SIGNATURE-TIMESTAMP': TS } });
    expect(handleDiscordWebhook(req, secrets, NOW).response.body).toEqual({ type: 1 });
  });

  it('fails loudly on a public key that is not 32 bytes of hex', () => {
    expect(() => handleDiscordWebhook(ping(), { ...secrets, publicKey: 'abc' }, NOW)).toThrow(expect.objectContaining({ status: 500, code: 'invalid_secret' }));
  });
});

describe('Discord normalization', () => {
  it('defers a slash command and normalizes it as a message, with the token only in the handle', () => {
    const { response, events } = handleDiscordWebhook(signed(command), secrets, NOW);
    expect(response).toEqual({ status: 200, headers: { 'content-type': 'application/json' }, body: { type: 5 } });
    const [e] = events;
    expect(e!.raw).toMatchObject({ type: 'dev.knbot.discord.interaction.application_command', id: '175928847299117063:raw' });
    expect(e!.raw.data).not.toHaveProperty('token');
    expect(e!.normalized).toMatchObject({
      type: 'dev.knbot.chat.message.received',
      id: '175928847299117063',
      source: '/discord/1170000000000000000/1180000000000000000',
      subject: '1190000000000000000',
      chattenant: '1170000000000000000',
      chatuser: '1160000000000000000',
      chatreplyby: new Date(NOW + 15 * 60_000).toISOString(),
      time: '2016-04-30T11:18:25.796Z',
      data: { text: 'what is knative?', user: { id: '1160000000000000000', name: 'Alice' }, conversation: { id: '1190000000000000000' }, command: { name: 'ask' } },
    });
    expect(e!.replyHandle).toEqual({ platform: 'discord', kind: 'discord.interaction', value: command.token, expiresAt: NOW + 15 * 60_000, uses: 0, maxUses: Number.MAX_SAFE_INTEGER, editOriginal: true });
    expect(JSON.stringify([e!.raw, e!.normalized])).not.toContain(command.token);
    expect(validateCloudEvent(e!.normalized!)).toEqual([]);
  });

  it('acknowledges a button without a placeholder and normalizes it as an action', () => {
    const button = { ...command, type: 3, data: { custom_id: 'vote_yes', component_type: 2 }, message: { id: '1220000000000000000', content: 'Vote?' } };
    const { response, events } = handleDiscordWebhook(signed(button), secrets, NOW);
    expect(response.body).toEqual({ type: 6 });
    expect(events[0]!.normalized).toMatchObject({ type: 'dev.knbot.chat.action.invoked', data: { action: { type: 'message_component', id: 'vote_yes' } } });
    expect(events[0]!.replyHandle?.editOriginal).toBe(false);
  });

  it('answers autocomplete with no choices and emits the raw event only', () => {
    const { response, events } = handleDiscordWebhook(signed({ ...command, type: 4 }), secrets, NOW);
    expect(response.body).toEqual({ type: 8, data: { choices: [] } });
    expect(events[0]!.normalized).toBeUndefined();
    expect(events[0]!.replyHandle).toBeUndefined();
  });

  it('reads a direct-message interaction, flattening subcommand options', () => {
    const dm = { ...command, guild_id: undefined, member: undefined, user: { id: '1160000000000000001', username: 'bob' }, data: { name: 'config', type: 1, options: [{ name: 'set', type: 1, options: [{ name: 'key', type: 3, value: 'lang' }, { name: 'value', type: 3, value: 'en' }] }] } };
    const [e] = handleDiscordWebhook(signed(dm), secrets, NOW).events;
    expect(e!.normalized).toMatchObject({ source: '/discord/@me/1180000000000000000', data: { text: 'set lang en', user: { id: '1160000000000000001', name: 'bob' } } });
    expect(e!.normalized).not.toHaveProperty('chattenant');
  });

  it('rejects unknown interaction types with 400', () => {
    expect(rejection(signed({ ...command, type: 99 }))).toMatchObject({ status: 400 });
  });
});

describe('Discord egress', () => {
  let fake: FakeDiscord;
  beforeAll(async () => {
    fake = await startFakeDiscord(secrets.applicationId, secrets.botToken);
  });
  afterAll(() => fake.close());

  const reply = (text = 'Knative runs serverless containers.') => chatReplyEvent({ id: command.id, conversation: { id: '1190000000000000000' } }, { text }, '/bots/default/echo');
  const handleFor = (token: string, editOriginal = true): ReplyHandle => ({ platform: 'discord', kind: 'discord.interaction', value: token, expiresAt: Date.now() + 60_000, uses: 0, maxUses: Number.MAX_SAFE_INTEGER, editOriginal });

  it('edits the deferred response first, then sends follow-ups, with no bot token and no pings', async () => {
    fake.requests.length = 0;
    const handle = handleFor(fake.interactionToken());
    const first = await deliverDiscordReply(reply(), handle, secrets, egressContext(fake.url));
    expect(first).toEqual({ ok: true, platformMessageId: expect.any(String), handle: { ...handle, uses: 1, editOriginal: false } });
    const second = await deliverDiscordReply(reply('And more.'), first.ok ? first.handle! : handle, secrets, egressContext(fake.url));
    expect(second.ok).toBe(true);
    expect(fake.requests.map((r) => `${r.method} ${r.path.replace(handle.value, '<token>')}`)).toEqual([
      `PATCH /webhooks/${secrets.applicationId}/<token>/messages/@original`,
      `POST /webhooks/${secrets.applicationId}/<token>`,
    ]);
    expect(fake.requests[0]!.body).toEqual({ content: 'Knative runs serverless containers.', allowed_mentions: { parse: [] } });
    expect(fake.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
  });

  it('waits for retry_after on a 429', async () => {
    fake.requests.length = 0;
    fake.fail({ status: 429, times: 1, retryAfter: 1 });
    const ctx = egressContext(fake.url);
    expect((await deliverDiscordReply(reply(), handleFor(fake.interactionToken(), false), secrets, ctx)).ok).toBe(true);
    expect(ctx.retries).toMatchObject([{ delayMs: 1000, status: 429 }]);
    expect(fake.requests[1]!.at - fake.requests[0]!.at).toBeGreaterThanOrEqual(990);
  });

  it('posts to the channel with the bot token once the interaction token expired', async () => {
    fake.requests.length = 0;
    const handle = { ...handleFor('gone'), expiresAt: Date.now() - 1 };
    const out = await deliverDiscordReply(reply(), handle, secrets, egressContext(fake.url));
    expect(out).toMatchObject({ ok: true, handle: null });
    expect(fake.requests[0]).toMatchObject({ method: 'POST', path: '/channels/1190000000000000000/messages' });
    expect(fake.requests[0]!.headers.authorization).toBe(`Bot ${secrets.botToken}`);
  });

  it('falls back to the channel when Discord no longer knows the token', async () => {
    fake.requests.length = 0;
    const out = await deliverDiscordReply(reply(), handleFor('unknown-token'), secrets, egressContext(fake.url));
    expect(out).toMatchObject({ ok: true, handle: null });
    expect(fake.requests.map((r) => r.path)).toEqual([`/webhooks/${secrets.applicationId}/unknown-token/messages/@original`, '/channels/1190000000000000000/messages']);
  });

  it('does not retry a 400 and splits text at 2000 characters', async () => {
    fake.requests.length = 0;
    const out = await deliverDiscordReply(reply('x'.repeat(2500)), handleFor(fake.interactionToken(), false), secrets, egressContext(fake.url));
    expect(out.ok).toBe(true);
    expect(fake.requests.map((r) => r.body.content.length)).toEqual([2000, 500]);
    const bad = await deliverDiscordReply(reply(), undefined, { ...secrets, botToken: 'wrong' }, egressContext(fake.url));
    expect(bad).toEqual({ ok: false, status: 401, reason: '401: Unauthorized', retryable: false });
  });
});

describe('Discord reply buttons', () => {
  let fake: FakeDiscord;
  beforeAll(async () => {
    fake = await startFakeDiscord(secrets.applicationId, secrets.botToken);
  });
  afterAll(() => fake.close());

  const withButtons = (buttons: unknown, text = 'Which size?') => chatReplyEvent({ id: command.id, conversation: { id: '1190000000000000000' } }, { text, buttons }, '/bots/default/shop');
  const handleFor = (token: string, editOriginal = true): ReplyHandle => ({ platform: 'discord', kind: 'discord.interaction', value: token, expiresAt: Date.now() + 60_000, uses: 0, maxUses: Number.MAX_SAFE_INTEGER, editOriginal });
  const primary = (label: string, custom_id: string) => ({ type: 2, style: 1, label, custom_id });

  it('edits the deferred response with the text and a row of primary buttons', async () => {
    fake.requests.length = 0;
    const out = await deliverDiscordReply(withButtons(['S', { label: 'L', id: 'size_l', value: 'large' }]), handleFor(fake.interactionToken()), secrets, egressContext(fake.url));
    expect(out.ok).toBe(true);
    expect(fake.requests[0]!.method).toBe('PATCH');
    expect(fake.requests[0]!.body).toEqual({ content: 'Which size?', allowed_mentions: { parse: [] }, components: [{ type: 1, components: [primary('S', 'S'), primary('L', 'size_l')] }] });
  });

  it('makes rows of five, cuts labels to 80 characters, and gives ids past 100 bytes as a digest', async () => {
    fake.requests.length = 0;
    const longId = `choice:${'x'.repeat(100)}`;
    const buttons = [...Array.from({ length: 11 }, (_, i) => `B${i + 1}`), { label: 'Q'.repeat(90), id: longId }];
    const out = await deliverDiscordReply(withButtons(buttons), handleFor(fake.interactionToken(), false), secrets, egressContext(fake.url));
    expect(out.ok).toBe(true);
    const { components } = fake.requests[0]!.body;
    expect(components.map((row: { components: unknown[] }) => row.components.length)).toEqual([5, 5, 2]);
    expect(components[2].components[1]).toEqual(primary(`${'Q'.repeat(79)}…`, wireId('discord', longId)));
  });

  it('offers more than 25 buttons as menus of 25 options, one a row', async () => {
    fake.requests.length = 0;
    const labels = Array.from({ length: 30 }, (_, i) => `Option ${i + 1}`);
    const out = await deliverDiscordReply(withButtons(labels), handleFor(fake.interactionToken(), false), secrets, egressContext(fake.url));
    expect(out.ok).toBe(true);
    const { components } = fake.requests[0]!.body;
    expect(components).toHaveLength(2);
    expect(components[0].components).toEqual([
      { type: 3, custom_id: `${BUTTON_MENU}0`, placeholder: 'Choose… (1–25)', options: labels.slice(0, 25).map((l) => ({ label: l, value: l })) },
    ]);
    expect(components[1].components[0]).toMatchObject({ custom_id: `${BUTTON_MENU}1`, placeholder: 'Choose… (26–30)', options: labels.slice(25).map((l) => ({ label: l, value: l })) });
  });

  it('puts the buttons on the last follow-up of a long reply, and on a channel message without a token', async () => {
    fake.requests.length = 0;
    expect((await deliverDiscordReply(withButtons(['OK'], 'x'.repeat(2500)), handleFor(fake.interactionToken(), false), secrets, egressContext(fake.url))).ok).toBe(true);
    expect(fake.requests.map((r) => [r.body.content.length, r.body.components?.length])).toEqual([
      [2000, undefined],
      [500, 1],
    ]);
    fake.requests.length = 0;
    expect((await deliverDiscordReply(withButtons(['OK']), undefined, secrets, egressContext(fake.url))).ok).toBe(true);
    expect(fake.requests[0]).toMatchObject({ path: '/channels/1190000000000000000/messages', body: { content: 'Which size?', components: [{ type: 1, components: [primary('OK', 'OK')] }] } });
  });

  it('adds the buttons to a streamed message with the edit that makes it whole', async () => {
    fake.requests.length = 0;
    const token = fake.interactionToken();
    const target = discordEditTarget(egressContext(fake.url), secrets.applicationId, handleFor(token));
    const id = await target.post('Which');
    await target.edit(id, 'Which size?', [{ label: 'S', id: 's', value: 'S' }]);
    expect(fake.requests.map((r) => [r.method, r.body.components])).toEqual([
      ['PATCH', undefined],
      ['PATCH', [{ type: 1, components: [primary('S', 's')] }]],
    ]);
  });

  it('sends the text alone when the buttons are malformed', async () => {
    fake.requests.length = 0;
    expect((await deliverDiscordReply(withButtons([{ label: 'a', id: 'x' }, { label: 'b', id: 'x' }]), undefined, secrets, egressContext(fake.url))).ok).toBe(true);
    expect(fake.requests[0]!.body).toEqual({ content: 'Which size?', allowed_mentions: { parse: [] } });
  });

  const row = (n: number, label = 'b') => ({ type: 1, components: Array.from({ length: n }, (_, i) => primary(label, `${label}${i}-${Math.random()}`)) });
  it.each([
    ['six rows', Array.from({ length: 6 }, () => row(1)), 'components: Must be between 1 and 5 in length.'],
    ['six buttons in a row', [row(6)], 'components.0.components: Must be between 1 and 5 in length.'],
    ['a label of 81 characters', [row(1, 'x'.repeat(81))], 'components.0.components.0.label: Must be 80 or fewer in length.'],
    ['a custom_id of 101 characters', [{ type: 1, components: [primary('a', 'x'.repeat(101))] }], 'components.0.components.0.custom_id: Must be between 1 and 100 in length.'],
    ['a custom_id used twice', [{ type: 1, components: [primary('a', 'same'), primary('b', 'same')] }], 'components.0.components.1.custom_id: Component custom id cannot be duplicated'],
  ])('has a fake that refuses %s, as Discord does', async (_, components, errors) => {
    const res = await fetch(`${fake.url}/channels/1190000000000000000/messages`, { method: 'POST', headers: { authorization: `Bot ${secrets.botToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ content: 'x', components }) });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ message: 'Invalid Form Body', code: 50035, errors });
  });
});

describe('a Discord button press', () => {
  it('comes back with the custom_id as the id', () => {
    const press = { ...command, type: 3, data: { custom_id: 'size_l', component_type: 2 }, message: { id: '1220000000000000000', content: 'Which size?' } };
    expect(handleDiscordWebhook(signed(press), secrets, NOW).events[0]!.normalized).toMatchObject({ data: { action: { type: 'message_component', id: 'size_l' } } });
  });

  it('comes back as the option chosen in a menu that stands in for buttons, and as the menu otherwise', () => {
    const menu = (custom_id: string, values: string[]) => ({ ...command, type: 3, data: { custom_id, component_type: 3, values }, message: { id: '1220000000000000000', content: 'Which?' } });
    expect(handleDiscordWebhook(signed(menu(`${BUTTON_MENU}1`, ['Option 27'])), secrets, NOW).events[0]!.normalized).toMatchObject({
      data: { text: 'Option 27', action: { type: 'message_component', id: 'Option 27', value: 'Option 27' } },
    });
    expect(handleDiscordWebhook(signed(menu('toppings', ['ham', 'olives'])), secrets, NOW).events[0]!.normalized).toMatchObject({
      data: { text: 'ham,olives', action: { type: 'message_component', id: 'toppings', value: 'ham,olives' } },
    });
  });
});
