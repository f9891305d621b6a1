import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatReplyEvent } from '../../../eventing/chat.ts';
import { validateCloudEvent } from '../../../eventing/codec.ts';
import { wireId } from '../../../gateway/platforms/buttons.ts';
import { deliverSlackReply, handleSlackWebhook } from '../../../gateway/platforms/slack.ts';
import { type ReplyHandle, WebhookError, type WebhookRequest } from '../../../gateway/platforms/types.ts';
import { type FakeSlack, startFakeSlack } from '../../fakes/platforms.ts';
import { overHttp, signSlack, webhook } from '../../fakes/signing.ts';
import { egressContext } from './context.ts';
import { SLACK_EXAMPLE } from './vectors.ts';

const SECRET = SLACK_EXAMPLE.secret;
const secrets = { signingSecret: SECRET, botToken: 'xoxb-test-token' };
const NOW = Number(SLACK_EXAMPLE.timestamp) * 1000;
const FORM = 'application/x-www-form-urlencoded';

function signed(body: string, contentType: string, ts = SLACK_EXAMPLE.timestamp, extra: Record<string, string> = {}): WebhookRequest {
  return webhook({ body, headers: { 'content-type': contentType, 'x-slack-request-timestamp': ts, 'x-slack-signature': signSlack(SECRET, ts, body), ...extra } });
}

function rejection(req: WebhookRequest, now = NOW): WebhookError {
  try {
    handleSlackWebhook(req, secrets, now);
  } catch (e) {
    expect(e).toBeInstanceOf(WebhookError);
    return e as WebhookError;
  }
  throw new Error('expected the webhook to be rejected');
}

const documented = () =>
  webhook({ body: SLACK_EXAMPLE.body, headers: { 'content-type': FORM, 'x-slack-request-timestamp': SLACK_EXAMPLE.timestamp, 'x-slack-signature': SLACK_EXAMPLE.signature } });

describe('Slack signature', () => {
  it("accepts Slack's documented slash command", () => {
    const { response, events } = handleSlackWebhook(documented(), secrets, NOW);
    expect(response).toEqual({ status: 200 });
    expect(events).toHaveLength(1);
  });

  it.each([
    ['300 s late', NOW + 300_000],
    ['300 s early', NOW - 300_000],
  ])('accepts a timestamp %s (the edge of the window)', (_, now) => {
    expect(handleSlackWebhook(documented(), secrets, now).events).toHaveLength(1);
  });

  it.each([
    ['stale by 301 s', NOW + 301_000],
    ['301 s in the future', NOW - 301_000],
  ])('rejects a timestamp %s with 401', (_, now) => {
    expect(rejection(documented(), now)).toMatchObject({ status: 401, code: 'stale_timestamp' });
  });

  const sig = SLACK_EXAMPLE.signature;
  const tamperedBody = SLACK_EXAMPLE.body.replace('text=&', 'text=x&');
  it.each([
    ['a tampered body byte', { body: tamperedBody }],
    ['a signature for another timestamp', { ts: '1531420619' }],
    ['a signature without the v0= prefix', { signature: sig.slice(3) }],
    ['a v1= prefix', { signature: `v1=${sig.slice(3)}` }],
    ['a truncated signature', { signature: sig.slice(0, -2) }],
    ['a signature with one extra digit', { signature: `${sig}0` }],
    ['one flipped digit', { signature: `${sig.slice(0, -1)}4` }],
    ['no signature', { signature: undefined }],
  ])('rejects %s with 401', (_, v: { body?: string; ts?: string; signature?: string | undefined }) => {
    const headers: Record<string, string> = { 'content-type': FORM, 'x-slack-request-timestamp': v.ts ?? SLACK_EXAMPLE.timestamp };
    const signature = 'signature' in v ? v.signature : sig;
    if (signature !== undefined) headers['x-slack-signature'] = signature;
    expect(rejection(webhook({ body: v.body ?? SLACK_EXAMPLE.body, headers }))).toMatchObject({ status: 401 });
  });

  it('accepts the signature in upper-case hex (the same MAC)', () => {
    const req = documented();
    req.headers['x-slack-signature'] = `v0=${sig.slice(3).toUpperCase()}`;
    expect(handleSlackWebhook(req, secrets, NOW).events).toHaveLength(1);
  });

  it('rejects a missing or non-numeric timestamp', () => {
    const req = documented();
    delete req.headers['x-slack-request-timestamp'];
    expect(rejection(req)).toMatchObject({ status: 401, code: 'missing_timestamp' });
    req.headers['x-slack-request-timestamp'] = '1531420618.5';
    expect(rejection(req)).toMatchObject({ status: 401 });
  });

  it('reads the headers whatever their case on the wire', async () => {
    const req = await overHttp({
      body: SLACK_EXAMPLE.body,
      headers: { 'Content-Type': FORM, 'X-SLACK-REQUEST-TIMESTAMP': SLACK_EXAMPLE.timestamp, 'x-Slack-Signature': SLACK_EXAMPLE.signature },
    });
    expect(handleSlackWebhook(req, secrets, NOW).events).toHaveLength(1);
  });

  it('refuses GET with 405 and works only with a signing secret', () => {
    expect(rejection(webhook({ method: 'GET' }))).toMatchObject({ status: 405 });
    expect(() => handleSlackWebhook(documented(), {}, NOW)).toThrow(expect.objectContaining({ status: 500, code: 'missing_secret' }));
  });
});

describe('Slack normalization', () => {
  it('turns the documented slash command into a message, with response_url only in the handle', () => {
    const [event] = handleSlackWebhook(documented(), secrets, NOW).events;
    const { raw, normalized, replyHandle, dedupeKey } = event!;
    expect(raw).toMatchObject({ type: 'dev.knbot.slack.command.webhook-collect', source: '/slack/T1DC2JH3J/unknown', id: '398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c:raw' });
    expect(normalized).toMatchObject({
      specversion: '1.0',
      type: 'dev.knbot.chat.message.received',
      source: '/slack/T1DC2JH3J/unknown',
      id: '398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
      subject: 'G8PSS9T3V',
      chatbot: 'echo',
      chatplatform: 'slack',
      chattenant: 'T1DC2JH3J',
      chatuser: 'U2CERLKJA',
      partitionkey: 'G8PSS9T3V',
      chatreplyby: new Date(NOW + 30 * 60_000).toISOString(),
      data: { text: '', user: { id: 'U2CERLKJA', name: 'roadrunner' }, conversation: { id: 'G8PSS9T3V' }, command: { name: '/webhook-collect' } },
    });
    expect(replyHandle).toEqual({ platform: 'slack', kind: 'slack.response_url', value: 'https://hooks.slack.com/commands/T1DC2JH3J/397700885554/96rGlfmibIGlgcZRskXaIFfN', expiresAt: NOW + 30 * 60_000, uses: 0, maxUses: 5 });
    expect(dedupeKey).toBe('/slack/T1DC2JH3J/unknown 398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c');
    const everything = JSON.stringify([raw, normalized]);
    expect(everything).not.toContain('96rGlfmibIGlgcZRskXaIFfN');
    expect(everything).not.toContain('xyzz0WbapA4vBCDEFasx0q6G'); // the legacy verification token
    expect(validateCloudEvent(raw)).toEqual([]);
    expect(validateCloudEvent(normalized!)).toEqual([]);
  });

  const envelope = (event: Record<string, unknown>) => ({
    token: 'ZZZZZZWSxiZZZ2yIvs3peJ',
    team_id: 'T123ABC456',
    api_app_id: 'A123ABC456',
    event,
    type: 'event_callback',
    event_id: 'Ev123ABC456',
    event_time: 1515449522,
    authorizations: [{ enterprise_id: null, team_id: 'T123ABC456', user_id: 'U0LAN0Z89', is_bot: true }],
  });

  it('answers url_verification with the challenge', () => {
    const body = JSON.stringify({ token: 'Jhj5dZrVaK7ZwHHjRyZWjbDl', challenge: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P', type: 'url_verification' });
    expect(handleSlackWebhook(signed(body, 'application/json'), secrets, NOW)).toEqual({
      response: { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: '3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P' },
      events: [],
    });
  });

  it('normalizes an app_mention without the leading mention of the bot', () => {
    const body = JSON.stringify(envelope({ type: 'app_mention', user: 'U123ABC456', text: '<@U0LAN0Z89> What is the hour of the pearl, <@U0G9QF9C6|pat>?', ts: '1515449522.000016', channel: 'C123ABC456', event_ts: '1515449522.000016' }));
    const [e] = handleSlackWebhook(signed(body, 'application/json'), secrets, NOW).events;
    expect(e!.raw).toMatchObject({ type: 'dev.knbot.slack.event.app_mention', time: '2018-01-08T22:12:02.000Z', source: '/slack/T123ABC456/A123ABC456' });
    expect(e!.raw.data).not.toHaveProperty('token');
    expect(e!.normalized).toMatchObject({
      id: 'Ev123ABC456',
      subject: 'C123ABC456',
      data: { text: 'What is the hour of the pearl, <@U0G9QF9C6|pat>?', user: { id: 'U123ABC456' }, mentions: [{ id: 'U0LAN0Z89' }, { id: 'U0G9QF9C6', name: 'pat' }] },
    });
    expect(e!.replyHandle).toBeUndefined();
  });

  it('keeps a thread in the subject and marks a Slack retry as a redelivery', () => {
    const body = JSON.stringify(envelope({ type: 'message', channel: 'C2147483705', user: 'U2147483697', text: 'Hello world', ts: '1355517524.000005', thread_ts: '1355517523.000005', channel_type: 'channel' }));
    const [e] = handleSlackWebhook(signed(body, 'application/json', SLACK_EXAMPLE.timestamp, { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' }), secrets, NOW).events;
    expect(e!.normalized).toMatchObject({ subject: 'C2147483705/1355517523.000005', chatredelivery: true, data: { text: 'Hello world', conversation: { id: 'C2147483705', thread: '1355517523.000005' } } });
  });

  it.each([
    ['a bot message', { type: 'message', subtype: 'bot_message', bot_id: 'B123', text: 'hi', channel: 'C1', ts: '1.1' }],
    ['our own reply', { type: 'message', user: 'U0LAN0Z89', bot_id: 'B0LAN0Z89', text: 'hi', channel: 'C1', ts: '1.1' }],
    ['an edit', { type: 'message', subtype: 'message_changed', channel: 'C1', ts: '1.2', message: { user: 'U1', text: 'x' } }],
    ['a reaction', { type: 'reaction_added', user: 'U1', reaction: 'thumbsup', item: { type: 'message', channel: 'C1', ts: '1.1' } }],
  ])('leaves %s raw only', (_, event) => {
    const [e] = handleSlackWebhook(signed(JSON.stringify(envelope(event)), 'application/json'), secrets, NOW).events;
    expect(e!.raw.type).toMatch(/^dev\.knbot\.slack\.event\./);
    expect(e!.normalized).toBeUndefined();
  });

  it('turns member_joined_channel into chat.member.joined', () => {
    const body = JSON.stringify(envelope({ type: 'member_joined_channel', user: 'W06GH7XHN', channel: 'C0698JE0H', channel_type: 'C', team: 'T024BE7LD' }));
    const [e] = handleSlackWebhook(signed(body, 'application/json'), secrets, NOW).events;
    expect(e!.normalized).toMatchObject({ type: 'dev.knbot.chat.member.joined', subject: 'C0698JE0H', data: { user: { id: 'W06GH7XHN' }, members: [{ id: 'W06GH7XHN' }] } });
  });

  it('turns block_actions into chat.action.invoked and keeps the response_url out of the events', () => {
    const payload = {
      type: 'block_actions',
      team: { id: 'T9TK3CUKW', domain: 'example' },
      user: { id: 'UA8RXUSPL', username: 'jtorrance', team_id: 'T9TK3CUKW' },
      api_app_id: 'AABA1ABCD',
      token: '9s8d9as89d8as9d8as989',
      container: { type: 'message', message_ts: '1548261231.000200', channel_id: 'CBR2V3XEX', is_ephemeral: false },
      trigger_id: '12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3',
      channel: { id: 'CBR2V3XEX', name: 'review-updates' },
      message: { type: 'message', text: 'Pick one', ts: '1548261231.000200' },
      response_url: 'https://hooks.slack.com/actions/AABA1ABCD/1232321423432/D09sSasdasdAS9091209',
      actions: [{ action_id: 'WaXA', block_id: '=qXel', text: { type: 'plain_text', text: 'View' }, value: 'click_me_123', type: 'button', action_ts: '1548426417.840180' }],
    };
    const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    const [e] = handleSlackWebhook(signed(body, FORM), secrets, NOW).events;
    expect(e!.normalized).toMatchObject({
      type: 'dev.knbot.chat.action.invoked',
      id: '12321423423.333649436676.d8c1bb837935619ccad0f624c448ffb3',
      source: '/slack/T9TK3CUKW/AABA1ABCD',
      subject: 'CBR2V3XEX',
      data: { text: 'click_me_123', user: { id: 'UA8RXUSPL', name: 'jtorrance' }, action: { type: 'button', id: 'WaXA', value: 'click_me_123' } },
    });
    expect(e!.replyHandle?.value).toBe(payload.response_url);
    expect(JSON.stringify([e!.raw, e!.normalized])).not.toMatch(/D09sSasdasdAS9091209|9s8d9as89d8as9d8as989/);
  });

  it('answers malformed bodies with 400', () => {
    expect(rejection(signed('{"type":', 'application/json'))).toMatchObject({ status: 400 });
    expect(rejection(signed('foo=bar', FORM))).toMatchObject({ status: 400 });
    expect(rejection(signed(JSON.stringify({ type: 'event_callback', event: { type: 'message' } }), 'application/json'))).toMatchObject({ status: 400 });
  });
});

describe('Slack egress', () => {
  let fake: FakeSlack;
  beforeAll(async () => {
    fake = await startFakeSlack(secrets.botToken);
  });
  afterAll(() => fake.close());

  const reply = (conversation: { id: string; thread?: string }, text = 'Hello back') =>
    chatReplyEvent({ id: 'Ev1', conversation }, { text }, '/bots/default/echo');

  it('posts with chat.postMessage, Bearer token and JSON, into the thread', async () => {
    fake.requests.length = 0;
    const out = await deliverSlackReply(reply({ id: 'C123', thread: '1355517523.000005' }), undefined, secrets, egressContext(fake.url));
    expect(out).toEqual({ ok: true, platformMessageId: expect.stringMatching(/^1700000000\.\d{6}$/) });
    expect(fake.requests).toHaveLength(1);
    const [r] = fake.requests;
    expect(r).toMatchObject({ method: 'POST', path: '/chat.postMessage', body: { channel: 'C123', text: 'Hello back', thread_ts: '1355517523.000005' } });
    expect(r!.headers.authorization).toBe('Bearer xoxb-test-token');
    expect(r!.headers['content-type']).toBe('application/json; charset=utf-8');
  });

  it('fails without retrying when Slack answers ok:false with a final error', async () => {
    fake.requests.length = 0;
    const out = await deliverSlackReply(reply({ id: 'C_MISSING' }), undefined, secrets, egressContext(fake.url));
    expect(out).toEqual({ ok: false, status: 200, reason: 'channel_not_found', retryable: false });
    expect(fake.requests).toHaveLength(1);
  });

  it('fails without retrying on a bad token', async () => {
    const out = await deliverSlackReply(reply({ id: 'C123' }), undefined, { ...secrets, botToken: 'xoxb-wrong' }, egressContext(fake.url));
    expect(out).toMatchObject({ ok: false, reason: 'invalid_auth', retryable: false });
  });

  it('waits as long as Retry-After says after a 429', async () => {
    fake.requests.length = 0;
    fake.fail({ status: 429, times: 1, retryAfter: 1 });
    const ctx = egressContext(fake.url);
    const out = await deliverSlackReply(reply({ id: 'C200' }), undefined, secrets, ctx);
    expect(out.ok).toBe(true);
    expect(fake.requests).toHaveLength(2);
    expect(ctx.retries).toEqual([{ attempt: 1, delayMs: 1000, status: 429, reason: 'ratelimited' }]);
    expect(fake.requests[1]!.at - fake.requests[0]!.at).toBeGreaterThanOrEqual(990);
  });

  it('answers through the response_url while it lasts, then falls back to chat.postMessage', async () => {
    fake.requests.length = 0;
    const now = Date.now();
    const handle: ReplyHandle = { platform: 'slack', kind: 'slack.response_url', value: fake.responseUrl(), expiresAt: now + 60_000, uses: 0, maxUses: 5 };
    const first = await deliverSlackReply(reply({ id: 'C300' }), handle, secrets, egressContext(fake.url));
    expect(first).toEqual({ ok: true, handle: { ...handle, uses: 1 } });
    expect(fake.requests[0]).toMatchObject({ path: expect.stringMatching(/^\/commands\//), body: { text: 'Hello back', response_type: 'in_channel' } });
    expect(fake.requests[0]!.headers.authorization).toBeUndefined();

    const expired = await deliverSlackReply(reply({ id: 'C300' }), { ...handle, expiresAt: now - 1 }, secrets, egressContext(fake.url));
    expect(expired).toMatchObject({ ok: true, handle: null, platformMessageId: expect.any(String) });
    expect(fake.requests[1]).toMatchObject({ path: '/chat.postMessage' });
  });

  it('falls back to chat.postMessage when Slack says the response_url expired', async () => {
    fake.requests.length = 0;
    const handle: ReplyHandle = { platform: 'slack', kind: 'slack.response_url', value: `${fake.url}/commands/T1/1/unknown`, expiresAt: Date.now() + 60_000, uses: 0, maxUses: 5 };
    const out = await deliverSlackReply(reply({ id: 'C301' }), handle, secrets, egressContext(fake.url));
    expect(out).toMatchObject({ ok: true, handle: null });
    expect(fake.requests.map((r) => r.path)).toEqual(['/commands/T1/1/unknown', '/chat.postMessage']);
  });

  it('never posts to a response_url outside Slack or the configured API', async () => {
    fake.requests.length = 0;
    const handle: ReplyHandle = { platform: 'slack', kind: 'slack.response_url', value: 'http://169.254.169.254/latest', expiresAt: Date.now() + 60_000, uses: 0, maxUses: 5 };
    const out = await deliverSlackReply(reply({ id: 'C302' }), handle, secrets, egressContext(fake.url));
    expect(out).toMatchObject({ ok: true, handle: null });
    expect(fake.requests.map((r) => r.path)).toEqual(['/chat.postMessage']);
  });

  it('refuses an empty reply without calling Slack', async () => {
    fake.requests.length = 0;
    expect(await deliverSlackReply(reply({ id: 'C1' }, '  '), undefined, secrets, egressContext(fake.url))).toMatchObject({ ok: false, retryable: false });
    expect(fake.requests).toHaveLength(0);
  });
});

describe('Slack reply buttons', () => {
  let fake: FakeSlack;
  beforeAll(async () => {
    fake = await startFakeSlack(secrets.botToken);
  });
  afterAll(() => fake.close());

  const withButtons = (buttons: unknown, text = 'Which size?') => chatReplyEvent({ id: 'Ev2', conversation: { id: 'C400', thread: '1355517523.000005' } }, { text, buttons }, '/bots/default/shop');
  const button = (text: string, action_id: string, value: string) => ({ type: 'button', text: { type: 'plain_text', text, emoji: true }, action_id, value });

  it('posts a section with the text and an actions block of buttons, keeping text as the fallback', async () => {
    fake.requests.length = 0;
    const out = await deliverSlackReply(withButtons(['Small', { label: 'Large', id: 'size_l', value: 'L' }]), undefined, secrets, egressContext(fake.url));
    expect(out.ok).toBe(true);
    expect(fake.requests[0]!.body).toEqual({
      channel: 'C400',
      thread_ts: '1355517523.000005',
      text: 'Which size?',
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', text: 'Which size?' } },
        { type: 'actions', elements: [button('Small', 'Small', 'Small'), button('Large', 'size_l', 'L')] },
      ],
    });
  });

  it('cuts labels to 75 characters and gives ids past 255 bytes as a digest', async () => {
    fake.requests.length = 0;
    const longId = 'x'.repeat(256);
    const out = await deliverSlackReply(withButtons([{ label: 'L'.repeat(80), id: longId }]), undefined, secrets, egressContext(fake.url));
    expect(out.ok).toBe(true);
    const [el] = fake.requests[0]!.body.blocks[1].elements;
    expect(el.text.text).toBe(`${'L'.repeat(74)}…`);
    expect(el.action_id).toBe(wireId('slack', longId));
    expect(el.action_id).toMatch(/^#/);
  });

  it('puts more than 25 buttons in further actions blocks, and long text in several sections', async () => {
    fake.requests.length = 0;
    const text = Array.from({ length: 120 }, (_, i) => `Line ${i} of a long answer about sizes.`).join('\n');
    const labels = Array.from({ length: 60 }, (_, i) => `Option ${i + 1}`);
    expect((await deliverSlackReply(withButtons(labels, text), undefined, secrets, egressContext(fake.url))).ok).toBe(true);
    const { blocks } = fake.requests[0]!.body;
    expect(blocks.map((b: { type: string }) => b.type)).toEqual(['section', 'section', 'actions', 'actions', 'actions']);
    expect(blocks.slice(0, 2).map((b: { text: { text: string } }) => b.text.text).join('\n')).toBe(text);
    expect(blocks.slice(2).map((b: { elements: unknown[] }) => b.elements.length)).toEqual([25, 25, 10]);
  });

  it('puts the buttons on the last message when the text takes several', async () => {
    fake.requests.length = 0;
    const text = `${'a'.repeat(39_990)} ${'b'.repeat(100)}`;
    expect((await deliverSlackReply(withButtons(['OK'], text), undefined, secrets, egressContext(fake.url))).ok).toBe(true);
    expect(fake.requests.map((r) => [r.body.text.length, r.body.blocks?.at(-1)?.type])).toEqual([
      [39_990, undefined],
      [100, 'actions'],
    ]);
  });

  it('sends the blocks to a response_url too', async () => {
    fake.requests.length = 0;
    const handle: ReplyHandle = { platform: 'slack', kind: 'slack.response_url', value: fake.responseUrl(), expiresAt: Date.now() + 60_000, uses: 0, maxUses: 5 };
    expect((await deliverSlackReply(withButtons(['Yes', 'No']), handle, secrets, egressContext(fake.url))).ok).toBe(true);
    expect(fake.requests[0]!.body).toEqual({
      text: 'Which size?',
      response_type: 'in_channel',
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', text: 'Which size?' } },
        { type: 'actions', elements: [button('Yes', 'Yes', 'Yes'), button('No', 'No', 'No')] },
      ],
    });
  });

  it('sends the text alone when the buttons are malformed', async () => {
    fake.requests.length = 0;
    expect((await deliverSlackReply(withButtons([{ id: 'no-label' }]), undefined, secrets, egressContext(fake.url))).ok).toBe(true);
    expect(fake.requests[0]!.body).toEqual({ channel: 'C400', thread_ts: '1355517523.000005', text: 'Which size?' });
  });

  it('has a fake that refuses what Block Kit refuses', async () => {
    const post = (blocks: unknown) =>
      fetch(`${fake.url}/chat.postMessage`, { method: 'POST', headers: { authorization: `Bearer ${secrets.botToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ channel: 'C1', text: 'x', blocks }) }).then((r) => r.json());
    const actions = (n: number) => [{ type: 'actions', elements: Array.from({ length: n }, (_, i) => button(`b${i}`, `b${i}`, 'v')) }];
    expect(await post(actions(25))).toMatchObject({ ok: true });
    expect(await post(actions(26))).toMatchObject({ ok: false, error: 'invalid_blocks' });
    expect(await post([{ type: 'actions', elements: [button('x'.repeat(76), 'a', 'v')] }])).toMatchObject({ ok: false, error: 'invalid_blocks' });
    expect(await post([{ type: 'actions', elements: [button('a', 'same', 'v'), button('b', 'same', 'v')] }])).toMatchObject({ ok: false, error: 'invalid_blocks' });
    expect(await post([{ type: 'section', text: { type: 'mrkdwn', text: 'x'.repeat(3001) } }])).toMatchObject({ ok: false, error: 'invalid_blocks' });
  });
});

describe('a Slack button press', () => {
  it('comes back with the action_id as the id and the value', () => {
    const payload = {
      type: 'block_actions',
      team: { id: 'T1' },
      user: { id: 'U1', username: 'ann' },
      api_app_id: 'A1',
      trigger_id: '1.2.3',
      channel: { id: 'C400' },
      message: { type: 'message', text: 'Which size?', ts: '1700000000.000001', thread_ts: '1355517523.000005' },
      actions: [{ type: 'button', action_id: 'size_l', value: 'L', text: { type: 'plain_text', text: 'Large' } }],
    };
    const [e] = handleSlackWebhook(signed(new URLSearchParams({ payload: JSON.stringify(payload) }).toString(), FORM), secrets, NOW).events;
    expect(e!.normalized).toMatchObject({ type: 'dev.knbot.chat.action.invoked', subject: 'C400/1355517523.000005', data: { text: 'L', action: { type: 'button', id: 'size_l', value: 'L' } } });
  });
});
