import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBroker } from '../../eventing/broker/index.ts';
import { MESSAGE_RECEIVED } from '../../eventing/chat.ts';
import { EGRESS_TYPES } from '../../gateway/egress.ts';
import { ECHO, type Pod, fixture, startKnbot, startPod, waitFor } from '../pod.ts';
import { redisServerPath, startRedis } from '../redis.ts';
import { TestClient } from './harness.ts';

// Two `knbot gateway` processes sharing sessions through a real Redis: a client on one replica gets
// the replies the broker delivered to the other, and resumes on either after a drop.

interface Replica {
  port: number;
  egressPort: number;
  child: ChildProcess;
  output: () => string;
}

const TOKEN = 'replica-token';
const bin = redisServerPath();
let redis: Awaited<ReturnType<typeof startRedis>> | undefined;
let broker: LocalBroker;
let echo: Pod;
let stream: Pod;
let a: Replica;
let b: Replica;
const stateDir = mkdtempSync(join(tmpdir(), 'knbot-replicas-'));

async function startReplica(brokerUrl: string, redisUrl: string): Promise<Replica> {
  const { child, output, ready } = await startKnbot(['gateway', '--bots', 'echo,stream', '--broker', brokerUrl, '--port', '0', '--egress-port', '0', '--redis', redisUrl, '--host', '127.0.0.1'], {
    ready: 'gateway listening',
    env: { KNBOT_GATEWAY_TOKENS: `${TOKEN}=alice` },
    timeoutMs: 20_000,
  });
  return { port: ready.port as number, egressPort: ready.egressPort as number, child, output };
}

beforeAll(async () => {
  if (!bin) return;
  redis = await startRedis(bin);
  broker = new LocalBroker({ stateDir, port: 0, routes: [] });
  const brokerUrl = `http://127.0.0.1:${await broker.start()}/`;
  [echo, stream] = await Promise.all([startPod(ECHO, { K_SINK: brokerUrl }), startPod(fixture('stream'), { K_SINK: brokerUrl })]);
  [a, b] = await Promise.all([startReplica(brokerUrl, redis.url), startReplica(brokerUrl, redis.url)]);
  // Every bot output goes to replica B; the clients below connect to A.
  broker.setRoutes([
    { id: 'echo', url: `${echo.url}/`, filters: [{ exact: { chatbot: 'echo' } as Record<string, string> }, { exact: { type: MESSAGE_RECEIVED } }] },
    { id: 'stream', url: `${stream.url}/`, filters: [{ exact: { chatbot: 'stream' } as Record<string, string> }, { exact: { type: MESSAGE_RECEIVED } }] },
    { id: 'gateway', url: `http://127.0.0.1:${b.egressPort}/`, ordered: true, filters: [{ any: EGRESS_TYPES.map((type) => ({ exact: { type } })) }] },
  ]);
}, 60_000);

afterAll(async () => {
  for (const r of [a, b]) r?.child.kill('SIGKILL');
  await Promise.all([echo?.stop(), stream?.stop()]);
  await broker?.close();
  await redis?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

describe.skipIf(!bin)('gateway replicas sharing Redis', () => {
  it('delivers a reply that reached the other replica, in order', async () => {
    const c = await TestClient.connect(`ws://127.0.0.1:${a.port}/v1/ws?token=${TOKEN}`);
    await c.session();
    c.send({ type: 'message', id: 'rep-1', bot: 'stream', conversation: 'r1', text: 'go' });
    const reply = await c.next((f) => f.type === 'reply', 'the reply through replica B');
    expect(reply.text).toBe('one two three');
    expect(c.frames.map((f) => f.seq)).toEqual(c.frames.map((_, i) => i));
    expect(c.frames.filter((f) => f.type === 'chunk').map((f) => f.text).join('')).toBe('one two three');
    c.close();
  });

  it('resumes on the other replica with what was produced in between, once', async () => {
    const c = await TestClient.connect(`ws://127.0.0.1:${a.port}/v1/ws?token=${TOKEN}`);
    const sessionId = await c.session();
    c.send({ type: 'message', id: 'rep-2', bot: 'stream', conversation: 'r2', text: 'go' });
    await c.next((f) => f.type === 'ack', 'ack');
    const lastSeq = c.frames.at(-1)!.seq!;
    c.close();
    await waitFor(() => broker.pending() === 0, 'the broker to deliver everything');
    const d = await TestClient.connect(`ws://127.0.0.1:${b.port}/v1/ws?token=${TOKEN}`);
    await d.session();
    d.send({ type: 'resume', sessionId, lastSeq });
    const resumed = await d.next((f) => f.type === 'session' && f.resumed === true, 'resumed');
    const replayed = d.frames.filter((f) => (f.seq ?? 0) > lastSeq && (f.seq ?? 0) < resumed.seq!);
    expect(replayed.filter((f) => f.type === 'reply').map((f) => f.text)).toEqual(['one two three']);
    expect(replayed.map((f) => f.seq)).toEqual(replayed.map((_, i) => lastSeq + 1 + i));
    d.close();
  });

  it('acknowledges a message id seen by the other replica without sending it again', async () => {
    const c = await TestClient.connect(`ws://127.0.0.1:${a.port}/v1/ws?token=${TOKEN}`);
    const sessionId = await c.session();
    c.send({ type: 'message', id: 'rep-3', bot: 'echo', conversation: 'r3', text: 'once' });
    await c.next((f) => f.type === 'reply', 'reply');
    const lastSeq = c.frames.at(-1)!.seq!;
    c.close();
    const d = await TestClient.connect(`ws://127.0.0.1:${b.port}/v1/ws?token=${TOKEN}`);
    d.send({ type: 'resume', sessionId, lastSeq });
    await d.next((f) => f.type === 'session' && f.resumed === true, 'resumed');
    d.send({ type: 'message', id: 'rep-3', bot: 'echo', conversation: 'r3', text: 'once' });
    await d.next((f) => f.type === 'ack' && f.duplicate === true, 'the duplicate ack');
    await new Promise((r) => setTimeout(r, 500));
    expect(d.frames.filter((f) => f.type === 'reply')).toHaveLength(0);
    d.close();
  });
});
