import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { SessionStore, TurnHold } from './session-store.ts';

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

type Client = Redis & {
  sessRenew(hold: string, token: string, leaseMs: number): Promise<number>;
  sessRelease(hold: string, token: string): Promise<number>;
  sessSaveHeld(hold: string, state: string, token: string, value: string, ttlMs: number): Promise<number>;
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
    sub.on('message', (from: string, text: string) => {
      if (from !== channel) return;
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
