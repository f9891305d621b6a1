import { afterEach, describe, expect, it } from 'vitest';
import { type GatewayStore, SessionGoneError, type StoreLimits } from '../../gateway/store.ts';
import { waitFor } from '../pod.ts';

export type MakeStore = (limits?: Partial<StoreLimits>) => GatewayStore | Promise<GatewayStore>;

/** Subscribes, collecting what the listener is given as `[seq, body]`. */
function collect(store: GatewayStore, sessionId: string): { frames: [number, string][]; stop: () => void } {
  const frames: [number, string][] = [];
  const stop = store.subscribe(sessionId, (seq, body) => frames.push([seq, body]));
  return { frames, stop };
}

const frame = (n: number) => JSON.stringify({ type: 'chunk', text: `piece ${n}` });

/**
 * What every GatewayStore does (gateway/store.ts), run against each implementation. Listeners may be
 * called after `append` resolves (Redis pub/sub), so the tests wait for them.
 */
export function storeContract(name: string, makeStore: MakeStore): void {
  describe(`${name}: the GatewayStore contract`, () => {
    const stores: GatewayStore[] = [];
    const make = async (limits?: Partial<StoreLimits>) => {
      const store = await makeStore(limits);
      stores.push(store);
      return store;
    };
    afterEach(async () => {
      await Promise.all(stores.splice(0).map((s) => s.close()));
    });

    it('knows a session\'s owner, and no owner for an unknown session', async () => {
      const store = await make();
      await store.openSession('s1', 'alice', 60_000);
      expect(await store.sessionOwner('s1')).toBe('alice');
      expect(await store.sessionOwner('nope')).toBeUndefined();
    });

    it('forgets an ended session and its log, and no other', async () => {
      const store = await make();
      await store.openSession('gone', 'alice', 60_000);
      await store.openSession('kept', 'alice', 60_000);
      await store.append('gone', frame(1));
      await store.append('kept', frame(1));
      await store.endSession('gone');
      expect(await store.sessionOwner('gone')).toBeUndefined();
      expect(await store.replay('gone', 0)).toBeUndefined();
      await expect(store.append('gone', frame(2))).rejects.toBeInstanceOf(SessionGoneError);
      expect((await store.replay('kept', 0))!.frames).toEqual([[1, frame(1)]]);
      // The id may be opened again afresh.
      await store.openSession('gone', 'bob', 60_000);
      expect(await store.replay('gone', 0)).toMatchObject({ frames: [], lastSeq: 0 });
    });

    it('puts a key whatever it held, with a TTL of its own', async () => {
      const store = await make();
      await store.put('k', 'one', 60_000);
      expect(await store.get('k')).toBe('one');
      await store.put('k', 'two', 150);
      expect(await store.get('k')).toBe('two');
      // A claim finds it held.
      expect(await store.claim('k', 'three', 60_000)).toBe('two');
      await waitFor(async () => (await store.get('k')) === undefined, 'the put key to expire', 3000);
    });

    it('refuses to open a session that exists', async () => {
      const store = await make();
      await store.openSession('s1', 'alice', 60_000);
      await expect(store.openSession('s1', 'mallory', 60_000)).rejects.toThrow(/exists/);
      expect(await store.sessionOwner('s1')).toBe('alice');
    });

    it('numbers frames from 1 and replays them with their seqs', async () => {
      const store = await make();
      await store.openSession('s1', 'alice', 60_000);
      expect(await store.replay('s1', 0)).toEqual({ frames: [], lastSeq: 0, complete: true });
      for (let n = 1; n <= 3; n++) expect(await store.append('s1', frame(n))).toBe(n);
      expect(await store.replay('s1', 0)).toEqual({ frames: [[1, frame(1)], [2, frame(2)], [3, frame(3)]], lastSeq: 3, complete: true });
      expect(await store.replay('s1', 2)).toEqual({ frames: [[3, frame(3)]], lastSeq: 3, complete: true });
      expect(await store.replay('s1', 3)).toEqual({ frames: [], lastSeq: 3, complete: true });
    });

    it('keeps frames byte for byte, whatever they contain', async () => {
      const store = await make();
      await store.openSession('s1', 'alice', 60_000);
      const odd = JSON.stringify({ type: 'reply', text: 'a|b\n"c" ✓ \u0000 😀' });
      await store.append('s1', odd);
      expect((await store.replay('s1', 0))!.frames).toEqual([[1, odd]]);
    });

    it('resolves appends to one session in the order they were called, with consecutive seqs', async () => {
      const store = await make();
      await store.openSession('s1', 'alice', 60_000);
      const resolved: number[] = [];
      await Promise.all(Array.from({ length: 50 }, (_, i) => store.append('s1', frame(i)).then((seq) => resolved.push(seq))));
      expect(resolved).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      const log = await store.replay('s1', 0);
      expect(log!.frames.map(([, body]) => body)).toEqual(Array.from({ length: 50 }, (_, i) => frame(i)));
    });

    it('rejects an append to an unknown session and replays nothing for it', async () => {
      const store = await make();
      await expect(store.append('nope', frame(1))).rejects.toBeInstanceOf(SessionGoneError);
      expect(await store.replay('nope', 0)).toBeUndefined();
    });

    it('keeps the last maxFrames and says when a replay misses trimmed frames', async () => {
      const store = await make({ maxFrames: 3 });
      await store.openSession('s1', 'alice', 60_000);
      for (let n = 1; n <= 5; n++) await store.append('s1', frame(n));
      expect(await store.replay('s1', 0)).toEqual({ frames: [[3, frame(3)], [4, frame(4)], [5, frame(5)]], lastSeq: 5, complete: false });
      expect((await store.replay('s1', 1))!.complete).toBe(false);
      expect(await store.replay('s1', 2)).toEqual({ frames: [[3, frame(3)], [4, frame(4)], [5, frame(5)]], lastSeq: 5, complete: true });
      expect(await store.replay('s1', 4)).toEqual({ frames: [[5, frame(5)]], lastSeq: 5, complete: true });
    });

    it('calls a listener for each frame appended after it subscribed, in seq order, until it unsubscribes', async () => {
      const store = await make();
      await store.openSession('s1', 'alice', 60_000);
      await store.append('s1', frame(1));
      const first = collect(store, 's1');
      for (let n = 2; n <= 21; n++) void store.append('s1', frame(n));
      await waitFor(() => first.frames.length === 20, 'twenty frames');
      expect(first.frames).toEqual(Array.from({ length: 20 }, (_, i) => [i + 2, frame(i + 2)]));
      first.stop();
      const second = collect(store, 's1');
      await store.append('s1', frame(22));
      await waitFor(() => second.frames.length === 1, 'the frame after the first listener left');
      expect(second.frames).toEqual([[22, frame(22)]]);
      expect(first.frames).toHaveLength(20);
    });

    it('gives each of several listeners every frame', async () => {
      const store = await make();
      await store.openSession('s1', 'alice', 60_000);
      const a = collect(store, 's1');
      const b = collect(store, 's1');
      await store.append('s1', frame(1));
      await store.append('s1', frame(2));
      await waitFor(() => a.frames.length === 2 && b.frames.length === 2, 'both listeners');
      expect(a.frames).toEqual(b.frames);
    });

    it('claims a key once: a second claim answers the value held', async () => {
      const store = await make();
      expect(await store.claim('m:1', 'session-a', 60_000)).toBeUndefined();
      expect(await store.claim('m:1', 'session-b', 60_000)).toBe('session-a');
      expect(await store.get('m:1')).toBe('session-a');
      await store.delete('m:1');
      expect(await store.get('m:1')).toBeUndefined();
      expect(await store.claim('m:1', 'session-b', 60_000)).toBeUndefined();
    });

    it('forgets a claimed key after its TTL', async () => {
      const store = await make();
      expect(await store.claim('m:1', 'a', 50)).toBeUndefined();
      await waitFor(async () => (await store.get('m:1')) === undefined, 'the key to expire', 2000);
      expect(await store.claim('m:1', 'b', 60_000)).toBeUndefined();
    });

    // The control session is opened with the same TTL at the same time and left alone: once it has
    // expired, the other one would have too, had nothing kept it.
    it('expires an idle session after its TTL; an append keeps it for sessionTtlMs', async () => {
      const store = await make({ sessionTtlMs: 60_000 });
      await store.openSession('idle', 'alice', 150);
      await store.openSession('busy', 'alice', 150);
      await store.append('busy', frame(1));
      await waitFor(async () => (await store.sessionOwner('idle')) === undefined, 'the idle session to expire', 3000);
      expect(await store.replay('idle', 0)).toBeUndefined();
      expect(await store.sessionOwner('busy')).toBe('alice');
      expect((await store.replay('busy', 0))!.frames).toEqual([[1, frame(1)]]);
    });

    it('keeps a session with a listener, and lets it expire once the listener left', async () => {
      const store = await make();
      await store.openSession('idle', 'alice', 150);
      await store.openSession('watched', 'alice', 150);
      const listener = collect(store, 'watched');
      await waitFor(async () => (await store.sessionOwner('idle')) === undefined, 'the idle session to expire', 3000);
      expect(await store.sessionOwner('watched')).toBe('alice');
      listener.stop();
      await waitFor(async () => (await store.sessionOwner('watched')) === undefined, 'the session to expire once unwatched', 5000);
    });
  });
}
