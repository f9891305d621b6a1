import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { BurstPiece, SessionStore, TurnHold } from './session-store.ts';

export interface RedisSessionOptions {
  /** A `redis://` URL, or a client to use: the store then leaves it open on `close`. */
  redis: string | Redis;
  /** Put before every conversation key; the pod uses `knbot:session:<bot>:` so bots sharing a Redis keep apart. */
  prefix?: string;
  /** Put before a held conversation's key; the pod uses `knbot:turn:<bot>:`. */
  holdPrefix?: string;
  /** How long a conversation's state is kept after its last save; default a day, as the memory store. */
  ttlMs?: number;
  /**
   * How long a hold lasts unless renewed; a live pod renews it every third of that, so only a pod that
   * died (or stalled that long) loses it. Default 15 s.
   */
  leaseMs?: number;
  /** Connection errors (commands fail on their own; this is for the log). */
  onError?: (err: Error) => void;
}

// Each runs only while the hold is this pod's: a lapsed hold neither renews, nor frees, nor saves.
const RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0";
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0";
const SAVE_HELD = "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('set', KEYS[2], ARGV[2], 'PX', ARGV[3]) return 1 end return 0";
// A debounced burst: its pieces in arrival order (KEYS[1]) and the id of its last message (KEYS[2]).
const BURST_ADD = "redis.call('rpush', KEYS[1], ARGV[1]) redis.call('pexpire', KEYS[1], ARGV[3]) redis.call('set', KEYS[2], ARGV[2], 'PX', ARGV[3]) return 1";
// Taken whole by its last message's pod once its wait is over; anyone else learns who came last. A burst
// gone with its TTL (a pod stalled that long) leaves the message alone, so it still gets its turn.
const BURST_TAKE = `local last = redis.call('get', KEYS[2])
if not last then return {1, {ARGV[2]}} end
if last ~= ARGV[1] then return {0, last} end
local burst = redis.call('lrange', KEYS[1], 0, -1)
redis.call('del', KEYS[1], KEYS[2])
return {1, burst}`;

type Client = Redis & {
  sessRenew(hold: string, token: string, leaseMs: number): Promise<number>;
  sessRelease(hold: string, token: string): Promise<number>;
  sessSaveHeld(hold: string, state: string, token: string, value: string, ttlMs: number): Promise<number>;
  sessBurstAdd(burst: string, last: string, piece: string, id: string, ttlMs: number): Promise<number>;
  sessBurstTake(burst: string, last: string, id: string, piece: string): Promise<[1, string[]] | [0, string]>;
};

/** Waits between tries for a held conversation: short at first, at most this long. */
const MAX_POLL_MS = 100;

/**
 * Conversation state in Redis (DESIGN §4.3), so any pod can answer and state outlives a scale to zero:
 * one JSON string per conversation, its TTL renewed by every save.
 *
 * A turn holds its conversation (a key set only if absent, with a lease the pod renews), so turns of
 * one conversation run one at a time across every pod, not only within one: the next turn, on any pod,
 * loads what the last one saved. A pod waiting for a held conversation tries again every few tens of
 * milliseconds. A hold whose pod died lapses with its lease; a turn that outlived its lapsed hold does
 * not save, rather than overwrite what a later turn saved.
 *
 * A debounced burst (the `debounce` policy) is a list per conversation that every pod adds its message
 * to; the pod whose message is still the last one when its wait is over takes the list and runs it.
 *
 * Interrupts (the `interrupt` policy) go to every pod of the bot on one pub/sub channel,
 * `<holdPrefix>interrupts`. One is published on the connection that then asks for the hold, so the pod
 * holding the conversation hears it before the hold is asked for.
 */
export class RedisSessionStore implements SessionStore {
  readonly #redis: Client;
  readonly #owned: boolean;
  readonly #prefix: string;
  readonly #holdPrefix: string;
  readonly #ttlMs: number;
  readonly #leaseMs: number;
  readonly #onError: (err: Error) => void;
  /** Tells this store's own interrupts from other pods'. */
  readonly #instance = randomUUID();
  #subscriber: Redis | undefined;

  constructor(options: RedisSessionOptions) {
    this.#owned = typeof options.redis === 'string';
    this.#onError = options.onError ?? ((err: Error) => process.emitWarning(err));
    // A turn fails fast while Redis is away (the platform retries the event) rather than waiting for it.
    const redis = typeof options.redis === 'string' ? new Redis(options.redis, { connectionName: 'knbot-sessions', maxRetriesPerRequest: 1 }) : options.redis;
    if (this.#owned) redis.on('error', this.#onError);
    redis.defineCommand('sessRenew', { lua: RENEW, numberOfKeys: 1 });
    redis.defineCommand('sessRelease', { lua: RELEASE, numberOfKeys: 1 });
    redis.defineCommand('sessSaveHeld', { lua: SAVE_HELD, numberOfKeys: 2 });
    redis.defineCommand('sessBurstAdd', { lua: BURST_ADD, numberOfKeys: 2 });
    redis.defineCommand('sessBurstTake', { lua: BURST_TAKE, numberOfKeys: 2 });
    this.#redis = redis as Client;
    this.#prefix = options.prefix ?? 'knbot:session:';
    this.#holdPrefix = options.holdPrefix ?? 'knbot:turn:';
    this.#ttlMs = options.ttlMs ?? 24 * 3600_000;
    this.#leaseMs = options.leaseMs ?? 15_000;
  }

  async hold(conversation: string, options: { wait: boolean; signal: AbortSignal }): Promise<TurnHold | undefined> {
    const key = this.#holdPrefix + conversation;
    const token = randomUUID();
    for (let attempt = 0; ; attempt++) {
      options.signal.throwIfAborted();
      if ((await this.#redis.set(key, token, 'PX', this.#leaseMs, 'NX')) === 'OK') return this.#held(key, conversation, token);
      if (!options.wait) return undefined;
      const pause = Math.min(MAX_POLL_MS, 5 * 2 ** attempt);
      await sleep(pause / 2 + Math.random() * (pause / 2), undefined, { signal: options.signal }).catch((err: unknown) => {
        options.signal.throwIfAborted();
        throw err;
      });
    }
  }

  #held(key: string, conversation: string, token: string): TurnHold {
    let lapsed = false;
    const renew = setInterval(() => {
      this.#redis.sessRenew(key, token, this.#leaseMs).then(
        (ok) => {
          if (ok === 0) lapsed = true;
        },
        (err: Error) => this.#onError(err),
      );
    }, this.#leaseMs / 3);
    renew.unref();
    return {
      save: async (state) => {
        if (lapsed) return false;
        return (await this.#redis.sessSaveHeld(key, this.#prefix + conversation, token, JSON.stringify(state), this.#ttlMs)) === 1;
      },
      release: async () => {
        clearInterval(renew);
        // When Redis is away the hold lapses with its lease instead.
        await this.#redis.sessRelease(key, token).catch((err: Error) => this.#onError(err));
      },
    };
  }

  async interrupt(conversation: string, by: string): Promise<void> {
    await this.#redis.publish(`${this.#holdPrefix}interrupts`, JSON.stringify({ from: this.#instance, conversation, by }));
  }

  async onInterrupt(listener: (conversation: string, by: string) => void): Promise<void> {
    const channel = `${this.#holdPrefix}interrupts`;
    // A connection that subscribes can do nothing else; ioredis subscribes it again after a reconnect.
    const sub = (this.#subscriber ??= this.#redis.duplicate({ connectionName: 'knbot-interrupts' }));
    sub.on('error', this.#onError);
    sub.on('message', (name: string, text: string) => {
      if (name !== channel) return;
      let m: { from?: unknown; conversation?: unknown; by?: unknown };
      try {
        m = JSON.parse(text) as typeof m;
      } catch {
        return;
      }
      if (m.from !== this.#instance && typeof m.conversation === 'string' && typeof m.by === 'string') listener(m.conversation, m.by);
    });
    await sub.subscribe(channel);
  }

  async gather(conversation: string, piece: BurstPiece, waitMs: number, signal: AbortSignal): Promise<{ burst: BurstPiece[] } | { by: string }> {
    const [burst, last] = [`${this.#holdPrefix}burst:${conversation}`, `${this.#holdPrefix}burst-last:${conversation}`];
    const text = JSON.stringify(piece);
    // Kept well past the last wait, so a pod a little late still finds its burst.
    await this.#redis.sessBurstAdd(burst, last, text, piece.id, waitMs * 2 + 10_000);
    await sleep(waitMs, undefined, { signal });
    const [mine, got] = await this.#redis.sessBurstTake(burst, last, piece.id, text);
    if (mine === 0) return { by: got as string };
    // A message delivered twice (at least once is the broker's promise) counts once, where it came last.
    const pieces = (got as string[]).map((p) => JSON.parse(p) as BurstPiece);
    return { burst: pieces.filter((p, i) => !pieces.slice(i + 1).some((later) => later.id === p.id)) };
  }

  async load(conversation: string): Promise<Record<string, unknown>> {
    const text = await this.#redis.get(this.#prefix + conversation);
    return text === null ? {} : (JSON.parse(text) as Record<string, unknown>);
  }

  async save(conversation: string, state: Record<string, unknown>): Promise<void> {
    await this.#redis.set(this.#prefix + conversation, JSON.stringify(state), 'PX', this.#ttlMs);
  }

  async close(): Promise<void> {
    const sub = this.#subscriber;
    if (sub) await sub.quit().catch(() => sub.disconnect());
    if (this.#owned) await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}
