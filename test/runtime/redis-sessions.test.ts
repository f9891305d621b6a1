import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisSessionStore } from '../../runtime/redis-session-store.ts';
import { type Pod, fixture, jsonOf, startPod, waitFor } from '../pod.ts';
import { type RedisServer, redisServerPath, startRedis } from '../redis.ts';

const bin = redisServerPath();

describe.skipIf(!bin)('sessions in Redis', () => {
  let server: RedisServer;
  let raw: Redis;
  beforeAll(async () => {
    server = await startRedis(bin);
    raw = new Redis(server.url);
  });
  afterAll(async () => {
    await raw?.quit();
    await server?.stop();
  });

  describe('RedisSessionStore', () => {
    it('loads an empty state for a new conversation, and what was saved for a known one', async () => {
      const store = new RedisSessionStore({ redis: server.url, prefix: 'unit:' });
      try {
        expect(await store.load('c1')).toEqual({});
        await store.save('c1', { count: 2, notes: ['a', 'ü'] });
        expect(await store.load('c1')).toEqual({ count: 2, notes: ['a', 'ü'] });
        expect(await raw.get('unit:c1')).toBe('{"count":2,"notes":["a","ü"]}');
      } finally {
        await store.close();
      }
    });

    it('forgets a conversation its TTL after the last save', async () => {
      const store = new RedisSessionStore({ redis: server.url, prefix: 'ttl:', ttlMs: 100 });
      try {
        await store.save('c1', { count: 1 });
        expect(await raw.pttl('ttl:c1')).toBeGreaterThan(0);
        await waitFor(async () => Object.keys(await store.load('c1')).length === 0, 'the state to expire', 3000);
      } finally {
        await store.close();
      }
    });
  });

  describe('holding a conversation for a turn', () => {
    const stores: RedisSessionStore[] = [];
    const make = (leaseMs = 1000) => {
      const store = new RedisSessionStore({ redis: server.url, prefix: 'held:', holdPrefix: 'hold:', leaseMs, onError: () => {} });
      stores.push(store);
      return store;
    };
    const never = new AbortController().signal;
    afterAll(async () => {
      await Promise.all(stores.map((s) => s.close()));
    });

    it('lets one pod hold a conversation at a time: the other waits for the release, or is told at once', async () => {
      const [a, b] = [make(), make()];
      const held = (await a.hold('c', { wait: true, signal: never }))!;
      expect(await b.hold('c', { wait: false, signal: never })).toBeUndefined();
      // Another conversation is not held up.
      await (await b.hold('other', { wait: false, signal: never }))!.release();
      let got = false;
      const waiting = b.hold('c', { wait: true, signal: never }).then((h) => ((got = true), h));
      await new Promise((r) => setTimeout(r, 150));
      expect(got).toBe(false);
      await held.release();
      const next = (await waiting)!;
      expect(await next.save({ n: 2 })).toBe(true);
      expect(await b.load('c')).toEqual({ n: 2 });
      await next.release();
    });

    it('keeps a live pod\'s hold past its lease, renewing it', async () => {
      const [a, b] = [make(600), make(600)];
      const held = (await a.hold('long', { wait: true, signal: never }))!;
      await new Promise((r) => setTimeout(r, 2000));
      expect(await b.hold('long', { wait: false, signal: never })).toBeUndefined();
      expect(await held.save({ ok: true })).toBe(true);
      await held.release();
    });

    it('lets a dead pod\'s hold lapse with its lease', async () => {
      const dead = new RedisSessionStore({ redis: server.url, prefix: 'held:', holdPrefix: 'hold:', leaseMs: 200, onError: () => {} });
      await dead.hold('orphan', { wait: true, signal: never });
      // Its renewals stop, as when its process is gone; Redis keeps the hold until the lease ends.
      await dead.close();
      const b = make(200);
      const t0 = Date.now();
      const taken = (await b.hold('orphan', { wait: true, signal: never }))!;
      expect(Date.now() - t0).toBeLessThan(2000);
      await taken.release();
    });

    it('does not let a turn that outlived its hold save over the next one, or free the next one\'s hold', async () => {
      const [a, b, c] = [make(), make(), make()];
      const stalled = (await a.hold('stall', { wait: true, signal: never }))!;
      // Its lease ran out while the pod stalled, and another pod took the conversation.
      await raw.del('hold:stall');
      const next = (await b.hold('stall', { wait: true, signal: never }))!;
      expect(await stalled.save({ by: 'a' })).toBe(false);
      await stalled.release();
      // The stalled turn's release did not free the next one's hold.
      expect(await c.hold('stall', { wait: false, signal: never })).toBeUndefined();
      expect(await next.save({ by: 'b' })).toBe(true);
      expect(await c.load('stall')).toEqual({ by: 'b' });
      // Saving ended the turn: the conversation is free, and the hold comes with what was saved.
      const third = (await c.hold('stall', { wait: false, signal: never }))!;
      expect(third.state).toEqual({ by: 'b' });
      await Promise.all([next.release(), third.release()]);
    });

    it('gathers a debounced burst across stores, and a store late to look learns who took it', async () => {
      const [a, b] = [make(), make()];
      // A waits longer than B, as a pod that stalls would: B, with the burst's last message, takes it first.
      const early = a.gather('burst', { id: 'm1', text: 'one' }, 600, never);
      await waitFor(async () => (await raw.llen('hold:burst:burst')) === 1, 'the first piece');
      const late = b.gather('burst', { id: 'm2', text: 'two', attachments: [{ url: 'u' }] }, 100, never);
      expect(await late).toEqual({ burst: [{ id: 'm1', text: 'one' }, { id: 'm2', text: 'two', attachments: [{ url: 'u' }] }] });
      expect(await early).toEqual({ by: 'm2' });
    });

    it('costs a turn two round trips, and wakes a waiting pod when the conversation is let go', async () => {
      // Every command the store sends, counted on the client it is given.
      const client = new Redis(server.url);
      let sent = 0;
      const send = client.sendCommand.bind(client);
      client.sendCommand = ((command: Parameters<typeof send>[0]) => {
        sent++;
        return send(command);
      }) as typeof client.sendCommand;
      const counted = new RedisSessionStore({ redis: client, prefix: 'held:', holdPrefix: 'hold:', leaseMs: 1000, onError: () => {} });
      try {
        // The first use of each script loads it into Redis.
        const warm = (await counted.hold('warm', { wait: false, signal: never }))!;
        await warm.save({});
        await warm.release();
        const before = sent;
        const hold = (await counted.hold('rt', { wait: false, signal: never }))!;
        expect(hold.state).toEqual({});
        expect(await hold.save({ n: 1 })).toBe(true);
        await hold.release();
        expect(sent - before).toBe(2);
      } finally {
        await counted.close();
        await client.quit();
      }

      // A waiter is told, not left to its next poll: with polls a minute apart, only the word wakes it.
      const [a, b] = [make(), new RedisSessionStore({ redis: server.url, prefix: 'held:', holdPrefix: 'hold:', maxPollMs: 60_000, onError: () => {} })];
      stores.push(b);
      const first = (await a.hold('wake', { wait: true, signal: never }))!;
      const waiting = b.hold('wake', { wait: true, signal: never });
      // The waiter has tried once and is in its wait.
      await new Promise((r) => setTimeout(r, 500));
      await first.release();
      const second = await Promise.race([waiting, new Promise<undefined>((r) => setTimeout(() => r(undefined), 10_000))]);
      expect(second).toBeDefined();
      await second!.release();
    });

    it('gives up waiting when the turn is aborted', async () => {
      const [a, b] = [make(), make()];
      const held = (await a.hold('busy', { wait: true, signal: never }))!;
      const abort = new AbortController();
      const waiting = b.hold('busy', { wait: true, signal: abort.signal });
      abort.abort(new Error('the client left'));
      await expect(waiting).rejects.toThrow('the client left');
      await held.release();
    });
  });

  describe('two pods sharing a Redis', () => {
    let pods: Pod[] = [];
    const COUNTER = fixture('counter');
    const start = async () => {
      const pod = await startPod(COUNTER, { KNBOT_REDIS_URL: server.url });
      await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok, () => false), 'readiness');
      pods.push(pod);
      return pod;
    };
    const say = (pod: Pod, conversation: string) =>
      fetch(`${pod.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ conversation, text: 'hi' }) }).then(jsonOf);
    afterAll(async () => {
      await Promise.all(pods.map((p) => p.stop()));
      pods = [];
    });

    it('keep one conversation\'s state across them, and apart from other conversations', async () => {
      const [a, b] = await Promise.all([start(), start()]);
      const answers = [];
      for (const pod of [a, b, a, b]) answers.push(await say(pod, 'shared'));
      expect(answers.map((r) => r.text)).toEqual(['1', '2', '3', '4']);
      expect(answers[0].pid).not.toBe(answers[1].pid);
      expect((await say(b, 'other')).text).toBe('1');
      expect(JSON.parse((await raw.get('knbot:session:counter:/http|anonymous|shared'))!)).toEqual({ count: 4 });
    });

    it('run one conversation\'s turns one at a time across them: no count lost or repeated', async () => {
      const [a, b] = await Promise.all([start(), start()]);
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => say(i % 2 ? a : b, 'contended')));
      expect(answers.map((r) => Number(r.text)).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      expect(new Set(answers.map((r) => r.pid)).size).toBe(2);
      expect(await raw.keys('knbot:turn:counter:*')).toEqual([]);
    });

    it('keep the state when every pod is gone (a scale to zero) and a new one answers', async () => {
      const a = await start();
      expect((await say(a, 'cold')).text).toBe('1');
      await Promise.all(pods.map((p) => p.stop()));
      const c = await start();
      expect((await say(c, 'cold')).text).toBe('2');
    });
  });
  describe('turn policies across pods sharing a Redis', () => {
    const TURNS = fixture('turns');
    const pods: Pod[] = [];
    const start = async (policy: string, env: Record<string, string> = {}) => {
      const pod = await startPod(TURNS, { KNBOT_REDIS_URL: server.url, KNBOT_TURN_POLICY: policy, ...env });
      await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok, () => false), 'readiness');
      pods.push(pod);
      return pod;
    };
    const chat = (pod: Pod, conversation: string, text: string) =>
      fetch(`${pod.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ conversation, text }) });
    /** Until a pod holds `conversation` in Redis: its turn has started. */
    const held = (conversation: string) => waitFor(async () => (await raw.keys('knbot:turn:turns:*')).some((k) => k.endsWith(`|${conversation}`)), `a pod to hold ${conversation}`);
    const inFlight = (pod: Pod, n: number) => waitFor(async () => new RegExp(`knbot_inflight_requests\\{bot="turns"\\} ${n}\\b`).test(await (await fetch(`${pod.url}/metrics`)).text()), `${n} in flight on a pod`);
    afterAll(async () => {
      await Promise.all(pods.map((p) => p.stop()));
    });

    it('queue: a turn on one pod waits for the conversation\'s turn running on the other', async () => {
      const [a, b] = await Promise.all([start('queue'), start('queue')]);
      const first = chat(a, 'q', '600 first').then(jsonOf);
      await held('q');
      const [one, two] = await Promise.all([first, chat(b, 'q', '0 second').then(jsonOf)]);
      expect([one.text, two.text]).toEqual(['got 600 first', 'got 0 second']);
      expect(two.started).toBeGreaterThanOrEqual(one.ended);
      // Another conversation on the second pod went ahead meanwhile.
      const third = chat(a, 'q', '600 third').then(jsonOf);
      await held('q');
      const other = await chat(b, 'elsewhere', '0 other').then(jsonOf);
      expect(other.ended).toBeLessThan((await third).ended);
    });

    it('interrupt: a message on one pod aborts the conversation\'s turn running on the other, then runs', async () => {
      const [a, b] = await Promise.all([start('interrupt'), start('interrupt')]);
      const first = chat(a, 'ix', '8000 first').then(jsonOf);
      await held('ix');
      const newer = await chat(b, 'ix', '0 newer').then(jsonOf);
      const one = await first;
      expect(one.text).toBe('stopped: interrupted');
      expect(one.ended - one.started).toBeLessThan(6000);
      expect(newer.text).toBe('got 0 newer');
      expect(newer.started).toBeGreaterThanOrEqual(one.ended);
      // Another conversation's turn on the first pod is left alone.
      const other = chat(a, 'iy', '300 other').then(jsonOf);
      await held('iy');
      expect((await chat(b, 'iz', '0 elsewhere').then(jsonOf)).text).toBe('got 0 elsewhere');
      expect((await other).text).toBe('got 300 other');
    });

    it('interrupt: still heard across pods after Redis restarts', async () => {
      await Promise.all(pods.splice(0).map((p) => p.stop()));
      const [a, b] = await Promise.all([start('interrupt'), start('interrupt')]);
      raw.on('error', () => {});
      await server.restart();
      // Both pods' listening connections come back and join the channel again, and their commands work.
      await waitFor(async () => ((await raw.pubsub('NUMSUB', 'knbot:turn:turns:interrupts')) as [string, number])[1] === 2, 'the pods to listen again', 20_000);
      for (const pod of [a, b]) await waitFor(() => chat(pod, 'after-restart', '0 hi').then((r) => r.ok, () => false), 'the pod to reach Redis again', 20_000);
      const first = chat(a, 'ir', '8000 first').then(jsonOf);
      await held('ir');
      const newer = await chat(b, 'ir', '0 newer').then(jsonOf);
      expect((await first).text).toBe('stopped: interrupted');
      expect(newer.text).toBe('got 0 newer');
    });

    it('interrupt: a message waiting for the other pod\'s turn, replaced meanwhile, never runs', async () => {
      const [a, b] = await Promise.all([start('interrupt'), start('interrupt')]);
      // The second pod's metrics are loaded before they are polled in a hurry.
      await inFlight(b, 0);
      // A turn that does not stop when interrupted ("!"), on the first pod: long enough for what follows.
      const first = chat(a, 'i', '3000! first').then(jsonOf);
      await held('i');
      // On the second pod, one message waits for the hold, and the next replaces it.
      const waiting = chat(b, 'i', '0 waiting').then(jsonOf);
      await inFlight(b, 1);
      const newer = chat(b, 'i', '0 newer').then(jsonOf);
      const [one, replaced, last] = await Promise.all([first, waiting, newer]);
      expect(one.text).toBe('got 3000! first');
      expect(replaced).toMatchObject({ text: '', skipped: 'interrupted' });
      expect(replaced.started).toBeUndefined();
      expect(last.text).toBe('got 0 newer');
      expect(last.started).toBeGreaterThanOrEqual(one.ended);
    });

    it('debounce: a burst whose messages reached different pods is answered once, by the pod with the last', async () => {
      // A window a loaded machine does not outlast between the two messages.
      const [a, b] = await Promise.all([start('debounce', { KNBOT_DEBOUNCE_MS: '3000' }), start('debounce', { KNBOT_DEBOUNCE_MS: '3000' })]);
      const burstOf = async () => {
        const key = (await raw.keys('knbot:turn:turns:burst:*')).find((k) => k.endsWith('|d'));
        return key ? raw.llen(key) : 0;
      };
      const first = chat(a, 'd', '0 one').then(jsonOf);
      await waitFor(async () => (await burstOf()) === 1, 'the burst to start');
      const second = chat(b, 'd', '0 two').then(jsonOf);
      await waitFor(async () => (await burstOf()) === 2, 'the second message in the burst');
      const [one, two, three] = await Promise.all([first, second, chat(a, 'd', '0 three').then(jsonOf)]);
      expect(one).toMatchObject({ text: '', skipped: 'merged' });
      expect(two).toMatchObject({ text: '', skipped: 'merged' });
      expect(three.text).toBe('got 0 one\n0 two\n0 three');
      // The burst is gone once taken; who came last stays a while, for a pod that comes late.
      expect(await raw.keys('knbot:turn:turns:burst:*')).toEqual([]);
      // A lone message still runs, after its wait.
      expect((await chat(b, 'd', '0 four').then(jsonOf)).text).toBe('got 0 four');
    });

    it('reject: a message to one pod is turned away while the other runs the conversation\'s turn', async () => {
      const [a, b] = await Promise.all([start('reject'), start('reject')]);
      const first = chat(a, 'r', '800 first').then(jsonOf);
      await held('r');
      const refused = await chat(b, 'r', '0 second');
      expect(refused.status).toBe(409);
      expect(await refused.json()).toMatchObject({ type: 'urn:knbot:problem:turn_in_progress' });
      expect((await first).text).toBe('got 800 first');
      expect((await chat(b, 'r', '0 again').then(jsonOf)).text).toBe('got 0 again');
    });
  });
});
