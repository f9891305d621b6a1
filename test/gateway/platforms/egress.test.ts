import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatReplyEvent } from '../../../eventing/chat.ts';
import { validateCloudEvent } from '../../../eventing/codec.ts';
import { backoff, callApi, credentialKey, replyOutcomeEvent, retryAfter, splitText } from '../../../gateway/platforms/egress.ts';
import { apiBasesFromEnv } from '../../../gateway/platforms/index.ts';
import { RateLimiter } from '../../../gateway/platforms/rate-limit.ts';
import { type FakeSlack, startFakeSlack } from '../../fakes/platforms.ts';
import { egressContext } from './context.ts';

describe('retryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  it.each([
    ['delta-seconds', '120', undefined, 120_000],
    ['fractional seconds', '0.5', undefined, 500],
    ['an HTTP date', 'Wed, 01 Jan 2025 00:00:30 GMT', undefined, 30_000],
    ['an HTTP date in the past', 'Tue, 31 Dec 2024 23:59:00 GMT', undefined, 0],
    ["Telegram's parameters.retry_after", null, { ok: false, error_code: 429, parameters: { retry_after: 3 } }, 3000],
    ["Discord's retry_after", null, { message: 'You are being rate limited.', retry_after: 0.25, global: false }, 250],
    ['the longer of header and body', '1', { retry_after: 2.5 }, 2500],
    ['nothing', null, { ok: false }, undefined],
    ['garbage', 'soon', 'text', undefined],
    ['a negative number', '-5', undefined, undefined],
  ])('reads %s', (_, header, body, expected) => {
    expect(retryAfter(header, body, now)).toBe(expected);
  });
});

describe('backoff', () => {
  const policy = { baseDelayMs: 100, maxDelayMs: 1000 };
  it('doubles each attempt, with half of each step random, up to the cap', () => {
    expect([1, 2, 3].map((a) => backoff(a, policy, () => 0))).toEqual([50, 100, 200]);
    expect([1, 2, 3].map((a) => backoff(a, policy, () => 1))).toEqual([100, 200, 400]);
    expect(backoff(10, policy, () => 1)).toBe(1000);
    expect(backoff(10, policy, () => 0)).toBe(500);
  });
});

describe('RateLimiter', () => {
  it('lets a burst through, then spaces callers by the refill rate in arrival order', () => {
    let t = 0;
    const limiter = new RateLimiter(() => t);
    const bucket = [{ key: 'k', capacity: 2, perSecond: 1 }];
    expect([1, 2, 3, 4].map(() => limiter.reserve(bucket))).toEqual([0, 0, 1000, 2000]);
    t = 1500;
    expect(limiter.reserve(bucket)).toBe(1500);
    t = 10_000;
    expect(limiter.reserve(bucket)).toBe(0);
  });

  it('waits for the slowest of several buckets, and keeps buckets apart by key', () => {
    const t = 0;
    const limiter = new RateLimiter(() => t);
    const global = { key: 'bot', capacity: 30, perSecond: 30 };
    expect(limiter.reserve([global, { key: 'bot:chat:1', capacity: 1, perSecond: 1 }])).toBe(0);
    expect(limiter.reserve([global, { key: 'bot:chat:1', capacity: 1, perSecond: 1 }])).toBe(1000);
    expect(limiter.reserve([global, { key: 'bot:chat:2', capacity: 1, perSecond: 1 }])).toBe(0);
  });

  it('forgets buckets that refilled once there are many', () => {
    let t = 0;
    const limiter = new RateLimiter(() => t);
    for (let i = 0; i < 10_000; i++) limiter.reserve([{ key: `chat:${i}`, capacity: 1, perSecond: 1 }]);
    expect(limiter.size).toBe(10_000);
    t = 5000;
    limiter.reserve([{ key: 'new', capacity: 1, perSecond: 1 }]);
    expect(limiter.size).toBe(1);
  });

  it('really waits in acquire', async () => {
    const limiter = new RateLimiter();
    const bucket = [{ key: 'k', capacity: 1, perSecond: 10 }];
    const start = Date.now();
    await limiter.acquire(bucket);
    await limiter.acquire(bucket);
    expect(Date.now() - start).toBeGreaterThanOrEqual(95);
  });

  it('takes for a skippable call only what every bucket can spare beyond its reserve, and otherwise nothing', () => {
    const limiter = new RateLimiter(() => 0);
    const shared = { key: 'bot', capacity: 4, perSecond: 1, reserve: 2 };
    const chat = (n: number) => ({ key: `bot:typing:${n}`, capacity: 1, perSecond: 1 });
    expect(limiter.tryTake([shared, chat(1)])).toBe(true);
    // The conversation's bucket is empty: nothing is taken from the shared one either.
    expect(limiter.tryTake([shared, chat(1)])).toBe(false);
    expect(limiter.tryTake([shared, chat(2)])).toBe(true);
    // Two left in the shared bucket: they are its reserve, kept for callers that wait.
    expect(limiter.tryTake([shared, chat(3)])).toBe(false);
    expect([limiter.reserve([shared]), limiter.reserve([shared])]).toEqual([0, 0]);
    // Skipped calls leave no debt: the next waiting caller waits for its own token only.
    expect(limiter.reserve([shared])).toBe(1000);
    expect(limiter.tryTake([chat(3)])).toBe(true);
  });

  it('never keys a bucket by the credential itself', () => {
    const key = credentialKey('slack', 'xoxb-secret');
    expect(key).toMatch(/^slack:[0-9a-f]{16}$/);
    expect(key).not.toContain('secret');
  });
});

describe('callApi', () => {
  let slack: FakeSlack;
  let silent: http.Server;
  let silentUrl: string;
  beforeAll(async () => {
    slack = await startFakeSlack('xoxb-t');
    silent = http.createServer(() => {}); // accepts, never answers
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await slack.close();
    silent.closeAllConnections();
    await new Promise((resolve) => silent.close(resolve));
  });

  const post = (url: string) => ({ method: 'POST' as const, url, headers: { authorization: 'Bearer xoxb-t' }, body: { channel: 'C1', text: 'x' }, limits: [] });

  it('retries network errors a bounded number of times', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/chat.postMessage`;
    await new Promise((resolve) => closed.close(resolve));
    const ctx = egressContext(url, { retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 10 } });
    expect(await callApi(ctx, post(url))).toEqual({ ok: false, reason: 'network error (ECONNREFUSED)', retryable: true });
    expect(ctx.retries.map((r) => r.attempt)).toEqual([1, 2]);
  });

  it('abandons an attempt that takes too long', async () => {
    const ctx = egressContext(silentUrl, { retry: { maxAttempts: 2, attemptTimeoutMs: 100, baseDelayMs: 5, maxDelayMs: 10 } });
    const start = Date.now();
    expect(await callApi(ctx, post(silentUrl))).toMatchObject({ ok: false, reason: 'timeout', retryable: true });
    expect(Date.now() - start).toBeGreaterThanOrEqual(200);
    expect(Date.now() - start).toBeLessThan(2000);
  });

  it('does not wait for a Retry-After longer than the policy allows', async () => {
    slack.requests.length = 0;
    slack.fail({ status: 429, times: 1, retryAfter: 120 });
    const start = Date.now();
    const out = await callApi(egressContext(slack.url), post(`${slack.url}/chat.postMessage`));
    expect(out).toMatchObject({ ok: false, status: 429, retryable: true, retryAfterMs: 120_000 });
    expect(slack.requests).toHaveLength(1);
    expect(Date.now() - start).toBeLessThan(1000);
  });

  it('stops waiting when the signal aborts', async () => {
    slack.fail({ status: 500, times: 1 });
    const controller = new AbortController();
    const ctx = egressContext(slack.url, { signal: controller.signal, retry: { baseDelayMs: 10_000, maxDelayMs: 10_000 }, onRetry: () => controller.abort() });
    const start = Date.now();
    expect(await callApi(ctx, post(`${slack.url}/chat.postMessage`))).toEqual({ ok: false, reason: 'aborted', retryable: true });
    expect(Date.now() - start).toBeLessThan(1000);
  });
});

describe('splitText', () => {
  it.each([
    ['short text', 'hello', 10, ['hello']],
    ['at a line break', 'aaaa\nbbbbbb', 8, ['aaaa', 'bbbbbb']],
    ['at a space', 'aaaaa bbbbb', 8, ['aaaaa', 'bbbbb']],
    ['hard, when there is no break in the second half', 'a bbbbbbbbbbbb', 8, ['a bbbbbb', 'bbbbbb']],
    ['never inside a surrogate pair', `aaa${'😀'.repeat(3)}`, 4, ['aaa', '😀😀', '😀']],
    ['without an empty last piece when the break falls at the limit', 'aaaa bbbb ', 9, ['aaaa bbbb']],
    ['keeping its first cut as the text grows', 'aaaa bbbb cc', 9, ['aaaa bbbb', 'cc']],
  ])('splits %s', (_, text, max, pieces) => {
    const out = splitText(text, max);
    expect(out).toEqual(pieces);
    expect(out.every((p) => p.length <= max)).toBe(true);
  });
});

describe('replyOutcomeEvent', () => {
  const message = { specversion: '1.0', id: 'Ev1', source: '/slack/T1/A1', type: 'dev.knbot.chat.message.received', subject: 'C1', chatbot: 'echo', chatplatform: 'slack', chattenant: 'T1', chatuser: 'U1', partitionkey: 'C1' };
  const reply = chatReplyEvent({ id: 'Ev1', conversation: { id: 'C1' }, event: message }, { text: 'secret answer' }, '/bots/default/echo');

  it('reports a delivery with the platform message id and no text', () => {
    const e = replyOutcomeEvent(reply, { ok: true, platformMessageId: '1700000000.000100' }, '/gateway/default', 1_700_000_000_000);
    expect(e).toMatchObject({ type: 'dev.knbot.chat.reply.delivered', id: `${reply.id}:delivered`, subject: 'C1', chatbot: 'echo', chatplatform: 'slack', data: { replyId: reply.id, inReplyTo: 'Ev1', platformMessageId: '1700000000.000100' } });
    expect(JSON.stringify(e)).not.toContain('secret answer');
    expect(validateCloudEvent(e)).toEqual([]);
  });

  it('reports a failure with its reason', () => {
    const e = replyOutcomeEvent(reply, { ok: false, status: 404, reason: 'channel_not_found', retryable: false }, '/gateway/default', 0);
    expect(e).toMatchObject({ type: 'dev.knbot.chat.reply.failed', data: { reason: 'channel_not_found', retryable: false, status: 404 } });
  });
});

describe('apiBasesFromEnv', () => {
  it('uses the public APIs unless a KNBOT_*_API_URL is set', () => {
    expect(apiBasesFromEnv({ KNBOT_LINE_API_URL: 'http://127.0.0.1:9999/', KNBOT_SLACK_API_URL: '' })).toEqual({
      slack: 'https://slack.com/api',
      telegram: 'https://api.telegram.org',
      discord: 'https://discord.com/api/v10',
      line: 'http://127.0.0.1:9999',
      whatsapp: 'https://graph.facebook.com',
    });
  });
});
