import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPLY_SEND } from '../../eventing/chat.ts';
import { encodeBinary } from '../../eventing/codec.ts';
import { parseTokens } from '../../gateway/auth.ts';
import { RedisGatewayStore } from '../../gateway/redis-store.ts';
import { RedisRateLimiter } from '../../gateway/redis-rate-limit.ts';
import { Gateway } from '../../gateway/server.ts';
import { startFakeTelegram } from '../fakes/platforms.ts';
import { type RedisServer, redisServerPath, startRedis } from '../redis.ts';

const bin = redisServerPath();

describe.skipIf(!bin)('egress rate limits shared by gateway replicas (Redis)', () => {
  let server: RedisServer;
  const clients: Redis[] = [];
  let n = 0;
  /** Two replicas' limiters on one Redis, each with its own connection, as two processes have. */
  const replicas = () => {
    const prefix = `rl${++n}:`;
    return [0, 1].map(() => {
      const redis = new Redis(server.url);
      clients.push(redis);
      return new RedisRateLimiter(redis, { prefix });
    }) as [RedisRateLimiter, RedisRateLimiter];
  };

  beforeAll(async () => {
    server = await startRedis(bin);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.quit()));
    await server?.stop();
  });

  it('spends one bucket between the replicas, not one each', async () => {
    const [a, b] = replicas();
    const chat = [{ key: 'telegram:t1:chat:42', capacity: 2, perSecond: 0.001 }];
    expect(await a.tryTake(chat)).toBe(true);
    expect(await b.tryTake(chat)).toBe(true);
    expect(await a.tryTake(chat)).toBe(false);
    expect(await b.tryTake(chat)).toBe(false);
    // Another chat has its own bucket.
    expect(await b.tryTake([{ key: 'telegram:t1:chat:43', capacity: 2, perSecond: 0.001 }])).toBe(true);
  });

  it('takes from every bucket of a call or from none, leaving the reserve to waiting callers', async () => {
    const [a, b] = replicas();
    const global = { key: 'telegram:t1', capacity: 3, perSecond: 0.001, reserve: 1 };
    const chat = { key: 'telegram:t1:chat:1', capacity: 1, perSecond: 0.001 };
    expect(await a.tryTake([global, chat])).toBe(true);
    // The chat is spent: nothing is taken from the global bucket either.
    expect(await b.tryTake([global, chat])).toBe(false);
    expect(await b.tryTake([global])).toBe(true);
    // One token left, and it is the reserve: a skippable call may not have it, a waiting one may.
    expect(await a.tryTake([global])).toBe(false);
    await a.acquire([global]);
    expect(await b.tryTake([{ ...global, reserve: 0 }])).toBe(false);
  });

  it('makes callers on both replicas queue behind each other for a shared bucket', async () => {
    const [a, b] = replicas();
    // One token, refilled every 50 ms: the third of three calls cannot start before 100 ms.
    const bucket = [{ key: 'slack:w1:channel:C1', capacity: 1, perSecond: 20 }];
    const t0 = performance.now();
    await Promise.all([a.acquire(bucket), b.acquire(bucket), a.acquire(bucket)]);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(90);
  });

  it('holds two gateway replicas on one Redis to Telegram\'s one message a second per chat', async () => {
    const token = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
    const telegram = await startFakeTelegram(token, ['1111111']);
    const prefix = `replicas${++n}:`;
    const stores = [0, 1].map(() => new RedisGatewayStore({ redis: server.url, prefix }));
    const gateways = stores.map(
      (store) =>
        new Gateway({
          brokerUrl: 'http://127.0.0.1:9/',
          bots: () => [{ name: 'echo', namespace: 'default' }],
          auth: { tokens: parseTokens('t=u') },
          store,
          channels: (bot, platform) => (bot === 'echo' && platform === 'telegram' ? { botToken: token } : undefined),
          env: { KNBOT_TELEGRAM_API_URL: telegram.url },
        }),
    );
    try {
      const ports = await Promise.all(gateways.map((g) => g.start(0)));
      const reply = (id: string) =>
        encodeBinary({ specversion: '1.0', id, source: '/bots/echo', type: REPLY_SEND, subject: '1111111', chatbot: 'echo', chatplatform: 'telegram', chattenant: 'default', datacontenttype: 'application/json', data: { text: `reply ${id}`, conversation: { id: '1111111' }, inReplyTo: `in-${id}` } });
      const t0 = performance.now();
      const statuses = await Promise.all(ports.map(({ egressPort }, i) => fetch(`http://127.0.0.1:${egressPort}/`, { method: 'POST', ...reply(`r${i}`) }).then((r) => r.status)));
      expect(statuses.every((s) => s >= 200 && s < 300)).toBe(true);
      expect(telegram.requests.filter((r) => r.path.endsWith('/sendMessage'))).toHaveLength(2);
      // One went at once, the other waited for the chat's bucket, whichever replica it came through.
      expect(performance.now() - t0).toBeGreaterThanOrEqual(900);
    } finally {
      await Promise.all(gateways.map((g) => g.close()));
      await Promise.all(stores.map((s) => s.close()));
      await telegram.close();
    }
  });

  it('falls back to its own buckets while Redis cannot be reached', async () => {
    const errors: Error[] = [];
    const dead = new Redis({ port: 1, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    dead.on('error', () => {});
    const limiter = new RedisRateLimiter(dead, { prefix: 'dead:', onError: (e) => errors.push(e) });
    const bucket = [{ key: 'line:x', capacity: 1, perSecond: 0.001 }];
    expect(await limiter.tryTake(bucket)).toBe(true);
    expect(await limiter.tryTake(bucket)).toBe(false);
    expect(errors.length).toBeGreaterThan(0);
    dead.disconnect();
  });
});
