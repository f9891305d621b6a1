export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Failed attempts in a row that open the circuit. */
  failures: number;
  /** How long it stays open before one probe is let through. */
  openMs: number;
  now?: () => number;
  onChange?: (from: BreakerState, to: BreakerState) => void;
}

export type Admission = { ok: true; probe: boolean } | { ok: false; retryAfterMs: number };

/**
 * A circuit breaker over an endpoint: closed while it answers; open, failing every attempt at once,
 * after `failures` failed attempts in a row; half-open once `openMs` has passed, when a single probe
 * goes through: its success closes the circuit, its failure opens it for another `openMs`. An attempt
 * the endpoint answered (even 4xx or 429) is a success: the endpoint is up. Attempts that ended with no
 * verdict (the caller gave up) only free their slot.
 */
export class CircuitBreaker {
  readonly #o: BreakerOptions;
  readonly #now: () => number;
  #state: BreakerState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #probing = false;

  constructor(options: BreakerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  get state(): BreakerState {
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.#o.openMs) this.#set('half-open');
    return this.#state;
  }

  /** Whether an attempt may go now; a probe when it is the one the half-open circuit lets through. */
  admit(): Admission {
    const state = this.state;
    if (state === 'closed') return { ok: true, probe: false };
    if (state === 'half-open' && !this.#probing) {
      this.#probing = true;
      return { ok: true, probe: true };
    }
    const waited = this.#now() - this.#openedAt;
    return { ok: false, retryAfterMs: Math.max(1, this.#o.openMs - waited) };
  }

  success(probe: boolean): void {
    if (probe) this.#probing = false;
    this.#failures = 0;
    if (this.#state !== 'closed') this.#set('closed');
  }

  failure(probe: boolean): void {
    if (probe) {
      this.#probing = false;
      this.#open();
      return;
    }
    // A straggler that started before the circuit opened says nothing new.
    if (this.#state !== 'closed') return;
    if (++this.#failures >= this.#o.failures) this.#open();
  }

  /** An attempt ended without a verdict (aborted by its caller). */
  release(probe: boolean): void {
    if (probe) this.#probing = false;
  }

  #open(): void {
    this.#openedAt = this.#now();
    this.#failures = 0;
    this.#set('open');
  }

  #set(to: BreakerState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#o.onChange?.(from, to);
  }
}
