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
  /**
   * The longest wait between tries for a held conversation (default 250 ms). A pod is told when a hold is
   * let go and tries at once; the polls are for a hold that lapsed, or a word missed.
   */
  maxPollMs?: number;
  /** Connection errors (commands fail on their own; this is for the log). */
  onError?: (err: Error) => void;
}

// A turn costs two round trips: the hold taken with the state read, then the state saved with the hold
// let go (or the hold let go alone). Letting go says so on a channel, so a pod waiting for the
// conversation asks again at once rather than at its next poll.
const HOLD_LOAD = "if redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return {1, redis.call('get', KEYS[2])} end return {0}";
// Each of these runs only while the hold is this pod's: a lapsed hold neither renews, nor frees, nor saves.
const RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0";
const RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) redis.call('publish', ARGV[2], KEYS[1]) return 1 end return 0";
const SAVE_RELEASE =
  "if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('set', KEYS[2], ARGV[2], 'PX', ARGV[3]) redis.call('del', KEYS[1]) redis.call('publish', ARGV[4], KEYS[1]) return 1 end return 0";
// A debounced burst: its pieces in arrival order (KEYS[1]) and the id of its last message (KEYS[2]).
const BURST_ADD = "redis.call('rpush', KEYS[1], ARGV[1]) redis.call('pexpire', KEYS[1], ARGV[3]) redis.call('set', KEYS[2], ARGV[2], 'PX', ARGV[3]) return 1";
// Taken whole by its last message's pod once its wait is over; anyone else learns who came last, also
// after the taking (the last id stays, with its TTL, for a pod that comes late). A burst gone with its
// TTL (a pod stalled that long) leaves the message alone, so it still gets its turn.
const BURST_TAKE = `local last = redis.call('get', KEYS[2])
if not last then return {1, {ARGV[2]}} end
if last ~= ARGV[1] then return {0, last} end
local burst = redis.call('lrange', KEYS[1], 0, -1)
redis.call('del', KEYS[1])
return {1, burst}`;

type Client = Redis & {
  sessHoldLoad(hold: string, state: string, token: string, leaseMs: number): Promise<[1, string | null] | [0]>;
  sessRenew(hold: string, token: string, leaseMs: number): Promise<number>;
  sessRelease(hold: string, token: string, channel: string): Promise<number>;
  sessSaveRelease(hold: string, state: string, token: string, value: string, ttlMs: number, channel: string): Promise<number>;
  sessBurstAdd(burst: string, last: string, piece: string, id: string, ttlMs: number): Promise<number>;
  sessBurstTake(burst: string, last: string, id: string, piece: string): Promise<[1, string[]] | [0, string]>;
};

/** Waits between tries for a held conversation, unless told first that it was let go: short at first, at most this long. */
const MAX_POLL_MS = 250;

/**
 * Conversation state in Redis (DESIGN §4.3), so any pod can answer and state outlives a scale to zero:
 * one JSON string per conversation, its TTL renewed by every save.
 *
 * A turn holds its conversation (a key set only if absent, with a lease the pod renews), so turns of
 * one conversation run one at a time across every pod, not only within one: the next turn, on any pod,
 * loads what the last one saved. A pod waiting for a held conversation is told on a channel when it is
 * let go, and tries again then. A hold whose pod died lapses with its lease (waiting pods poll for
 * that); a turn that outlived its lapsed hold does not save, rather than overwrite what a later turn
 * saved.
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
  readonly #maxPollMs: number;
  readonly #onError: (err: Error) => void;
  /** Tells this store's own interrupts from other pods'. */
  readonly #instance = randomUUID();
  /** The connection that listens (once anything here waits or takes interrupts), by channel. */
  #subscriber: Redis | undefined;
  readonly #channels = new Map<string, (message: string) => void>();
  /** Pods here waiting for a held conversation, by hold key: woken when it is let go. */
  readonly #waiting = new Map<string, Set<() => void>>();
  #listening: Promise<void> | undefined;
  #hearsReleases = false;

  constructor(options: RedisSessionOptions) {
    this.#owned = typeof options.redis === 'string';
    this.#onError = options.onError ?? ((err: Error) => process.emitWarning(err));
    // A turn fails fast while Redis is away (the platform retries the event) rather than waiting for it.
    const redis = typeof options.redis === 'string' ? new Redis(options.redis, { connectionName: 'knbot-sessions', maxRetriesPerRequest: 1 }) : options.redis;
    if (this.#owned) redis.on('error', this.#onError);
    redis.defineCommand('sessHoldLoad', { lua: HOLD_LOAD, numberOfKeys: 2 });
    redis.defineCommand('sessRenew', { lua: RENEW, numberOfKeys: 1 });
    redis.defineCommand('sessRelease', { lua: RELEASE, numberOfKeys: 1 });
    redis.defineCommand('sessSaveRelease', { lua: SAVE_RELEASE, numberOfKeys: 2 });
    redis.defineCommand('sessBurstAdd', { lua: BURST_ADD, numberOfKeys: 2 });
    redis.defineCommand('sessBurstTake', { lua: BURST_TAKE, numberOfKeys: 2 });
    this.#redis = redis as Client;
    this.#prefix = options.prefix ?? 'knbot:session:';
    this.#holdPrefix = options.holdPrefix ?? 'knbot:turn:';
    this.#ttlMs = options.ttlMs ?? 24 * 3600_000;
    this.#leaseMs = options.leaseMs ?? 15_000;
    this.#maxPollMs = options.maxPollMs ?? MAX_POLL_MS;
  }

  async hold(conversation: string, options: { wait: boolean; signal: AbortSignal }): Promise<TurnHold | undefined> {
    const key = this.#holdPrefix + conversation;
    const token = randomUUID();
    // Listening before the first try: a release between a failed try and the wait is not missed.
    if (options.wait) await this.#listenForReleases();
    for (let attempt = 0; ; attempt++) {
      options.signal.throwIfAborted();
      const woken = options.wait ? this.#released(key) : undefined;
      const got = await this.#redis.sessHoldLoad(key, this.#prefix + conversation, token, this.#leaseMs);
      if (got[0] === 1) {
        woken?.cancel();
        return this.#held(key, conversation, token, got[1] === null ? {} : (JSON.parse(got[1]) as Record<string, unknown>));
      }
      if (!woken) return undefined;
      // Told of releases, a pod polls only for what no word comes for; else it polls soon, then less often.
      const pause = this.#hearsReleases ? this.#maxPollMs : Math.min(this.#maxPollMs, 5 * 2 ** attempt);
      try {
        await Promise.race([woken.promise, sleep(pause / 2 + Math.random() * (pause / 2), undefined, { signal: options.signal })]);
      } catch (err) {
        options.signal.throwIfAborted();
        throw err;
      } finally {
        woken.cancel();
      }
    }
  }

  #held(key: string, conversation: string, token: string, state: Record<string, unknown>): TurnHold {
    let lapsed = false;
    let released = false;
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
      state,
      save: async (next) => {
        if (lapsed) return false;
        clearInterval(renew);
        released = true;
        return (await this.#redis.sessSaveRelease(key, this.#prefix + conversation, token, JSON.stringify(next), this.#ttlMs, this.#releasedChannel)) === 1;
      },
      release: async () => {
        clearInterval(renew);
        if (released) return;
        released = true;
        // When Redis is away the hold lapses with its lease instead.
        await this.#redis.sessRelease(key, token, this.#releasedChannel).catch((err: Error) => this.#onError(err));
      },
    };
  }

  get #releasedChannel(): string {
    return `${this.#holdPrefix}released`;
  }

  /** Joins the channel holds are let go on, once; while it cannot (Redis away), waiting polls, and the next wait tries again. */
  #listenForReleases(): Promise<void> {
    this.#listening ??= this.#subscribe(this.#releasedChannel, (key) => {
      for (const wake of this.#waiting.get(key) ?? []) wake();
    }).then(
      () => void (this.#hearsReleases = true),
      (err: Error) => {
        this.#listening = undefined;
        this.#onError(err);
      },
    );
    return this.#listening;
  }

  /** Settles when the hold `key` is let go (or never, until cancelled). */
  #released(key: string): { promise: Promise<void>; cancel: () => void } {
    let wake!: () => void;
    const promise = new Promise<void>((resolve) => (wake = resolve));
    let set = this.#waiting.get(key);
    if (!set) this.#waiting.set(key, (set = new Set()));
    set.add(wake);
    return {
      promise,
      cancel: () => {
        if (set.delete(wake) && set.size === 0) this.#waiting.delete(key);
      },
    };
  }

  /** Calls `handler` with each message on `channel`, on the one connection that listens. */
  async #subscribe(channel: string, handler: (message: string) => void): Promise<void> {
    if (!this.#subscriber) {
      // A connection that subscribes can do nothing else; ioredis subscribes it again after a reconnect.
      const sub = this.#redis.duplicate({ connectionName: 'knbot-sessions-listen' });
      sub.on('error', this.#onError);
      sub.on('message', (name: string, message: string) => this.#channels.get(name)?.(message));
      this.#subscriber = sub;
    }
    this.#channels.set(channel, handler);
    await this.#subscriber.subscribe(channel);
  }

  async interrupt(conversation: string, by: string): Promise<void> {
    await this.#redis.publish(`${this.#holdPrefix}interrupts`, JSON.stringify({ from: this.#instance, conversation, by }));
  }

  async onInterrupt(listener: (conversation: string, by: string) => void): Promise<void> {
    await this.#subscribe(`${this.#holdPrefix}interrupts`, (text) => {
      let m: { from?: unknown; conversation?: unknown; by?: unknown };
      try {
        m = JSON.parse(text) as typeof m;
      } catch {
        return;
      }
      if (m.from !== this.#instance && typeof m.conversation === 'string' && typeof m.by === 'string') listener(m.conversation, m.by);
    });
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
