import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisGatewayStore } from '../../gateway/redis-store.ts';
import { MemoryGatewayStore, SessionGoneError, type StoreLimits } from '../../gateway/store.ts';
import { waitFor } from '../pod.ts';
import { type RedisServer, redisServerPath, startRedis } from '../redis.ts';
import { storeContract } from './store-contract.ts';

const bin = redisServerPath();
const frame = (from: string, n: number) => JSON.stringify({ type: 'chunk', from, n });
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

storeContract('MemoryGatewayStore', (limits) => new MemoryGatewayStore(limits));

describe.skipIf(!bin)('RedisGatewayStore', () => {
  let server: RedisServer;
  let raw: Redis;
  let n = 0;
  const errors: Error[] = [];
  const stores: RedisGatewayStore[] = [];
  const nextPrefix = () => `test${++n}:`;
  const make = (prefix = nextPrefix(), limits?: Partial<StoreLimits>) => {
    const store = new RedisGatewayStore({ redis: server.url, prefix, limits, keepAliveMs: 50, onError: (e) => errors.push(e) });
    stores.push(store);
    return store;
  };

  beforeAll(async () => {
    server = await startRedis(bin);
    raw = new Redis(server.url);
    raw.on('error', () => {}); // while the server restarts
  });
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    await raw?.quit();
    await server?.stop();
  });

  storeContract('RedisGatewayStore', (limits) => make(nextPrefix(), limits));

  it('lets two replicas see each other\'s frames through subscribe, in seq order', async () => {
    const prefix = nextPrefix();
    const [a, b] = [make(prefix), make(prefix)];
    await a.openSession('s', 'alice', 60_000);
    expect(await b.sessionOwner('s')).toBe('alice');
    const seen = { a: [] as [number, string][], b: [] as [number, string][] };
    a.subscribe('s', (seq, body) => seen.a.push([seq, body]));
    b.subscribe('s', (seq, body) => seen.b.push([seq, body]));
    // "From now on" is per replica: an append by the other replica that Redis runs before a listener's
    // subscription is in place counts as before it. A listener given a frame of its own replica is in place.
    await Promise.all([a.append('s', frame('a', -1)), b.append('s', frame('b', -1))]);
    await waitFor(() => seen.a.some(([, f]) => f === frame('a', -1)) && seen.b.some(([, f]) => f === frame('b', -1)), 'each replica to see its own first frame');
    const from = (await a.replay('s', 0))!.lastSeq;
    await Promise.all(range(100).flatMap((i) => [a.append('s', frame('a', i)), b.append('s', frame('b', i))]));
    const last = from + 200;
    await waitFor(() => seen.a.at(-1)?.[0] === last && seen.b.at(-1)?.[0] === last, 'both replicas to see all 200 frames');
    const after = (frames: [number, string][]) => frames.filter(([seq]) => seq > from);
    expect(after(seen.a).map(([seq]) => seq)).toEqual(range(200).map((i) => from + i + 1));
    expect(after(seen.b)).toEqual(after(seen.a));
    expect((await a.replay('s', from))!.frames).toEqual(after(seen.a));
    for (const frames of [seen.a, seen.b]) expect(frames.map(([seq]) => seq)).toEqual([...new Set(frames.map(([seq]) => seq))].sort((x, y) => x - y));
  });

  it('gives concurrent appends from two replicas distinct, consecutive seqs, each replica\'s in call order', async () => {
    const prefix = nextPrefix();
    const [a, b] = [make(prefix), make(prefix)];
    await a.openSession('s', 'alice', 60_000);
    const got = { a: [] as number[], b: [] as number[] };
    await Promise.all(range(200).flatMap((i) => [a.append('s', frame('a', i)).then((s) => got.a.push(s)), b.append('s', frame('b', i)).then((s) => got.b.push(s))]));
    expect([...got.a, ...got.b].sort((x, y) => x - y)).toEqual(range(400).map((i) => i + 1));
    expect(got.a).toEqual([...got.a].sort((x, y) => x - y));
    expect(got.b).toEqual([...got.b].sort((x, y) => x - y));
    const log = await b.replay('s', 0);
    for (const [i, seq] of got.a.entries()) expect(log!.frames[seq - 1]).toEqual([seq, frame('a', i)]);
  });

  it('fills a missed notification from the log', async () => {
    const prefix = nextPrefix();
    const store = make(prefix);
    await store.openSession('s', 'alice', 60_000);
    const seen: number[] = [];
    store.subscribe('s', (seq) => seen.push(seq));
    await store.append('s', frame('a', 1));
    await waitFor(() => seen.length === 1, 'the first frame');
    // Frame 2 is stored but its notification never comes (as when the subscriber was reconnecting).
    await raw.multi().hincrby(`${prefix}session:s`, 'seq', 1).rpush(`${prefix}log:s`, frame('a', 2)).exec();
    await store.append('s', frame('a', 3));
    await waitFor(() => seen.length === 3, 'frames 2 and 3');
    expect(seen).toEqual([1, 2, 3]);
  });

  it('keeps giving frames to the other listeners when one throws, and reports the error', async () => {
    const store = make();
    await store.openSession('s', 'alice', 60_000);
    const seen: number[] = [];
    store.subscribe('s', () => {
      throw new Error('listener broke');
    });
    store.subscribe('s', (seq) => seen.push(seq));
    await store.append('s', frame('a', 1));
    await store.append('s', frame('a', 2));
    await waitFor(() => seen.length === 2, 'two frames');
    expect(errors.map((e) => e.message)).toContain('listener broke');
  });

  it('listens on one connection, subscribing a session\'s channel while it has listeners', async () => {
    const prefix = nextPrefix();
    const store = make(prefix);
    await store.openSession('s1', 'alice', 60_000);
    await store.openSession('s2', 'alice', 60_000);
    const subscribers = async (session: string) => ((await raw.pubsub('NUMSUB', `${prefix}frames:${session}`)) as [string, number])[1];
    const seen: number[] = [];
    const stops = [store.subscribe('s1', (seq) => seen.push(seq)), store.subscribe('s1', () => {}), store.subscribe('s2', () => {})];
    await store.append('s1', frame('a', 1));
    await waitFor(() => seen.length === 1, 'a frame');
    expect([await subscribers('s1'), await subscribers('s2')]).toEqual([1, 1]);
    // Both channels on the store's one subscriber connection (stores of earlier tests are closed).
    const clients = ((await raw.client('LIST')) as string).split('\n').filter((l) => l.includes('name=knbot-gateway-sub') && !/ sub=0 /.test(l));
    expect(clients.map((l) => / sub=(\d+) /.exec(l)?.[1])).toEqual(['2']);
    stops[0]!();
    stops[2]!();
    await waitFor(async () => (await subscribers('s2')) === 0, 's2 unsubscribed');
    expect(await subscribers('s1')).toBe(1);
    stops[1]!();
    await waitFor(async () => (await subscribers('s1')) === 0, 's1 unsubscribed');
  });

  it('keeps its keys under the prefix, knbot:gw: by default', async () => {
    const store = new RedisGatewayStore({ redis: server.url });
    try {
      await store.openSession('default-prefix', 'alice', 60_000);
      await store.append('default-prefix', frame('a', 1));
      await store.claim('m:1', 'default-prefix', 60_000);
      expect((await raw.keys('knbot:gw:*')).sort()).toEqual(['knbot:gw:key:m:1', 'knbot:gw:log:default-prefix', 'knbot:gw:session:default-prefix']);
      expect(await raw.pttl('knbot:gw:session:default-prefix')).toBeGreaterThan(0);
    } finally {
      await raw.del('knbot:gw:key:m:1', 'knbot:gw:log:default-prefix', 'knbot:gw:session:default-prefix');
      await store.close();
    }
  });

  it('leaves a client it was given open on close', async () => {
    const client = new Redis(server.url);
    const store = new RedisGatewayStore({ redis: client, prefix: nextPrefix() });
    await store.openSession('s', 'alice', 60_000);
    store.subscribe('s', () => {});
    await store.close();
    expect(await client.ping()).toBe('PONG');
    await client.quit();
  });

  // The test server keeps nothing across a restart (no RDB, no AOF): sessions, logs and claimed keys
  // are gone. What must survive is the store: it reconnects, resubscribes and works on.
  it('reconnects after a Redis restart: what was stored is lost, the store works on', async () => {
    const store = make();
    await store.openSession('kept', 'alice', 60_000);
    await store.openSession('old', 'alice', 60_000);
    await store.append('old', frame('a', 1));
    expect(await store.claim('m:1', 'old', 60_000)).toBeUndefined();
    const seen: [number, string][] = [];
    store.subscribe('kept', (seq, body) => seen.push([seq, body]));
    // The subscription is in place once a later one on the same connection delivers.
    const probe: number[] = [];
    store.subscribe('old', (seq) => probe.push(seq));
    await store.append('old', frame('a', 2));
    await waitFor(() => probe.length === 1, 'the probe frame');

    await server.restart();

    await waitFor(async () => (await store.sessionOwner('old').catch(() => 'not yet')) === undefined, 'the store to reach the new server', 10_000);
    expect(await store.replay('old', 0)).toBeUndefined();
    expect(await store.claim('m:1', 'new', 60_000)).toBeUndefined();
    await expect(store.append('old', frame('a', 3))).rejects.toBeInstanceOf(SessionGoneError);
    // The listener from before the restart was resubscribed: a session opened again under its id reaches it.
    await store.openSession('kept', 'alice', 60_000);
    await store.append('kept', frame('b', 1));
    await waitFor(() => seen.length === 1, 'the frame after the restart', 10_000);
    expect(seen).toEqual([[1, frame('b', 1)]]);
    const other = make();
    await other.openSession('new', 'bob', 60_000);
    expect(await other.append('new', frame('c', 1))).toBe(1);
  });
});
