import { setTimeout as delay } from 'node:timers/promises';
import { LlmError } from './errors.ts';

/** Waits `ms`, or rejects with an `aborted` LlmError when `signal` aborts first. */
export async function sleep(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, { signal });
  } catch {
    throw aborted(signal);
  }
}

export function aborted(signal: AbortSignal): LlmError {
  const reason = signal.reason as { message?: unknown } | undefined;
  const why = typeof reason?.message === 'string' ? `: ${reason.message}` : '';
  return new LlmError('aborted', `the model call was cancelled${why}`, { cause: signal.reason });
}

interface Waiter {
  resolve(release: () => void): void;
  reject(err: Error): void;
}

/** At most `limit` calls in flight (0: no limit); the rest wait in order, until their deadline or their signal. */
export class Semaphore {
  readonly #limit: number;
  #inUse = 0;
  readonly #waiting: Waiter[] = [];

  constructor(limit: number) {
    this.#limit = limit;
  }

  get inUse(): number {
    return this.#inUse;
  }

  get waiting(): number {
    return this.#waiting.length;
  }

  /** Resolves with the function that gives the slot back (once). */
  acquire(signal: AbortSignal, deadline: number): Promise<() => void> {
    if (signal.aborted) return Promise.reject(aborted(signal));
    if (this.#limit === 0 || this.#inUse < this.#limit) {
      this.#inUse++;
      return Promise.resolve(this.#releaser());
    }
    const started = Date.now();
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const i = this.#waiting.indexOf(waiter);
        if (i >= 0) this.#waiting.splice(i, 1);
      };
      const waiter: Waiter = {
        resolve: (release) => (done(), resolve(release)),
        reject: (err) => (done(), reject(err)),
      };
      const onAbort = () => waiter.reject(aborted(signal));
      const timer = setTimeout(
        () => waiter.reject(new LlmError('timeout', `waited ${Date.now() - started} ms for a call slot (${this.#limit} calls in flight): the total timeout passed`)),
        Math.max(0, deadline - Date.now()),
      );
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  #releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#waiting[0];
      // The slot passes straight to the next in line.
      if (next) next.resolve(this.#releaser());
      else this.#inUse--;
    };
  }
}

/**
 * A token-rate budget: `perMinute` tokens, refilled continuously. A call reserves its estimated input
 * before it starts, waiting while the budget is spent, and settles the difference (its output, and what
 * the estimate missed) when the endpoint reports usage. The level may go below zero: the calls after it
 * wait longer, in order.
 */
export class TokenBucket {
  readonly #capacity: number;
  readonly #perMs: number;
  readonly #now: () => number;
  #level: number;
  #last: number;

  constructor(perMinute: number, now: () => number = Date.now) {
    this.#capacity = perMinute;
    this.#perMs = perMinute / 60_000;
    this.#now = now;
    this.#level = perMinute;
    this.#last = now();
  }

  get level(): number {
    this.#refill();
    return this.#level;
  }

  /** Reserves `tokens` (at most the whole budget); rejects with `rate_limited` when the wait would pass `deadline`. */
  async take(tokens: number, signal: AbortSignal, deadline: number): Promise<void> {
    if (signal.aborted) throw aborted(signal);
    this.#refill();
    const n = Math.min(tokens, this.#capacity);
    this.#level -= n;
    if (this.#level >= 0) return;
    const wait = Math.ceil(-this.#level / this.#perMs);
    if (this.#now() + wait > deadline) {
      this.#level += n;
      throw new LlmError('rate_limited', `the bot's token budget (${this.#capacity}/min) is spent: the call would wait ${wait} ms, past its total timeout`, { retryAfterMs: wait });
    }
    try {
      await sleep(wait, signal);
    } catch (err) {
      this.#level += n;
      throw err;
    }
  }

  /** Takes `tokens` more (or gives back, when negative) without waiting. */
  adjust(tokens: number): void {
    this.#refill();
    this.#level = Math.min(this.#capacity, this.#level - tokens);
  }

  #refill(): void {
    const now = this.#now();
    this.#level = Math.min(this.#capacity, this.#level + (now - this.#last) * this.#perMs);
    this.#last = now;
  }
}
