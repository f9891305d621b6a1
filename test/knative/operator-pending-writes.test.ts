import { describe, expect, it } from 'vitest';
import { PENDING_MS, PendingWrites } from '../../knative/operator/pending-writes.ts';

describe('PendingWrites', () => {
  const at = (t: { now: number }) => new PendingWrites(() => t.now);

  it('waits while the cache still holds the version written over, then forgets the write', () => {
    const t = { now: 0 };
    const pending = at(t);
    expect(pending.awaiting('bots/ns/a', '7')).toBe(false);
    pending.wrote('bots/ns/a', '7');
    expect(pending.awaiting('bots/ns/a', '7')).toBe(true);
    expect(pending.awaiting('bots/ns/b', '7')).toBe(false);
    // The watch delivered the write (or anything newer): the cache is trusted again.
    expect(pending.awaiting('bots/ns/a', '9')).toBe(false);
    expect(pending.awaiting('bots/ns/a', '7')).toBe(false);
    expect(pending.size).toBe(0);
  });

  it('counts an object not yet in the cache as the version written over when it was absent', () => {
    const pending = at({ now: 0 });
    pending.wrote('k', undefined);
    expect(pending.awaiting('k', undefined)).toBe(true);
    expect(pending.awaiting('k', '1')).toBe(false);
  });

  it('stops waiting after PENDING_MS, as if the watch event was lost', () => {
    const t = { now: 0 };
    const pending = at(t);
    pending.wrote('k', '3');
    t.now = PENDING_MS - 1;
    expect(pending.awaiting('k', '3')).toBe(true);
    t.now = PENDING_MS;
    expect(pending.awaiting('k', '3')).toBe(false);
  });

  it('drops writes past waiting for once many are remembered, keeping those still waited for', () => {
    const t = { now: 0 };
    const pending = at(t);
    for (let i = 0; i < 999; i++) pending.wrote(`old/${i}`, '1');
    t.now = PENDING_MS;
    pending.wrote('recent', '1');
    expect(pending.size).toBe(1000);
    pending.wrote('another', '2');
    expect(pending.size).toBe(2);
    expect(pending.awaiting('recent', '1')).toBe(true);
  });

  it('forgets the writes to an object that is gone', () => {
    const pending = at({ now: 0 });
    pending.wrote('k', '3');
    pending.forget('k');
    expect(pending.awaiting('k', '3')).toBe(false);
  });
});
