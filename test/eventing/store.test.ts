import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BrokerStore } from '../../eventing/broker/store.ts';

const event = (id: string) => ({ specversion: '1.0', id, source: '/s', type: 't' });

describe('BrokerStore', () => {
  it('keeps an event while any delivery of it is pending or dead, and drops it once all are done', async () => {
    const store = new BrokerStore(join(mkdtempSync(join(tmpdir(), 'knbot-store-')), 'broker.db'));
    try {
      const [a] = await store.append(event('a'), [{ route: 'r1', partition: null, ordered: false }]);
      const [b1, b2] = await store.append(event('b'), [
        { route: 'r1', partition: null, ordered: false },
        { route: 'r2', partition: null, ordered: false },
      ]);
      const [c] = await store.append(event('c'), [{ route: 'r1', partition: null, ordered: false }]);
      await store.settle(a!.seq, a!.route, 'delivered');
      await store.settle(b1!.seq, b1!.route, 'delivered');
      await store.settle(c!.seq, c!.route, 'dead');
      store.collect();
      // a: all done → gone; b: r2 still pending → kept; c: dead → kept on record.
      expect(store.eventCount()).toBe(2);
      expect([store.count('pending'), store.count('dead')]).toEqual([1, 1]);
      expect(store.due(Date.now(), 10).map((d) => [d.event.id, d.route])).toEqual([[b2!.event.id, 'r2']]);
    } finally {
      store.close();
    }
  });
});
