import type { Redis } from 'ioredis';
import { type BucketSpec, type EgressLimiter, RateLimiter, sleep } from './platforms/rate-limit.ts';

// The egress token buckets in Redis, shared by every gateway replica: a platform's limits are the bot's
// (Telegram's 30 messages a second per bot token, one a second per chat), not each replica's. One
// script takes from every bucket of a call at once, on Redis's clock, so replicas whose clocks differ
// still agree. The buckets sit in one hash slot (`{egress}`), so a Redis Cluster runs the script too.

// ARGV: mode ('reserve' | 'try'), then per key: capacity, tokens per second, tokens `try` must leave.
// Answers the wait in ms for 'reserve', and -1 from 'try' when it took nothing.
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tokens = {}
for i, key in ipairs(KEYS) do
  local cap = tonumber(ARGV[2 + (i - 1) * 3])
  local rate = tonumber(ARGV[3 + (i - 1) * 3])
  local state = redis.call('HMGET', key, 'tokens', 'updated')
  local held = tonumber(state[1]) or cap
  local updated = tonumber(state[2]) or now
  tokens[i] = math.min(cap, held + math.max(0, now - updated) / 1000 * rate)
end
if ARGV[1] == 'try' then
  for i = 1, #KEYS do
    if tokens[i] < 1 + tonumber(ARGV[4 + (i - 1) * 3]) then return -1 end
  end
end
local wait = 0
for i, key in ipairs(KEYS) do
  local cap = tonumber(ARGV[2 + (i - 1) * 3])
  local rate = tonumber(ARGV[3 + (i - 1) * 3])
  local left = tokens[i] - 1
  if left < 0 then wait = math.max(wait, math.ceil(-left / rate * 1000)) end
  redis.call('HSET', key, 'tokens', tostring(left), 'updated', now)
  -- Forgotten once it would be full again: a full bucket and no bucket are the same.
  redis.call('PEXPIRE', key, math.ceil((cap - left) / rate * 1000) + 1000)
end
return wait
`;

type Client = Redis & { gwTake(...args: (string | number)[]): Promise<number> };

export interface RedisRateLimiterOptions {
  /** Put before every bucket key; the gateway store's prefix. */
  prefix: string;
  /** Redis failures: calls then fall back to this replica's own buckets. */
  onError?: (err: Error) => void;
}

/** Token buckets shared through Redis; while Redis fails, each replica keeps its own. */
export class RedisRateLimiter implements EgressLimiter {
  readonly #redis: Client;
  readonly #prefix: string;
  readonly #local = new RateLimiter();
  readonly #onError: (err: Error) => void;

  constructor(redis: Redis, options: RedisRateLimiterOptions) {
    redis.defineCommand('gwTake', { lua: TAKE });
    this.#redis = redis as Client;
    this.#prefix = `${options.prefix}rl:{egress}:`;
    this.#onError = options.onError ?? ((err) => process.emitWarning(err));
  }

  async acquire(specs: readonly BucketSpec[], signal?: AbortSignal): Promise<void> {
    if (specs.length === 0) return;
    let wait: number;
    try {
      wait = await this.#take('reserve', specs);
    } catch (err) {
      this.#onError(err as Error);
      return this.#local.acquire(specs, signal);
    }
    if (wait > 0) await sleep(wait, signal);
  }

  async tryTake(specs: readonly BucketSpec[]): Promise<boolean> {
    if (specs.length === 0) return true;
    try {
      return (await this.#take('try', specs)) >= 0;
    } catch (err) {
      this.#onError(err as Error);
      return this.#local.tryTake(specs);
    }
  }

  #take(mode: 'reserve' | 'try', specs: readonly BucketSpec[]): Promise<number> {
    const args: (string | number)[] = [specs.length, ...specs.map((s) => this.#prefix + s.key), mode];
    for (const s of specs) args.push(s.capacity, s.perSecond, s.reserve ?? 0);
    return this.#redis.gwTake(...args);
  }
}
