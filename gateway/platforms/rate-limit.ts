// Token buckets for egress, keyed by platform, credential and scope (a chat, a channel, a recipient).
// A caller reserves a token from every bucket that applies and waits for the latest of them, so
// concurrent deliveries queue in arrival order instead of all waking at once.

export interface BucketSpec {
  /** Unique per platform, credential and scope; never the credential itself (see `credentialKey`). */
  key: string;
  /** Tokens the bucket holds when full: the burst allowed. */
  capacity: number;
  /** Tokens added per second. */
  perSecond: number;
  /**
   * Tokens `tryTake` leaves in the bucket for callers that wait (replies): what a call that may be
   * skipped (a typing indicator) must not use. `reserve` and `acquire` ignore it.
   */
  reserve?: number;
}

/** What egress takes its tokens from: this process's buckets, or buckets every replica shares (Redis). */
export interface EgressLimiter {
  /** Takes a token from each bucket, waiting as long as they say (rejects when `signal` aborts). */
  acquire(specs: readonly BucketSpec[], signal?: AbortSignal): Promise<void>;
  /** Takes a token from each bucket only if every one can spare it beyond its `reserve`; never waits. */
  tryTake(specs: readonly BucketSpec[]): boolean | Promise<boolean>;
}

interface Bucket {
  tokens: number;
  updated: number;
  capacity: number;
  perSecond: number;
}

/** Buckets that refilled completely are forgotten once there are this many. */
const SWEEP_AT = 10_000;

export class RateLimiter implements EgressLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /**
   * Takes one token from each bucket (creating it full on first use) and returns how long to wait, in
   * ms, before acting: 0 when every bucket had a token. Balances may go negative: that is the queue.
   */
  reserve(specs: readonly BucketSpec[]): number {
    const now = this.#now();
    let wait = 0;
    for (const spec of specs) {
      const b = this.#bucket(spec, now);
      b.tokens -= 1;
      if (b.tokens < 0) wait = Math.max(wait, Math.ceil((-b.tokens / b.perSecond) * 1000));
    }
    return wait;
  }

  /**
   * Takes one token from each bucket only when every one of them has a whole token beyond its
   * `reserve`; otherwise takes none and answers false. For calls that are skipped rather than made
   * to wait: they never queue, and never leave a balance the waiting callers would have to pay off.
   */
  tryTake(specs: readonly BucketSpec[]): boolean {
    const now = this.#now();
    const buckets = specs.map((spec) => this.#bucket(spec, now));
    if (buckets.some((b, i) => b.tokens < 1 + (specs[i]!.reserve ?? 0))) return false;
    for (const b of buckets) b.tokens -= 1;
    return true;
  }

  /** The bucket of `spec`, created full on first use, refilled up to `now`. */
  #bucket(spec: BucketSpec, now: number): Bucket {
    let b = this.#buckets.get(spec.key);
    if (!b) {
      if (this.#buckets.size >= SWEEP_AT) this.#sweep(now);
      b = { tokens: spec.capacity, updated: now, capacity: spec.capacity, perSecond: spec.perSecond };
      this.#buckets.set(spec.key, b);
    }
    b.tokens = Math.min(b.capacity, b.tokens + ((now - b.updated) / 1000) * b.perSecond);
    b.updated = now;
    return b;
  }

  /** Reserves, then waits as long as the buckets say (rejects when `signal` aborts). */
  async acquire(specs: readonly BucketSpec[], signal?: AbortSignal): Promise<void> {
    const wait = this.reserve(specs);
    if (wait > 0) await sleep(wait, signal);
  }

  get size(): number {
    return this.#buckets.size;
  }

  #sweep(now: number): void {
    for (const [key, b] of this.#buckets) {
      if (b.tokens + ((now - b.updated) / 1000) * b.perSecond >= b.capacity) this.#buckets.delete(key);
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
