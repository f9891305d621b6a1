/**
 * Token buckets by key: `rate` tokens a second, holding at most `burst`. Buckets that filled up again
 * are forgotten, so idle keys cost nothing.
 */
export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  #sweptAt = 0;

  constructor(rate: number, burst: number, now: () => number = performance.now.bind(performance)) {
    if (!(rate > 0) || !(burst >= 1)) throw new Error('a rate limit needs rate > 0 and burst ≥ 1');
    this.#rate = rate;
    this.#burst = burst;
    this.#now = now;
  }

  /** Takes one token for `key`: true when allowed. */
  take(key: string): boolean {
    const now = this.#now();
    if (now - this.#sweptAt > 60_000) this.#sweep(now);
    const b = this.#buckets.get(key);
    if (!b) {
      this.#buckets.set(key, { tokens: this.#burst - 1, at: now });
      return true;
    }
    b.tokens = Math.min(this.#burst, b.tokens + ((now - b.at) / 1000) * this.#rate);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /** Seconds until `key` has a token again. */
  retryAfter(key: string): number {
    const b = this.#buckets.get(key);
    if (!b || b.tokens >= 1) return 0;
    return Math.ceil(((1 - b.tokens) / this.#rate) * 10) / 10;
  }

  #sweep(now: number): void {
    this.#sweptAt = now;
    for (const [k, b] of this.#buckets) if (b.tokens + ((now - b.at) / 1000) * this.#rate >= this.#burst) this.#buckets.delete(k);
  }
}
