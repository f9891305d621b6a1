import { describe, expect, it } from 'vitest';
import { waitFor } from '../pod.ts';
import { type Clock, runWorkers, WorkQueue } from '../../knative/operator/work-queue.ts';

/** A clock the test moves by hand. */
class FakeClock implements Clock {
  time = 0;
  #timers: { at: number; fn: () => void; id: number }[] = [];
  #next = 0;
  now = () => this.time;
  setTimeout = (fn: () => void, ms: number) => {
    const id = ++this.#next;
    this.#timers.push({ at: this.time + ms, fn, id });
    return id;
  };
  clearTimeout = (id: unknown) => {
    this.#timers = this.#timers.filter((t) => t.id !== id);
  };
  advance(ms: number): void {
    this.time += ms;
    const due = this.#timers.filter((t) => t.at <= this.time).sort((a, b) => a.at - b.at);
    this.#timers = this.#timers.filter((t) => t.at > this.time);
    for (const t of due) t.fn();
  }
}

describe('WorkQueue', () => {
  it('queues a key once, however often it is added', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.length).toBe(2);
    expect([await q.get(), await q.get()]).toEqual(['a', 'b']);
  });

  it('never hands out a key that is being processed; one added meanwhile comes back after done', async () => {
    const q = new WorkQueue();
    q.add('a');
    expect(await q.get()).toBe('a');
    q.add('a');
    expect(q.length).toBe(0);
    q.done('a');
    expect(q.length).toBe(1);
    expect(await q.get()).toBe('a');
  });

  it('backs off per key exponentially, capped, and forgets on success', async () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 50, clock });
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      const before = clock.time;
      q.addRateLimited('a');
      for (let t = 0; q.length === 0 && t < 1000; t++) clock.advance(1);
      delays.push(clock.time - before);
      q.done((await q.get())!);
    }
    expect(delays).toEqual([10, 20, 40, 50, 50]);
    expect(q.failures('a')).toBe(5);
    q.forget('a');
    expect(q.failures('a')).toBe(0);
  });

  it('keeps the earlier of two delayed adds', () => {
    const clock = new FakeClock();
    const q = new WorkQueue({ clock });
    q.addAfter('a', 100);
    q.addAfter('a', 30);
    q.addAfter('a', 200);
    clock.advance(30);
    expect(q.length).toBe(1);
    clock.advance(500);
    expect(q.length).toBe(1);
  });

  it('wakes a waiting worker, and releases workers on shutdown', async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.add('x');
    expect(await waiting).toBe('x');
    const idle = q.get();
    q.shutDown();
    expect(await idle).toBeUndefined();
  });
});

describe('runWorkers', () => {
  it('reconciles each key once at a time, retries failures, and requeues on request', async () => {
    const q = new WorkQueue({ baseDelayMs: 1 });
    const seen: string[] = [];
    let inFlight = 0;
    let maxInFlightForA = 0;
    let failOnce = true;
    const done = runWorkers(q, 3, async (key) => {
      seen.push(key);
      if (key === 'a') {
        inFlight++;
        maxInFlightForA = Math.max(maxInFlightForA, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
      }
      if (key === 'b' && failOnce) {
        failOnce = false;
        throw new Error('conflict');
      }
      if (key === 'c' && seen.filter((k) => k === 'c').length === 1) return { requeueAfterMs: 5 };
      return undefined;
    });
    q.add('a');
    q.add('a');
    q.add('b');
    q.add('c');
    // Once the run that the second add asked for has begun: a third add asks for one more.
    await waitFor(() => seen.filter((k) => k === 'a').length >= 2, 'the second run of a');
    q.add('a');
    // Shut down only once the runs due have had their turn: a busy machine may take longer than a moment.
    await waitFor(() => seen.filter((k) => k === 'a').length >= 3 && seen.filter((k) => k === 'b').length >= 2 && seen.filter((k) => k === 'c').length >= 2, 'the runs due');
    q.shutDown();
    await done;
    expect(maxInFlightForA).toBe(1);
    expect(seen.filter((k) => k === 'b')).toEqual(['b', 'b']);
    expect(seen.filter((k) => k === 'c')).toEqual(['c', 'c']);
    // The second add came while the first run was under way (it may have missed the change): one more run.
    // The third came once that one had begun: one more again. Never two at once.
    expect(seen.filter((k) => k === 'a').length).toBe(3);
    expect(q.failures('b')).toBe(0);
  });
});
