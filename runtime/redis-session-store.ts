import { Redis } from 'ioredis';
import type { SessionStore } from './session-store.ts';

export interface RedisSessionOptions {
  /** A `redis://` URL, or a client to use: the store then leaves it open on `close`. */
  redis: string | Redis;
  /** Put before every conversation key; the pod uses `knbot:session:<bot>:` so bots sharing a Redis keep apart. */
  prefix?: string;
  /** How long a conversation's state is kept after its last save; default a day, as the memory store. */
  ttlMs?: number;
  /** Connection errors (commands fail on their own; this is for the log). */
  onError?: (err: Error) => void;
}

/**
 * Conversation state in Redis (DESIGN §4.3), so any pod can answer and state outlives a scale to zero:
 * one JSON string per conversation, its TTL renewed by every save.
 *
 * Pods do not lock a conversation: when two pods run turns of one conversation at the same time, the
 * later save wins. Order across pods is the broker's: an ordered route delivers one conversation's
 * events one at a time.
 */
export class RedisSessionStore implements SessionStore {
  readonly #redis: Redis;
  readonly #owned: boolean;
  readonly #prefix: string;
  readonly #ttlMs: number;

  constructor(options: RedisSessionOptions) {
    this.#owned = typeof options.redis === 'string';
    // A turn fails fast while Redis is away (the platform retries the event) rather than waiting for it.
    this.#redis = typeof options.redis === 'string' ? new Redis(options.redis, { connectionName: 'knbot-sessions', maxRetriesPerRequest: 1 }) : options.redis;
    if (this.#owned) this.#redis.on('error', options.onError ?? ((err: Error) => process.emitWarning(err)));
    this.#prefix = options.prefix ?? 'knbot:session:';
    this.#ttlMs = options.ttlMs ?? 24 * 3600_000;
  }

  async load(conversation: string): Promise<Record<string, unknown>> {
    const text = await this.#redis.get(this.#prefix + conversation);
    return text === null ? {} : (JSON.parse(text) as Record<string, unknown>);
  }

  async save(conversation: string, state: Record<string, unknown>): Promise<void> {
    await this.#redis.set(this.#prefix + conversation, JSON.stringify(state), 'PX', this.#ttlMs);
  }

  async close(): Promise<void> {
    if (this.#owned) await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}
