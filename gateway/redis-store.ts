import { Redis } from 'ioredis';
import type { EgressLimiter } from './platforms/rate-limit.ts';
import { RedisRateLimiter } from './redis-rate-limit.ts';
import { DEFAULT_LIMITS, type GatewayStore, SessionGoneError, type StoreLimits } from './store.ts';

/*
 * The gateway store in Redis, shared by every gateway replica (DESIGN §4.3, §7). Keys, under `prefix`:
 *
 *   session:<id>   hash {owner, seq, ttl}: the last seq given out, and the TTL the session was opened with
 *   log:<id>       list of frame bodies, the newest last, at most maxFrames: its frames are seq-len+1 … seq
 *   frames:<id>    pub/sub channel: "<seq>|<body>" for every frame appended, by any replica
 *   key:<key>      the short-lived keys of claim/get/delete
 *
 * Each change is one Lua script, so it is atomic: two replicas appending to one session get distinct,
 * consecutive seqs, and the frames are published in seq order. Standalone Redis (or Sentinel): the
 * scripts touch two keys that Redis Cluster would put in different slots.
 *
 * What a Redis restart loses (a server without persistence, as in the tests, or with it off in
 * production): every session, its frame log and every claimed key. Resuming clients are told their
 * session is unknown and start a new one; a message id resent after the restart is not recognised as
 * a duplicate. The clients reconnect by themselves (ioredis) and resubscribe. A command that was on the
 * wire when the connection dropped is sent again after the reconnect (ioredis' default), so an append
 * the server had already run may be stored twice. Run Redis with `appendonly yes` to keep sessions
 * across its restarts.
 */

const OPEN = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'seq', 0, 'ttl', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

// ARGV: body, maxFrames, sessionTtlMs, channel. 0 for an unknown session (seqs start at 1).
const APPEND = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local keep = tonumber(ARGV[2])
redis.call('RPUSH', KEYS[2], ARGV[1])
if keep > 0 then redis.call('LTRIM', KEYS[2], -keep, -1) else redis.call('DEL', KEYS[2]) end
local ttl = math.max(redis.call('PTTL', KEYS[1]), tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PUBLISH', ARGV[4], seq .. '|' .. ARGV[1])
return seq`;

// ARGV: afterSeq. {lastSeq, first seq still in the log, bodies after afterSeq}, or nil.
const REPLAY = `
local seq = redis.call('HGET', KEYS[1], 'seq')
if not seq then return nil end
seq = tonumber(seq)
local first = seq - redis.call('LLEN', KEYS[2]) + 1
local from = math.max(tonumber(ARGV[1]) + 1, first)
return {seq, first, redis.call('LRANGE', KEYS[2], from - first, -1)}`;

// A replica with a listener on the session keeps it alive: its TTL is lifted to the session's own
// TTL plus ARGV[1] at every heartbeat. Returns the last seq, or nil for an unknown session.
const WATCH = `
local s = redis.call('HMGET', KEYS[1], 'seq', 'ttl')
if not s[1] then return nil end
local want = tonumber(s[2]) + tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < want then
  redis.call('PEXPIRE', KEYS[1], want)
  redis.call('PEXPIRE', KEYS[2], want)
end
return tonumber(s[1])`;

// SET NX that answers the value already there (SET … NX GET needs Redis 7).
const CLAIM = `
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return nil`;

interface Scripts {
  gwOpen(session: string, log: string, owner: string, ttlMs: number): Promise<number>;
  gwAppend(session: string, log: string, body: string, maxFrames: number, sessionTtlMs: number, channel: string): Promise<number>;
  gwReplay(session: string, log: string, afterSeq: number): Promise<[number, number, string[]] | null>;
  gwWatch(session: string, log: string, extraMs: number): Promise<number | null>;
  gwClaim(key: string, value: string, ttlMs: number): Promise<string | null>;
}

type Client = Redis & Scripts;

export interface RedisStoreOptions {
  /** A `redis://` URL, or a client to use: the store then leaves it open on `close`. */
  redis: string | Redis;
  /** Put before every key and channel name; default `knbot:gw:`. */
  prefix?: string;
  limits?: Partial<StoreLimits>;
  /** How often a replica renews the sessions it has listeners for; default 15 s. */
  keepAliveMs?: number;
  /** Connection errors and listener failures (the store itself carries on); default: a process warning. */
  onError?: (err: Error) => void;
}

/** One subscriber of a session, fed by pub/sub and, where a notification was missed, by the log. */
interface Listener {
  fn: (seq: number, body: string) => void;
  /** The last seq given to `fn`; undefined until the subscription is in place. */
  last: number | undefined;
  /** Notifications that came while the log was being read. */
  early: [number, string][];
  starting: boolean;
  catchingUp: boolean;
  again: boolean;
  gone: boolean;
}

interface Channel {
  listeners: Set<Listener>;
  /** Resolves once Redis confirmed the SUBSCRIBE. */
  subscribed: Promise<unknown>;
  /** The SUBSCRIBE failed (ioredis gave up reconnecting): asked again at the next heartbeat. */
  failed: boolean;
}

export class RedisGatewayStore implements GatewayStore {
  readonly #redis: Client;
  readonly #owned: boolean;
  readonly #prefix: string;
  readonly #limits: StoreLimits;
  readonly #keepAliveMs: number;
  readonly #onError: (err: Error) => void;
  readonly #channels = new Map<string, Channel>();
  #sub: Redis | undefined;
  #limiter: EgressLimiter | undefined;
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(options: RedisStoreOptions) {
    this.#onError = options.onError ?? ((err) => process.emitWarning(err));
    this.#owned = typeof options.redis === 'string';
    const redis = typeof options.redis === 'string' ? new Redis(options.redis, { connectionName: 'knbot-gateway' }) : options.redis;
    if (this.#owned) redis.on('error', this.#onError);
    for (const [name, lua, keys] of [['gwOpen', OPEN, 2], ['gwAppend', APPEND, 2], ['gwReplay', REPLAY, 2], ['gwWatch', WATCH, 2], ['gwClaim', CLAIM, 1]] as const) {
      redis.defineCommand(name, { lua, numberOfKeys: keys });
    }
    this.#redis = redis as Client;
    this.#prefix = options.prefix ?? 'knbot:gw:';
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#keepAliveMs = options.keepAliveMs ?? 15_000;
  }

  async openSession(sessionId: string, owner: string, ttlMs: number): Promise<void> {
    const created = await this.#redis.gwOpen(this.#session(sessionId), this.#log(sessionId), owner, ttlMs);
    if (created === 0) throw new Error(`session ${sessionId} exists`);
  }

  async sessionOwner(sessionId: string): Promise<string | undefined> {
    return (await this.#redis.hget(this.#session(sessionId), 'owner')) ?? undefined;
  }

  egressLimiter(): EgressLimiter {
    return (this.#limiter ??= new RedisRateLimiter(this.#redis, { prefix: this.#prefix, onError: this.#onError }));
  }

  async endSession(sessionId: string): Promise<void> {
    await this.#redis.del(this.#session(sessionId), this.#log(sessionId));
  }

  async append(sessionId: string, body: string): Promise<number> {
    const { maxFrames, sessionTtlMs } = this.#limits;
    const seq = await this.#redis.gwAppend(this.#session(sessionId), this.#log(sessionId), body, maxFrames, sessionTtlMs, this.#channel(sessionId));
    if (seq === 0) throw new SessionGoneError(sessionId);
    return seq;
  }

  async replay(sessionId: string, afterSeq: number): Promise<{ frames: [number, string][]; lastSeq: number; complete: boolean } | undefined> {
    const out = await this.#redis.gwReplay(this.#session(sessionId), this.#log(sessionId), afterSeq);
    if (!out) return undefined;
    const [lastSeq, first, bodies] = out;
    const from = lastSeq - bodies.length + 1;
    return { frames: bodies.map((body, i) => [from + i, body]), lastSeq, complete: afterSeq + 1 >= first || afterSeq >= lastSeq };
  }

  /**
   * Frames reach `listener` through the session's pub/sub channel, in seq order. "From now on" is the
   * seq the session had when `subscribe` was called (read on the command connection, so it counts
   * every append this replica made before; another replica's append that Redis ran before that read
   * counts as before too): what was appended between that and Redis confirming the SUBSCRIBE is read
   * from the log. A missed notification (a seq gap, a reconnect) is filled from the log too.
   */
  subscribe(sessionId: string, listener: (seq: number, body: string) => void): () => void {
    const l: Listener = { fn: listener, last: undefined, early: [], starting: false, catchingUp: false, again: false, gone: false };
    let channel = this.#channels.get(sessionId);
    if (!channel) {
      channel = { listeners: new Set(), subscribed: Promise.resolve(), failed: false };
      this.#listen(sessionId, channel);
      this.#channels.set(sessionId, channel);
      this.#heartbeat ??= setInterval(() => this.#keepAlive(), this.#keepAliveMs).unref();
    }
    channel.listeners.add(l);
    this.#start(sessionId, channel, l);
    return () => this.#leave(sessionId, l);
  }

  async claim(key: string, value: string, ttlMs: number): Promise<string | undefined> {
    return (await this.#redis.gwClaim(this.#key(key), value, ttlMs)) ?? undefined;
  }

  async put(key: string, value: string, ttlMs: number): Promise<void> {
    await this.#redis.set(this.#key(key), value, 'PX', ttlMs);
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.#redis.get(this.#key(key))) ?? undefined;
  }

  async delete(key: string): Promise<void> {
    await this.#redis.del(this.#key(key));
  }

  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    for (const channel of this.#channels.values()) for (const l of channel.listeners) l.gone = true;
    this.#channels.clear();
    const quit = (client: Redis) => client.quit().then(() => undefined, () => client.disconnect());
    await Promise.all([this.#sub && quit(this.#sub), this.#owned && quit(this.#redis)]);
  }

  #session = (id: string) => `${this.#prefix}session:${id}`;
  #log = (id: string) => `${this.#prefix}log:${id}`;
  #channel = (id: string) => `${this.#prefix}frames:${id}`;
  #key = (key: string) => `${this.#prefix}key:${key}`;

  /** The one subscriber connection of this store, made on first use. */
  #subscriber(): Redis {
    if (this.#sub) return this.#sub;
    const sub = this.#redis.duplicate({ connectionName: 'knbot-gateway-sub' });
    sub.on('error', this.#onError);
    const prefix = `${this.#prefix}frames:`;
    sub.on('message', (channel: string, message: string) => {
      if (!channel.startsWith(prefix)) return;
      const bar = message.indexOf('|');
      this.#notify(channel.slice(prefix.length), Number(message.slice(0, bar)), message.slice(bar + 1));
    });
    let connected = false;
    sub.on('ready', () => {
      if (!connected) return void (connected = true);
      // Reconnected (ioredis resubscribes first): whatever was published meanwhile is in the logs. The
      // PING is answered after the SUBSCRIBEs, so the logs are read once the channels are back.
      sub.ping().then(() => this.#catchUpAll(), this.#onError);
    });
    this.#sub = sub;
    return sub;
  }

  #listen(sessionId: string, channel: Channel): void {
    channel.failed = false;
    channel.subscribed = this.#subscriber().subscribe(this.#channel(sessionId));
    channel.subscribed.catch(() => (channel.failed = true));
  }

  /** Reads the session's seq at once; once subscribed, gives the listener what came after it. */
  #start(sessionId: string, channel: Channel, l: Listener): void {
    l.starting = true;
    const seq = this.#redis.gwWatch(this.#session(sessionId), this.#log(sessionId), 2 * this.#keepAliveMs);
    Promise.all([seq, channel.subscribed]).then(
      ([last]) => {
        l.starting = false;
        if (l.gone) return;
        // An unknown session gets no frames, as in the memory store.
        if (last === null) return this.#leave(sessionId, l);
        l.last = last;
        void this.#catchUp(sessionId, l);
      },
      (err: Error) => {
        // Tried again at the next heartbeat or reconnect.
        l.starting = false;
        this.#onError(err);
      },
    );
  }

  #notify(sessionId: string, seq: number, body: string): void {
    const channel = this.#channels.get(sessionId);
    if (!channel) return;
    for (const l of channel.listeners) {
      if (l.last === undefined || l.catchingUp) l.early.push([seq, body]);
      else if (seq === l.last + 1) this.#give(l, seq, body);
      else if (seq > l.last) {
        l.early.push([seq, body]);
        void this.#catchUp(sessionId, l);
      }
    }
  }

  /** Reads the log after the listener's last seq, then what arrived meanwhile; again if asked meanwhile. */
  async #catchUp(sessionId: string, l: Listener): Promise<void> {
    if (l.catchingUp) return void (l.again = true);
    l.catchingUp = true;
    try {
      do {
        l.again = false;
        const log = await this.replay(sessionId, l.last!);
        if (l.gone) return;
        for (const [seq, body] of log?.frames ?? []) this.#give(l, seq, body);
        for (const [seq, body] of l.early.splice(0).sort((a, b) => a[0] - b[0])) this.#give(l, seq, body);
      } while (l.again);
    } catch (err) {
      this.#onError(err as Error);
    } finally {
      l.catchingUp = false;
    }
  }

  #catchUpAll(): void {
    for (const [sessionId, channel] of this.#channels) {
      for (const l of channel.listeners) if (l.last !== undefined) void this.#catchUp(sessionId, l);
    }
    this.#retryStarts();
  }

  /** Subscriptions that failed to start (Redis was away too long) are made again. */
  #retryStarts(): void {
    for (const [sessionId, channel] of this.#channels) {
      if (channel.failed) this.#listen(sessionId, channel);
      for (const l of channel.listeners) if (l.last === undefined && !l.starting) this.#start(sessionId, channel, l);
    }
  }

  #give(l: Listener, seq: number, body: string): void {
    if (l.gone || seq <= l.last!) return;
    l.last = seq;
    try {
      l.fn(seq, body);
    } catch (err) {
      this.#onError(err as Error);
    }
  }

  #leave(sessionId: string, l: Listener): void {
    if (l.gone) return;
    l.gone = true;
    const channel = this.#channels.get(sessionId);
    if (!channel?.listeners.delete(l) || channel.listeners.size > 0) return;
    this.#channels.delete(sessionId);
    this.#sub?.unsubscribe(this.#channel(sessionId)).catch(this.#onError);
    if (this.#channels.size === 0) {
      clearInterval(this.#heartbeat);
      this.#heartbeat = undefined;
    }
  }

  /** Renews every session this replica has listeners for, in one round trip. */
  #keepAlive(): void {
    const batch = this.#redis.pipeline() as ReturnType<Redis['pipeline']> & { gwWatch(session: string, log: string, extraMs: number): unknown };
    for (const id of this.#channels.keys()) batch.gwWatch(this.#session(id), this.#log(id), 2 * this.#keepAliveMs);
    batch.exec().catch(this.#onError);
    this.#retryStarts();
  }
}
