// The llm bot in a real pod (knbot serve), talking to the fake model server run by this test.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeLlm } from '../../cli/fake-llm/server.ts';
import { type Pod, jsonOf, startPod, waitFor } from '../pod.ts';
import { ROOT } from '../shared.ts';

const LLM = join(ROOT, 'functions', 'llm');
const fake = new FakeLlm({ tokenLatencyMs: 2, firstTokenMs: 5 });
let pod: Pod;
const SECRET = 'plover-xyzzy-0042';
const KEY = 'sk-pod-test-key-9f8e7d';

beforeAll(async () => {
  const url = await fake.start();
  pod = await startPod(LLM, { OPENAI_BASE_URL: url, OPENAI_API_KEY: KEY, KNBOT_LOG_LEVEL: 'debug' });
  await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok), 'readiness');
});
afterAll(async () => {
  await pod?.stop();
  await fake.close();
});
afterEach(() => {
  fake.clearFaults();
  fake.configure({ tokenLatencyMs: 2, firstTokenMs: 5 });
});

const post = (text: string, conversation: string, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify({ conversation, text }),
});

/** The SSE events of a /v1/chat answer, in order. */
async function sse(res: Response): Promise<{ event: string; data: any }[]> {
  const text = await res.text();
  return text
    .split('\n\n')
    .filter(Boolean)
    .map((block) => ({ event: /^event: (.*)$/m.exec(block)![1]!, data: JSON.parse(/^data: (.*)$/m.exec(block)![1]!) }));
}

describe('the llm bot', () => {
  it('streams a grounded answer: chunks as the model writes them, then the reply with its sources', async () => {
    const n = fake.requests.length;
    const res = await fetch(`${pod.url}/v1/chat`, post('How does the circuit breaker work?', 'stream-1', { accept: 'text/event-stream' }));
    const events = await sse(res);
    const chunks = events.filter((e) => e.event === 'chunk');
    const reply = events.at(-1)!;
    expect(reply.event).toBe('reply');
    expect(chunks.length).toBeGreaterThan(10);
    expect(chunks.map((c) => c.data.text).join('')).toBe(reply.data.text);
    // The fake quotes the passage the bot retrieved, and cites it.
    expect(reply.data.text).toMatch(/The circuit breaker counts attempts that failed with a network error, a timeout or a 5xx\. \[\d\]/);
    expect(reply.data.text).toMatch(/Sources: .*\[\d\]+ llm\.md › Retries, timeouts, limits and the circuit breaker/);
    expect(fake.requests.slice(n)).toEqual([expect.objectContaining({ model: 'gpt-4o-mini', stream: true, includeUsage: true, messages: 2, authorized: true, outcome: 'ok' })]);
  });

  it('remembers the conversation in its session, and keeps conversations apart', async () => {
    const first = await jsonOf(await fetch(`${pod.url}/v1/chat`, post('How do I deploy a bot to a cluster?', 'memory')));
    expect(first.text).toContain('You asked: "How do I deploy a bot to a cluster?"');
    const n = fake.requests.length;
    const second = await jsonOf(await fetch(`${pod.url}/v1/chat`, post('And how do I write one?', 'memory')));
    expect(second.text).toContain('(Message 2 of this conversation; it began with "How do I deploy a bot to a cluster?".)');
    // System, the first turn (question and answer), the new question.
    expect(fake.requests[n]!.messages).toBe(4);
    const other = await jsonOf(await fetch(`${pod.url}/v1/chat`, post('And how do I write one?', 'memory-other')));
    expect(other.text).not.toContain('Message 2');
  });

  it('counts the tokens and cost of its conversations on /metrics', async () => {
    const n = fake.requests.length;
    await fetch(`${pod.url}/v1/chat`, post('What is the warm pool?', 'metered'));
    await fetch(`${pod.url}/v1/chat`, post('Why does the faq bot need it?', 'metered'));
    const used = fake.requests.slice(n).map((r) => r.usage!);
    const input = used.reduce((a, u) => a + u.prompt_tokens, 0);
    const output = used.reduce((a, u) => a + u.completion_tokens, 0);
    const metrics = await (await fetch(`${pod.url}/metrics`)).text();
    const value = (re: RegExp) => Number(re.exec(metrics)?.[1]);
    expect(value(/^knbot_llm_tokens_total\{direction="input",model="gpt-4o-mini",conversation="metered",bot="llm"\} (\S+)$/m)).toBe(input);
    expect(value(/^knbot_llm_tokens_total\{direction="output",model="gpt-4o-mini",conversation="metered",bot="llm"\} (\S+)$/m)).toBe(output);
    // bot.yaml prices gpt-4o-mini at 0.15 and 0.60 USD per million tokens.
    expect(value(/^knbot_llm_cost_usd_total\{model="gpt-4o-mini",conversation="metered",bot="llm"\} (\S+)$/m)).toBeCloseTo((input * 0.15 + output * 0.6) / 1e6, 12);
  });

  it('answers a chat CloudEvent with the whole answer in its reply event', async () => {
    const res = await fetch(`${pod.url}/`, {
      method: 'POST',
      headers: { 'ce-specversion': '1.0', 'ce-id': 'e1', 'ce-source': '/test', 'ce-type': 'dev.knbot.chat.message.received', 'ce-subject': 'event-conv', 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'What is the fake model?' }),
    });
    expect(res.headers.get('ce-type')).toBe('dev.knbot.chat.reply.send');
    const data = await jsonOf(res);
    expect(data).toMatchObject({ conversation: { id: 'event-conv' }, inReplyTo: 'e1', text: expect.stringMatching(/fake/i) });
  });

  it('never logs the message, the answer or the key, even at debug level', async () => {
    fake.inject({ status: 500 });
    const reply = await jsonOf(await fetch(`${pod.url}/v1/chat`, post(`remember my code ${SECRET} please`, 'secret')));
    // The fake repeats the question: the secret was in the answer too.
    expect(reply.text).toContain(SECRET);
    const logs = pod.output();
    expect(logs).toMatch(/"level":"debug"/);
    expect(logs).toContain('"msg":"llm retry"');
    expect(logs).toContain('"msg":"llm call"');
    expect(logs).not.toContain(SECRET);
    expect(logs).not.toContain(KEY);
  });
  it('stops the model call when the client goes away mid-stream', async () => {
    fake.configure({ tokenLatencyMs: 60 });
    const n = fake.requests.length;
    const controller = new AbortController();
    const res = await fetch(`${pod.url}/v1/chat`, { ...post('Tell me everything about scaling', 'gone'), headers: { 'content-type': 'application/json', accept: 'text/event-stream' }, signal: controller.signal });
    const reader = res.body!.getReader();
    let seen = '';
    while (!seen.includes('event: chunk')) seen += new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    await waitFor(() => fake.requests[n]?.outcome === 'gone', 'the model request to be closed');
    expect(fake.requests[n]!.piecesSent).toBeLessThan(10);
    await waitFor(async () => /knbot_llm_requests_total\{model="gpt-4o-mini",result="aborted",bot="llm"\} 1/.test(await (await fetch(`${pod.url}/metrics`)).text()), 'the aborted call counted');
  });

  it('answers from the docs alone while the model fails, and fails fast once the circuit is open', async () => {
    fake.inject({ status: 500 }, 'always');
    const n = fake.requests.length;
    const first = await jsonOf(await fetch(`${pod.url}/v1/chat`, post('How does the circuit breaker work?', 'down')));
    expect(first.text).toContain('The language model is not answering right now (server_error). The documentation says [1]:');
    expect(first.text).toMatch(/Sources: \[1\]\S* llm\.md › Retries, timeouts, limits and the circuit breaker/);
    // bot.yaml: 4 attempts a call; the fifth failure in a row opens the circuit.
    expect(fake.requests.length - n).toBe(4);
    const second = await jsonOf(await fetch(`${pod.url}/v1/chat`, post('How do I write a bot?', 'down-2')));
    expect(second.text).toContain('(circuit_open)');
    expect(fake.requests.length - n).toBe(5);
    const t0 = Date.now();
    const third = await jsonOf(await fetch(`${pod.url}/v1/chat`, post('How do I deploy?', 'down-3')));
    expect(third.text).toContain('(circuit_open)');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(fake.requests.length - n).toBe(5);
  });

});

describe('the llm bot traced', () => {
  it('continues the incoming trace: the turn under the caller, the model call under the turn, the endpoint under the model call', async () => {
    const spans = join(mkdtempSync(join(tmpdir(), 'knbot-llm-spans-')), 'spans.jsonl');
    const traced = new FakeLlm({ tokenLatencyMs: 1, firstTokenMs: 1 });
    const url = await traced.start();
    const p = await startPod(LLM, { OPENAI_BASE_URL: url, NODE_OPTIONS: `--import ${join(ROOT, 'test', 'fixtures', 'otel-setup.mjs')}`, KNBOT_TEST_SPANS: spans });
    try {
      await waitFor(() => fetch(`${p.url}/health/readiness`).then((r) => r.ok), 'readiness');
      const res = await fetch(`${p.url}/v1/chat`, post(`How do bots scale to zero? ${SECRET}`, 'traced', { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }));
      expect(res.status).toBe(200);
      const lines = await waitFor(() => {
        const all = existsSync(spans) ? readFileSync(spans, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>) : [];
        return all.length >= 2 && all;
      }, 'the turn and model spans');
      const turn = lines.find((l) => l.name === 'chat')!;
      const call = lines.find((l) => l.name === 'chat gpt-4o-mini')!;
      expect(turn).toMatchObject({ kind: 1, traceId: '4bf92f3577b34da6a3ce929d0e0e4736', parentSpanId: '00f067aa0ba902b7' });
      expect(call).toMatchObject({
        kind: 2,
        traceId: turn.traceId,
        parentSpanId: turn.spanId,
        attributes: { 'gen_ai.operation.name': 'chat', 'gen_ai.request.model': 'gpt-4o-mini', 'gen_ai.conversation.id': 'traced', 'gen_ai.response.finish_reasons': ['stop'] },
      });
      expect(call.attributes['gen_ai.usage.input_tokens']).toBe(traced.requests[0]!.usage!.prompt_tokens);
      expect(call.attributes['gen_ai.usage.output_tokens']).toBe(traced.requests[0]!.usage!.completion_tokens);
      expect(traced.requests[0]!.traceparent).toBe(`00-${call.traceId}-${call.spanId}-01`);
      expect(JSON.stringify(lines)).not.toContain(SECRET);
    } finally {
      await p.stop();
      await traced.close();
    }
  });
});
