import { describe, expect, it } from 'vitest';
import { MemoryGatewayStore } from '../../gateway/store.ts';

describe('MemoryGatewayStore', () => {
  it('holds at most maxKeys keys, dropping the oldest first', async () => {
    const store = new MemoryGatewayStore({ maxKeys: 3 });
    for (const k of ['a', 'b', 'c', 'd']) expect(await store.claim(k, k, 60_000)).toBeUndefined();
    expect(await store.get('a')).toBeUndefined();
    expect(await Promise.all(['b', 'c', 'd'].map((k) => store.get(k)))).toEqual(['b', 'c', 'd']);
    await store.close();
  });

  it('keeps delivering to the other listeners when one throws', async () => {
    const store = new MemoryGatewayStore();
    await store.openSession('s', 'p', 60_000);
    const seen: number[] = [];
    store.subscribe('s', () => {
      throw new Error('a broken listener');
    });
    store.subscribe('s', (seq) => seen.push(seq));
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      expect(await store.append('s', '{"type":"ping"}')).toBe(1);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    expect(seen).toEqual([1]);
    expect(warnings.some((w) => w.includes('a broken listener'))).toBe(true);
    await store.close();
  });
});
