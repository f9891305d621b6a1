// `knbot fake-llm` as a real process: OpenAI's chat-completions wire format, and failures on demand.
import { type ChildProcess, execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jsonOf, startKnbot } from '../pod.ts';
import { ROOT } from '../shared.ts';

const NODE24 = join(ROOT, 'node_modules', '.bin', 'node');
const BIN = join(ROOT, 'cli', 'knbot.js');

async function startFake(args: string[], env: Record<string, string> = {}): Promise<{ base: string; child: ChildProcess; stop(): Promise<void> }> {
  const { child, exited, ready } = await startKnbot(['fake-llm', '--port', '0', ...args], { ready: 'fake llm listening', env });
  return {
    base: String(ready.url).replace(/\/v1$/, ''),
    child,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
    },
  };
}

let fake: Awaited<ReturnType<typeof startFake>>;
beforeAll(async () => {
  fake = await startFake(['--token-latency-ms', '1', '--first-token-ms', '0']);
});
afterAll(() => fake.stop());

const completions = (body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${fake.base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
const hello = { model: 'gpt-4o-mini', messages: [{ role: 'system', content: 'Knative scales revisions to zero when no request arrives.' }, { role: 'user', content: 'When does Knative scale to zero?' }] };

/** The `data:` payloads of an SSE body. */
const dataLines = (text: string) => text.split('\n\n').filter(Boolean).map((e) => /^data: (.*)$/m.exec(e)![1]!);

describe('knbot fake-llm: the wire format', () => {
  it('answers a chat completion as OpenAI does, the same way every time', async () => {
    const res = await completions(hello);
    expect(res.headers.get('content-type')).toBe('application/json');
    const body = await jsonOf(res);
    expect(body).toMatchObject({
      id: expect.stringMatching(/^chatcmpl-/),
      object: 'chat.completion',
      created: expect.any(Number),
      model: 'gpt-4o-mini',
      choices: [{ index: 0, message: { role: 'assistant', content: expect.any(String), refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage: { prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number), total_tokens: expect.any(Number) },
    });
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + body.usage.completion_tokens);
    expect(body.choices[0].message.content).toBe('You asked: "When does Knative scale to zero?". Knative scales revisions to zero when no request arrives.');
    const again = await jsonOf(await completions(hello));
    expect(again.choices[0].message.content).toBe(body.choices[0].message.content);
  });

  it('streams chunks as server-sent events, usage in a last chunk with no choices, then [DONE]', async () => {
    const res = await completions({ ...hello, stream: true, stream_options: { include_usage: true } });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const data = dataLines(await res.text());
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    expect(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id && c.model === 'gpt-4o-mini')).toBe(true);
    expect(chunks[0].choices[0]).toEqual({ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null });
    const usage = chunks.at(-1);
    expect(usage.choices).toEqual([]);
    expect(usage.usage).toMatchObject({ prompt_tokens: expect.any(Number), completion_tokens: chunks.length - 3 });
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(chunks.at(-2).choices[0]).toEqual({ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' });
    const text = chunks.slice(1, -2).map((c) => c.choices[0].delta.content).join('');
    expect(text).toBe('You asked: "When does Knative scale to zero?". Knative scales revisions to zero when no request arrives.');
  });

  it('sends no usage in a stream that did not ask for it, and cuts at max_completion_tokens', async () => {
    const chunks = dataLines(await (await completions({ ...hello, stream: true, max_completion_tokens: 2 })).text()).slice(0, -1).map((d) => JSON.parse(d));
    expect(chunks.some((c) => 'usage' in c)).toBe(false);
    expect(chunks.at(-1).choices[0].finish_reason).toBe('length');
    expect(chunks.slice(1, -1).map((c) => c.choices[0].delta.content)).toEqual(['You', ' asked:']);
  });

  it('lists models, and refuses bad requests in OpenAI\'s error format', async () => {
    expect(await (await fetch(`${fake.base}/v1/models`)).json()).toMatchObject({ object: 'list', data: [{ id: 'knbot-fake', object: 'model', owned_by: 'knbot' }] });
    const noModel = await completions({ messages: hello.messages });
    expect([noModel.status, (await jsonOf(noModel)).error]).toEqual([400, { message: 'you must provide a model parameter', type: 'invalid_request_error', param: null, code: null }]);
    expect((await completions({ model: 'm', messages: [] })).status).toBe(400);
    expect((await fetch(`${fake.base}/v1/embeddings`, { method: 'POST' })).status).toBe(404);
  });
});

describe('knbot fake-llm: failures on demand', () => {
  it('fails one request by its header: 429 with Retry-After', async () => {
    const res = await completions(hello, { 'x-fake-llm-fault': JSON.stringify({ status: 429, retryAfter: 7 }) });
    expect([res.status, res.headers.get('retry-after')]).toEqual([429, '7']);
    expect((await jsonOf(res)).error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded' });
    expect((await completions(hello)).status).toBe(200);
  });

  it('queues faults for the next requests, in order, until used or cleared', async () => {
    const queue = await fetch(`${fake.base}/_fake/faults`, { method: 'POST', body: JSON.stringify([{ fault: { status: 500 }, times: 2 }, { fault: { status: 503, retryAfterMs: 250 } }]) });
    expect(await queue.json()).toEqual({ queued: 2 });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await completions(hello)).status);
    expect(statuses).toEqual([500, 500, 503, 200]);
    await fetch(`${fake.base}/_fake/faults`, { method: 'POST', body: JSON.stringify({ fault: { status: 502 }, times: 'always' }) });
    expect([(await completions(hello)).status, (await completions(hello)).status]).toEqual([502, 502]);
    await fetch(`${fake.base}/_fake/faults`, { method: 'DELETE' });
    expect((await completions(hello)).status).toBe(200);
    expect((await fetch(`${fake.base}/_fake/faults`, { method: 'POST', body: JSON.stringify({ fault: { status: 500, hang: true } }) })).status).toBe(400);
  });

  it('hangs, or breaks a stream off after some pieces, and lists what it was asked (never the prompt)', async () => {
    await fetch(`${fake.base}/_fake/requests`, { method: 'DELETE' });
    const post = (fault: unknown, signal?: AbortSignal) =>
      fetch(`${fake.base}/v1/chat/completions`, { method: 'POST', headers: { 'x-fake-llm-fault': JSON.stringify(fault) }, body: JSON.stringify({ ...hello, stream: true }), ...(signal ? { signal } : {}) });
    await expect(post({ hang: true }, AbortSignal.timeout(300))).rejects.toMatchObject({ name: 'TimeoutError' });

    const dropped = await post({ dropAfter: 2 });
    const reader = dropped.body!.getReader();
    let text = '';
    let broke: unknown;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    } catch (e) {
      broke = e;
    }
    expect(broke).toBeDefined();
    expect(text).not.toContain('[DONE]');
    expect(dataLines(text).map((d) => JSON.parse(d).choices[0].delta.content)).toEqual(['', 'You', ' asked:']);

    const silent = await post({ hangAfter: 1 }, AbortSignal.timeout(400));
    await expect(silent.text()).rejects.toMatchObject({ name: 'TimeoutError' });

    const seen = (await (await fetch(`${fake.base}/_fake/requests`)).json()) as Record<string, unknown>[];
    expect(seen.map((r) => [r.fault, r.outcome, r.piecesSent])).toEqual([
      [{ hang: true }, 'gone', 0],
      [{ dropAfter: 2 }, 'cut', 2],
      [{ hangAfter: 1 }, 'cut', 1],
    ]);
    expect(JSON.stringify(seen)).not.toContain('Knative scales');
  });
});

describe('knbot fake-llm: the command', () => {
  const run = promisify(execFile);
  const knbot = (args: string[], env: Record<string, string> = {}) =>
    run(NODE24, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env } }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );

  it('documents itself, and refuses bad options', async () => {
    expect((await knbot(['fake-llm', '--help'])).stdout).toContain('x-fake-llm-fault');
    expect((await knbot(['help'])).stdout).toMatch(/fake-llm\s+a deterministic OpenAI-compatible model server/);
    const bad = await knbot(['fake-llm', '--token-latency-ms', 'fast']);
    expect([bad.code, bad.stderr]).toEqual([2, expect.stringContaining('--token-latency-ms must be an integer')]);
    const noKey = await knbot(['fake-llm', '--api-key-env', 'KNBOT_TEST_UNSET_KEY']);
    expect([noKey.code, noKey.stderr]).toEqual([2, expect.stringContaining('KNBOT_TEST_UNSET_KEY: that variable is not set')]);
  });

  it('asks for the key named by --api-key-env', async () => {
    const guarded = await startFake(['--api-key-env', 'FAKE_KEY'], { FAKE_KEY: 'sk-fake-1' });
    try {
      const ask = (key: string) =>
        fetch(`${guarded.base}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: JSON.stringify(hello) });
      const wrong = await ask('sk-other');
      expect([wrong.status, (await jsonOf(wrong)).error.code]).toEqual([401, 'invalid_api_key']);
      expect((await ask('sk-fake-1')).status).toBe(200);
    } finally {
      await guarded.stop();
    }
  });
});
