// The LLM client against the fake OpenAI-compatible server (cli/fake-llm), a real HTTP server on port 0:
// every failure mode the client handles, and what it counts.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeLlm } from '../../../cli/fake-llm/server.ts';
import { type CreateLlmOptions, type Llm, LlmError, createLlm } from '../../../runtime/llm/index.ts';
import { createLogger } from '../../../runtime/log.ts';
import { PodMetrics } from '../../../runtime/metrics.ts';
import { waitFor } from '../../pod.ts';

const fake = new FakeLlm({ tokenLatencyMs: 2, firstTokenMs: 5 });
let url: string;
beforeAll(async () => {
  url = await fake.start();
});
afterAll(() => fake.close());
afterEach(() => {
  fake.clearFaults();
  fake.configure({ tokenLatencyMs: 2, firstTokenMs: 5 });
  fake.requests.length = 0;
});

const PRICES = { 'gpt-4o-mini': { input: 0.15, output: 0.6 } };

function client(o: CreateLlmOptions & { lines?: string[] } = {}): { llm: Llm; metrics: PodMetrics; lines: string[] } {
  const lines = o.lines ?? [];
  const { lines: _, ...options } = o;
  const metrics = new PodMetrics('test-bot', () => 0);
  const log = createLogger({ level: 'debug', redact: true, write: (l) => void lines.push(l) }, { bot: 'test-bot' });
  const llm = createLlm(
    { config: { llm: { prices: PRICES } }, log, metrics },
    { env: { OPENAI_BASE_URL: url }, retryBaseDelayMs: 20, retryMaxDelayMs: 100, attemptTimeoutMs: 2000, totalTimeoutMs: 10_000, ...options },
  );
  return { llm, metrics, lines };
}

const ask = (content: string, context?: string) => ({
  messages: [...(context ? [{ role: 'system' as const, content: context }] : []), { role: 'user' as const, content }],
});

async function failure(p: Promise<unknown>): Promise<LlmError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(LlmError);
    return err as LlmError;
  }
  throw new Error('expected the call to fail');
}

async function drain(stream: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const p of stream) out.push(p);
  return out;
}

describe('answers', () => {
  it('streams the answer piece by piece as the endpoint sends it, with usage from the last chunk', async () => {
    fake.configure({ tokenLatencyMs: 30 });
    const { llm } = client();
    const stream = llm.stream(ask('How do bots scale to zero?', '[1] README.md › Scaling\nIdle bots scale to zero after the scale-down delay.'), { session: { id: 'c1' } });
    const seen: number[] = [];
    const pieces: string[] = [];
    for await (const p of stream) {
      pieces.push(p);
      seen.push(fake.requests[0]!.piecesSent);
    }
    const result = await stream.result;
    expect(pieces.length).toBeGreaterThan(5);
    // The first piece reached the reader before the endpoint had sent the rest.
    expect(seen[0]).toBeLessThan(pieces.length);
    expect(result.text).toBe(pieces.join(''));
    expect(result.text).toContain('Idle bots scale to zero after the scale-down delay. [1]');
    expect(result).toMatchObject({ finishReason: 'stop', model: 'gpt-4o-mini', attempts: 1, usage: { outputTokens: pieces.length, estimated: false } });
    expect(fake.requests[0]).toMatchObject({ stream: true, includeUsage: true, outcome: 'ok' });
  });

  it('answers a request that does not stream, and stops at maxTokens with finish reason length', async () => {
    const { llm } = client();
    const r = await llm.complete({ ...ask('hello there, tell me everything'), maxTokens: 3 });
    expect(r).toMatchObject({ finishReason: 'length', usage: { outputTokens: 3 }, attempts: 1 });
    expect(r.text.trim().split(/\s+/)).toHaveLength(3);
    expect(fake.requests[0]).toMatchObject({ stream: false });
  });

  it('sends the key as a bearer token; a 401 is not retried', async () => {
    const guarded = new FakeLlm({ apiKey: 'sk-right', tokenLatencyMs: 0, firstTokenMs: 0 });
    const base = await guarded.start();
    try {
      const ok = client({ env: { OPENAI_BASE_URL: base, OPENAI_API_KEY: 'sk-right' } }).llm;
      expect((await ok.complete(ask('hi'))).text).toContain('hi');
      const bad = client({ env: { OPENAI_BASE_URL: base, OPENAI_API_KEY: 'sk-wrong' } }).llm;
      const err = await failure(bad.complete(ask('hi')));
      expect(err).toMatchObject({ code: 'unauthorized', status: 401, attempts: 1 });
      expect(err.message).not.toContain('sk-wrong');
      expect(guarded.requests.map((r) => r.authorized)).toEqual([true, false]);
    } finally {
      await guarded.close();
    }
  });
});

describe('configuration', () => {
  it('warns at start-up when it would call OpenAI without a key', () => {
    expect(client({ env: {} }).lines.join('')).toContain('no API key for api.openai.com');
    expect(client({ env: { OPENAI_API_KEY: 'sk-x' } }).lines.join('')).not.toContain('no API key');
    expect(client().lines.join('')).not.toContain('no API key');
  });
});

describe('failures', () => {
  it('retries a 429 no sooner than its Retry-After', async () => {
    fake.inject({ status: 429, retryAfter: 1 });
    const { llm } = client();
    const r = await llm.complete(ask('hi'));
    expect(r.attempts).toBe(2);
    const [first, second] = fake.requests;
    expect(first).toMatchObject({ status: 429 });
    expect(second!.at - first!.endedAt!).toBeGreaterThanOrEqual(1000 - 5);
  });

  it('honours retry-after-ms too, and gives up at once when the wait would pass the total timeout', async () => {
    fake.inject({ status: 429, retryAfterMs: 150 });
    const { llm } = client();
    expect((await llm.complete(ask('hi'))).attempts).toBe(2);
    expect(fake.requests[1]!.at - fake.requests[0]!.endedAt!).toBeGreaterThanOrEqual(150 - 5);

    fake.inject({ status: 429, retryAfter: 30 });
    const t0 = Date.now();
    const err = await failure(client({ totalTimeoutMs: 3000 }).llm.complete(ask('hi')));
    expect(err).toMatchObject({ code: 'rate_limited', status: 429, attempts: 1, retryAfterMs: 30_000 });
    expect(err.message).toContain('would pass the total timeout');
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('retries a 500, then succeeds', async () => {
    fake.inject({ status: 500 });
    const { llm, lines } = client();
    const stream = llm.stream(ask('hi'));
    const text = (await drain(stream)).join('');
    expect(text).toContain('You said: "hi"');
    expect((await stream.result).attempts).toBe(2);
    expect(fake.requests.map((r) => r.status)).toEqual([500, 200]);
    expect(lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'llm retry')).toMatchObject({ code: 'server_error', status: 500, attempt: 1 });
  });

  it('stops after maxAttempts of 5xx, with the last error', async () => {
    fake.inject({ status: 503 }, 'always');
    const err = await failure(client({ maxAttempts: 3, breakerFailures: 10 }).llm.complete(ask('hi')));
    expect(err).toMatchObject({ code: 'server_error', status: 503, attempts: 3 });
    expect(fake.requests).toHaveLength(3);
  });

  it('does not retry a 400', async () => {
    fake.inject({ status: 400 });
    const err = await failure(client().llm.complete(ask('hi')));
    expect(err).toMatchObject({ code: 'bad_request', status: 400, attempts: 1 });
    expect(fake.requests).toHaveLength(1);
  });

  it('times out an attempt that gets no answer and retries it', async () => {
    fake.inject({ hang: true });
    const { llm } = client({ attemptTimeoutMs: 200 });
    const r = await llm.complete(ask('hi'));
    expect(r.attempts).toBe(2);
    await waitFor(() => fake.requests[0]!.outcome === 'gone', 'the hung request to be closed by the client');
  });

  it('fails with timeout when no attempt answers within the total timeout', async () => {
    fake.inject({ hang: true }, 'always');
    const t0 = Date.now();
    const err = await failure(client({ attemptTimeoutMs: 300, totalTimeoutMs: 700, breakerFailures: 10 }).llm.complete(ask('hi')));
    const took = Date.now() - t0;
    expect(err.code).toBe('timeout');
    expect(took).toBeGreaterThanOrEqual(600);
    expect(took).toBeLessThan(2500);
    expect(fake.requests.length).toBeGreaterThanOrEqual(2);
  });

  it('times out a stream that goes silent, and does not retry once text was passed on', async () => {
    fake.inject({ hangAfter: 3 });
    const { llm } = client({ attemptTimeoutMs: 250 });
    const pieces: string[] = [];
    let err: unknown;
    try {
      for await (const p of llm.stream(ask('tell me a long story about knbot please'))) pieces.push(p);
    } catch (e) {
      err = e;
    }
    expect(pieces).toHaveLength(3);
    expect(err).toMatchObject({ code: 'timeout', partial: true, attempts: 1 });
    expect(fake.requests).toHaveLength(1);
  });

  it('retries a stream cut off before its first piece', async () => {
    fake.inject({ dropAfter: 0 });
    const stream = client().llm.stream(ask('hi'));
    expect((await drain(stream)).join('')).toContain('You said');
    expect((await stream.result).attempts).toBe(2);
    expect(fake.requests[0]!.outcome).toBe('cut');
  });

  it('fails a network error after its attempts (nothing listening)', async () => {
    const gone = new FakeLlm();
    const base = await gone.start();
    await gone.close();
    const err = await failure(client({ env: { OPENAI_BASE_URL: base }, maxAttempts: 2 }).llm.complete(ask('hi')));
    expect(err).toMatchObject({ code: 'network', attempts: 2 });
    expect(err.message).toContain('ECONNREFUSED');
  });
});

describe('circuit breaker', () => {
  it('opens after failures in a row and fails fast without calling the endpoint', async () => {
    fake.inject({ status: 500 }, 'always');
    const { llm } = client({ maxAttempts: 1, breakerFailures: 2, breakerOpenMs: 60_000 });
    expect((await failure(llm.complete(ask('1')))).code).toBe('server_error');
    expect(llm.breaker).toBe('closed');
    expect((await failure(llm.complete(ask('2')))).code).toBe('server_error');
    expect(llm.breaker).toBe('open');
    const t0 = Date.now();
    const err = await failure(llm.complete(ask('3')));
    expect(err).toMatchObject({ code: 'circuit_open', attempts: 0 });
    expect(err.retryAfterMs).toBeGreaterThan(50_000);
    expect(Date.now() - t0).toBeLessThan(250);
    expect(fake.requests).toHaveLength(2);
  });

  it('stops retrying a call once the breaker opens under it', async () => {
    fake.inject({ status: 502 }, 'always');
    const { llm } = client({ maxAttempts: 5, breakerFailures: 2, breakerOpenMs: 60_000 });
    const err = await failure(llm.complete(ask('hi')));
    expect(err).toMatchObject({ code: 'circuit_open', attempts: 2 });
    expect(fake.requests).toHaveLength(2);
  });

  it('half-open: one probe goes through; its success closes the circuit', async () => {
    fake.inject({ status: 500 }, 'always');
    const { llm } = client({ maxAttempts: 1, breakerFailures: 1, breakerOpenMs: 300 });
    await failure(llm.complete(ask('down')));
    expect(llm.breaker).toBe('open');
    await waitFor(() => llm.breaker === 'half-open', 'the circuit to turn half-open');
    fake.clearFaults();
    // While the probe is in flight, other calls still fail fast.
    fake.configure({ firstTokenMs: 200 });
    const probe = llm.complete(ask('probe'));
    const other = await failure(llm.complete(ask('other')));
    expect(other.code).toBe('circuit_open');
    expect((await probe).text).toContain('probe');
    expect(llm.breaker).toBe('closed');
    expect((await llm.complete(ask('again'))).attempts).toBe(1);
    expect(fake.requests.map((r) => r.status)).toEqual([500, 200, 200]);
  });

  it('half-open: a failed probe opens the circuit again', async () => {
    fake.inject({ status: 500 }, 'always');
    const { llm, lines } = client({ maxAttempts: 1, breakerFailures: 1, breakerOpenMs: 200 });
    await failure(llm.complete(ask('down')));
    await waitFor(() => llm.breaker === 'half-open', 'half-open');
    expect((await failure(llm.complete(ask('probe')))).code).toBe('server_error');
    expect(llm.breaker).toBe('open');
    expect((await failure(llm.complete(ask('fast')))).code).toBe('circuit_open');
    expect(fake.requests).toHaveLength(2);
    const transitions = lines.map((l) => JSON.parse(l)).filter((l) => l.msg === 'llm circuit').map((l) => `${l.from}>${l.to}`);
    expect(transitions).toEqual(['closed>open', 'open>half-open', 'half-open>open']);
  });
});

describe('cancellation', () => {
  it('aborts mid-stream through the signal: the reader gets an aborted error and the request is closed', async () => {
    fake.configure({ tokenLatencyMs: 40 });
    const { llm, metrics } = client();
    const controller = new AbortController();
    const pieces: string[] = [];
    let err: unknown;
    try {
      for await (const p of llm.stream(ask('tell me a long story about scaling'), { signal: controller.signal, session: { id: 'c-cancel' } })) {
        pieces.push(p);
        if (pieces.length === 2) controller.abort(new Error('client went away'));
      }
    } catch (e) {
      err = e;
    }
    expect(pieces).toHaveLength(2);
    expect(err).toMatchObject({ name: 'AbortError', code: 'aborted', partial: true });
    await waitFor(() => fake.requests[0]!.outcome === 'gone', 'the endpoint to see the request closed');
    expect(fake.requests[0]!.piecesSent).toBeLessThan(6);
    expect(fake.requests).toHaveLength(1);
    expect((await metrics.registry.getSingleMetric('knbot_llm_requests_total')!.get()).values).toContainEqual(expect.objectContaining({ labels: { model: 'gpt-4o-mini', result: 'aborted' }, value: 1 }));
  });

  it('closes the request when the reader stops reading', async () => {
    fake.configure({ tokenLatencyMs: 40 });
    const stream = client().llm.stream(ask('tell me a long story'));
    for await (const _ of stream) break;
    await expect(stream.result).rejects.toMatchObject({ code: 'aborted' });
    await waitFor(() => fake.requests[0]!.outcome === 'gone', 'the request to be closed');
  });

  it('cancels a call waiting for its retry', async () => {
    fake.inject({ status: 429, retryAfter: 5 });
    const controller = new AbortController();
    const p = client().llm.complete(ask('hi'), { signal: controller.signal });
    await waitFor(() => fake.requests[0]?.status === 429, 'the 429');
    const t0 = Date.now();
    controller.abort();
    expect((await failure(p)).code).toBe('aborted');
    expect(Date.now() - t0).toBeLessThan(500);
    expect(fake.requests).toHaveLength(1);
  });
});

describe('limits', () => {
  it('keeps at most `concurrency` calls in flight; the others wait their turn', async () => {
    fake.configure({ tokenLatencyMs: 10, firstTokenMs: 50 });
    const { llm } = client({ concurrency: 2 });
    const calls = Array.from({ length: 5 }, (_, i) => llm.complete(ask(`question ${i}`)));
    await waitFor(() => llm.load.waiting === 3, 'three calls waiting');
    const results = await Promise.all(calls);
    expect(results.map((r) => r.text.includes('question'))).toEqual([true, true, true, true, true]);
    expect(fake.inFlight.max).toBe(2);
  });

  it('fails a call that waited for a slot past its total timeout', async () => {
    const { llm } = client({ concurrency: 1 });
    // A stream being read holds its slot.
    const first = llm.stream(ask('holds the slot'))[Symbol.asyncIterator]();
    await first.next();
    const t0 = Date.now();
    const err = await failure(llm.complete({ ...ask('waits'), timeoutMs: 500 }));
    expect(err).toMatchObject({ code: 'timeout', attempts: 0 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    expect(fake.requests).toHaveLength(1);
    await first.return!();
    expect(llm.load).toEqual({ inFlight: 0, waiting: 0 });
  });

  it('gives the slot of a cancelled call back at once, even while its reader is not reading', async () => {
    const { llm } = client({ concurrency: 1 });
    const controller = new AbortController();
    const first = llm.stream(ask('holds the slot'), { signal: controller.signal })[Symbol.asyncIterator]();
    await first.next();
    const second = llm.complete(ask('waits'));
    await waitFor(() => llm.load.waiting === 1, 'the second call to wait');
    controller.abort();
    expect((await second).text).toContain('waits');
    await expect(first.next()).rejects.toMatchObject({ code: 'aborted' });
  });

  it('holds calls back while the token budget is spent, and fails one that would wait past its deadline', async () => {
    // 12000 tokens a minute: 200 a second. The fake counts each "!" as a token, the client estimates
    // a quarter as many, so the first call overspends and the next waits for the refill.
    const { llm } = client({ tokensPerMinute: 12_000 });
    const first = await llm.complete(ask('!'.repeat(12_100)));
    expect(first.usage.inputTokens).toBeGreaterThan(12_000);
    const t0 = Date.now();
    await llm.complete(ask('hi'));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);

    const { llm: strict } = client({ tokensPerMinute: 600, totalTimeoutMs: 2000 });
    await strict.complete(ask('!'.repeat(2000)));
    const n = fake.requests.length;
    const err = await failure(strict.complete(ask('hi')));
    expect(err.code).toBe('rate_limited');
    expect(err.retryAfterMs).toBeGreaterThan(2000);
    expect(fake.requests).toHaveLength(n);
  });
});

describe('usage and cost', () => {
  it('counts tokens and cost per bot, model and conversation from the usage the endpoint reports', async () => {
    const { llm, metrics } = client();
    const a = await llm.complete(ask('first question'), { session: { id: 'conv-a' } });
    const stream = llm.stream(ask('second question, a little longer'), { session: { id: 'conv-b' } });
    await drain(stream);
    const b = await stream.result;
    const c = await llm.complete({ ...ask('third'), conversation: 'conv-a' });
    const text = await metrics.registry.metrics();
    const value = (name: string, labels: string) => Number(new RegExp(`^${name}\\{${labels}[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(fake.requests).toHaveLength(3);
    expect(value('knbot_llm_tokens_total', 'direction="input",model="gpt-4o-mini",conversation="conv-a"')).toBe(a.usage.inputTokens + c.usage.inputTokens);
    expect(value('knbot_llm_tokens_total', 'direction="input",model="gpt-4o-mini",conversation="conv-b"')).toBe(b.usage.inputTokens);
    expect(value('knbot_llm_tokens_total', 'direction="output",model="gpt-4o-mini",conversation="conv-b"')).toBe(b.usage.outputTokens);
    expect(a.usage.inputTokens).toBeGreaterThan(0);
    expect(value('knbot_llm_cost_usd_total', 'model="gpt-4o-mini",conversation="conv-b"')).toBeCloseTo((b.usage.inputTokens * 0.15 + b.usage.outputTokens * 0.6) / 1e6, 12);
    expect(b.costUsd).toBeCloseTo((b.usage.inputTokens * 0.15 + b.usage.outputTokens * 0.6) / 1e6, 12);
    expect(text).toMatch(/^knbot_llm_tokens_total\{direction="input",model="gpt-4o-mini",conversation="conv-a",bot="test-bot"\} \d+$/m);
    expect(text).toMatch(/^knbot_llm_requests_total\{model="gpt-4o-mini",result="ok",bot="test-bot"\} 3$/m);
  });

  it('leaves the conversation out of the labels when conversationMetrics is off, and warns once about a model with no price', async () => {
    const { llm, metrics, lines } = client({ conversationMetrics: false, model: 'unpriced-model' });
    await llm.complete(ask('one'), { session: { id: 'c1' } });
    await llm.complete(ask('two'), { session: { id: 'c2' } });
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^knbot_llm_tokens_total\{direction="input",model="unpriced-model",conversation="",bot="test-bot"\} \d+$/m);
    expect(text).not.toContain('c1');
    expect(text).toMatch(/^knbot_llm_cost_usd_total\{model="unpriced-model",conversation="",bot="test-bot"\} 0$/m);
    expect(lines.filter((l) => l.includes('has no price'))).toHaveLength(1);
  });
});

describe('redaction', () => {
  it('never writes the prompt, the answer or the key to a log line, whatever happens to the call', async () => {
    const SECRET = 'hunter2-swordfish-4417';
    const KEY = 'sk-test-0123456789abcdef';
    const lines: string[] = [];
    const o = { lines, env: { OPENAI_BASE_URL: url, OPENAI_API_KEY: KEY }, maxAttempts: 2, attemptTimeoutMs: 200, breakerFailures: 3, breakerOpenMs: 60_000 };
    const { llm } = client(o);
    const prompt = ask(`my password is ${SECRET}, remember it`, `[1] notes\nThe password ${SECRET} opens the vault.`);
    await llm.complete(prompt, { session: { id: 'c-secret' } });
    await drain(llm.stream(prompt));
    fake.inject({ status: 500 });
    await llm.complete(prompt);
    fake.inject({ hang: true }, 2);
    await failure(llm.complete(prompt));
    fake.inject({ status: 400 });
    await failure(llm.complete(prompt));
    fake.inject({ status: 500 }, 'always');
    await failure(llm.complete(prompt));
    await failure(llm.complete(prompt));
    const controller = new AbortController();
    fake.clearFaults();
    const s = llm.stream(prompt, { signal: controller.signal });
    controller.abort();
    await failure(drain(s));
    const all = lines.join('');
    // The fake's answer repeats the question: it was there to be logged, and was not.
    expect(fake.requests.filter((r) => r.outcome === 'ok').length).toBeGreaterThanOrEqual(3);
    expect(lines.length).toBeGreaterThan(8);
    expect(all).toContain('llm call');
    expect(all).toContain('circuit_open');
    expect(all).not.toContain(SECRET);
    expect(all).not.toContain(KEY);
    expect(all).not.toContain('hunter2');
  });
});
