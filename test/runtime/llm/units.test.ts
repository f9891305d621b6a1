import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../../runtime/llm/breaker.ts';
import { costUsd, priceFor } from '../../../runtime/llm/cost.ts';
import { LlmConfigError } from '../../../runtime/llm/errors.ts';
import { TokenBucket } from '../../../runtime/llm/limits.ts';
import { classifyStatus, retryAfterMs, retryDelayMs } from '../../../runtime/llm/retry.ts';
import { resolveLlmSettings } from '../../../runtime/llm/settings.ts';
import { SseParser } from '../../../runtime/llm/sse.ts';

describe('SseParser', () => {
  const stream = 'data: {"a":1}\r\n\r\n: a comment\n\nevent: error\ndata: line one\ndata: line two\n\ndata: [DONE]\r\r';

  it('reads events whatever the pieces the text comes in', () => {
    const want = [
      { event: 'message', data: '{"a":1}', id: undefined },
      { event: 'error', data: 'line one\nline two', id: undefined },
      { event: 'message', data: '[DONE]', id: undefined },
    ];
    for (let cut = 0; cut <= stream.length; cut++) {
      const p = new SseParser();
      expect([...p.push(stream.slice(0, cut)), ...p.push(stream.slice(cut))], `cut at ${cut}`).toEqual(want);
    }
    const p = new SseParser();
    expect([...stream].flatMap((c) => p.push(c))).toEqual(want);
  });

  it('drops an event the stream did not finish, and takes one space after the colon only', () => {
    const p = new SseParser();
    expect(p.push('data:  two spaces\n\ndata: unfinished\n')).toEqual([{ event: 'message', data: ' two spaces', id: undefined }]);
  });
});

describe('retries', () => {
  const headers = (h: Record<string, string>) => new Headers(h);

  it.each([
    [{ 'retry-after': '2' }, 2000],
    [{ 'retry-after': '0.5' }, 500],
    [{ 'retry-after-ms': '150', 'retry-after': '9' }, 150],
    [{ 'retry-after': new Date(Date.UTC(2030, 0, 1, 0, 0, 3)).toUTCString() }, 3000],
    [{ 'retry-after': 'soon' }, undefined],
    [{}, undefined],
  ])('reads Retry-After %j as %s ms', (h, ms) => {
    expect(retryAfterMs(headers(h), Date.UTC(2030, 0, 1))).toBe(ms);
  });

  it('waits a random share of base·2^(n-1), capped, or at least what the endpoint asked', () => {
    const o = { baseMs: 100, maxMs: 1000, retryAfterMs: undefined };
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs(n, { ...o, random: () => 0.999999 }))).toEqual([99, 199, 399, 799, 999]);
    expect(retryDelayMs(3, { ...o, random: () => 0 })).toBe(0);
    expect(retryDelayMs(1, { ...o, retryAfterMs: 5000, random: () => 0.5 })).toBe(5050);
  });

  it.each([
    [429, null, { retry: true, code: 'rate_limited', breaker: false }],
    [500, null, { retry: true, code: 'server_error', breaker: true }],
    [503, 'false', { retry: false, code: 'server_error', breaker: true }],
    [408, null, { retry: true, code: 'timeout', breaker: false }],
    [401, null, { retry: false, code: 'unauthorized', breaker: false }],
    [400, null, { retry: false, code: 'bad_request', breaker: false }],
    [400, 'true', { retry: true, code: 'bad_request', breaker: false }],
  ])('classifies %i (x-should-retry %s)', (status, should, want) => {
    expect(classifyStatus(status, should)).toEqual(want);
  });
});

describe('CircuitBreaker', () => {
  it('opens after the failures in a row, fails fast, lets one probe through half-open, closes on its success', () => {
    let now = 0;
    const changes: string[] = [];
    const b = new CircuitBreaker({ failures: 3, openMs: 1000, now: () => now, onChange: (f, t) => changes.push(`${f}>${t}`) });
    b.failure(false);
    b.failure(false);
    b.success(false);
    b.failure(false);
    b.failure(false);
    expect(b.state).toBe('closed');
    b.failure(false);
    expect(b.state).toBe('open');
    now = 400;
    expect(b.admit()).toEqual({ ok: false, retryAfterMs: 600 });
    now = 1000;
    expect(b.state).toBe('half-open');
    expect(b.admit()).toEqual({ ok: true, probe: true });
    expect(b.admit().ok).toBe(false);
    b.success(true);
    expect([b.state, b.admit()]).toEqual(['closed', { ok: true, probe: false }]);
    expect(changes).toEqual(['closed>open', 'open>half-open', 'half-open>closed']);
  });

  it('opens again when the probe fails, and frees the probe slot of an attempt with no verdict', () => {
    let now = 0;
    const b = new CircuitBreaker({ failures: 1, openMs: 100, now: () => now });
    b.failure(false);
    now = 100;
    const probe = b.admit();
    expect(probe).toEqual({ ok: true, probe: true });
    b.release(true);
    expect(b.admit()).toEqual({ ok: true, probe: true });
    b.failure(true);
    expect(b.state).toBe('open');
    now = 150;
    expect(b.admit()).toEqual({ ok: false, retryAfterMs: 50 });
  });
});

describe('TokenBucket', () => {
  it('spends, waits for refill in order, and settles the difference afterwards', async () => {
    let now = 0;
    const bucket = new TokenBucket(600, () => now);
    const signal = new AbortController().signal;
    await bucket.take(500, signal, Infinity);
    bucket.adjust(200);
    expect(bucket.level).toBe(-100);
    now = 6000;
    expect(bucket.level).toBe(-40);
    await expect(bucket.take(10, signal, now + 4000)).rejects.toMatchObject({ code: 'rate_limited', retryAfterMs: 5000 });
    expect(bucket.level).toBe(-40);
    bucket.adjust(-1000);
    expect(bucket.level).toBe(600);
  });
});

describe('cost', () => {
  const prices = { 'gpt-4o': { input: 2.5, output: 10 }, 'gpt-4o-mini': { input: 0.15, output: 0.6 } };

  it('prices dated model names by their longest known prefix', () => {
    expect(priceFor(prices, 'gpt-4o-mini-2024-07-18')).toEqual(prices['gpt-4o-mini']);
    expect(priceFor(prices, 'gpt-4o-2024-08-06')).toEqual(prices['gpt-4o']);
    expect(priceFor(prices, 'llama3')).toBeUndefined();
    expect(costUsd({ inputTokens: 1_000_000, outputTokens: 500_000, estimated: false }, prices['gpt-4o-mini'])).toBeCloseTo(0.45, 10);
  });
});

describe('resolveLlmSettings', () => {
  it('takes the bot config over the environment, and the key from the variable it names', () => {
    const s = resolveLlmSettings(
      { llm: { baseUrl: 'http://model.internal/v1/', apiKey: { env: 'MY_KEY' }, model: 'm', concurrency: 2 } },
      { OPENAI_BASE_URL: 'http://elsewhere/v1', OPENAI_API_KEY: 'sk-env', MY_KEY: 'sk-mine' },
    );
    expect(s).toMatchObject({ baseUrl: 'http://model.internal/v1', apiKey: 'sk-mine', model: 'm', concurrency: 2, maxAttempts: 4 });
    expect(resolveLlmSettings({}, { OPENAI_BASE_URL: 'http://elsewhere/v1', OPENAI_API_KEY: 'sk-env' })).toMatchObject({ baseUrl: 'http://elsewhere/v1', apiKey: 'sk-env' });
    expect(resolveLlmSettings({}, {})).toMatchObject({ baseUrl: 'https://api.openai.com/v1', apiKey: undefined });
  });

  it.each([
    [{ llm: { apiKey: 'sk-literal' } }, 'bot.config.llm.apiKey'],
    [{ llm: { baseUrl: 'ftp://x' } }, 'bot.config.llm.baseUrl'],
    [{ llm: { maxAttempts: 0 } }, 'bot.config.llm.maxAttempts'],
    [{ llm: { attemptTimeoutMs: 5000, totalTimeoutMs: 1000 } }, 'bot.config.llm.totalTimeoutMs'],
    [{ llm: { prices: { m: { input: -1 } } } }, 'bot.config.llm.prices.m.input'],
    [{ llm: { retries: 3 } }, 'bot.config.llm.retries'],
    [{ llm: [] }, 'bot.config.llm'],
  ])('rejects %j naming the field', (config, field) => {
    let err: unknown;
    try {
      resolveLlmSettings(config, {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LlmConfigError);
    expect(err).toMatchObject({ code: 'invalid_llm_config', field });
    expect(String((err as Error).message)).not.toContain('sk-literal');
  });
});
