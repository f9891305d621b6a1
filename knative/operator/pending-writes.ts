// Writes the operator made that its cache has not shown yet (what client-go's controllers call
// expectations). After a write, the informer still holds the object as it was before until the watch
// delivers the change. A reconcile that runs in between would compute from that copy and write again:
// the same status once more, refused with 409 since status is written on condition of the cached
// resourceVersion. The watch event of the write requeues the key, so such a reconcile can wait for it.

/** How long a write is waited for at most; past it the cache is trusted again (a lost event). */
export const PENDING_MS = 10_000;
/** How many writes are remembered before the ones past waiting for are swept. */
const SWEEP_AT = 1000;

export class PendingWrites {
  readonly #before = new Map<string, { resourceVersion: string; at: number }>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Records a write to `key` made while the cache held it at `resourceVersion` (undefined: absent). */
  wrote(key: string, resourceVersion: string | undefined): void {
    const now = this.#now();
    // Writes to objects never looked at again (deleted since) are dropped once they are past waiting for.
    if (this.#before.size >= SWEEP_AT) for (const [k, w] of this.#before) if (now - w.at >= PENDING_MS) this.#before.delete(k);
    this.#before.set(key, { resourceVersion: resourceVersion ?? '', at: now });
  }

  /**
   * True while the cache still holds `key` as it was before the last write (at `cachedVersion`), for
   * at most PENDING_MS. Once the cache has moved on, the write is forgotten.
   */
  awaiting(key: string, cachedVersion: string | undefined): boolean {
    const pending = this.#before.get(key);
    if (!pending) return false;
    if (pending.resourceVersion === (cachedVersion ?? '') && this.#now() - pending.at < PENDING_MS) return true;
    this.#before.delete(key);
    return false;
  }

  forget(key: string): void {
    this.#before.delete(key);
  }

  get size(): number {
    return this.#before.size;
  }
}
