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

    it('keep the state when every pod is gone (a scale to zero) and a new one answers', async () => {
      const a = await start();
      expect((await say(a, 'cold')).text).toBe('1');
      await Promise.all(pods.map((p) => p.stop()));
      const c = await start();
      expect((await say(c, 'cold')).text).toBe('2');
    });
  });
});
