import { describe, expect, it } from 'vitest';
import { type FrameSink, SOCKET_SESSION_LIMITS, SocketSessions } from '../../runtime/socket-sessions.ts';

const limits = { ...SOCKET_SESSION_LIMITS, maxFrames: 3, maxBytes: 1000, ttlMs: 1000, maxIds: 2, maxDetached: 2 };

function setup() {
  let now = 0;
  const sessions = new SocketSessions(limits, () => now);
  const written: [number, string][] = [];
  const sink: FrameSink = { write: (seq, text) => written.push([seq, text]) };
  return { sessions, sink, written, advance: (ms: number) => (now += ms) };
}

describe('SocketSessions', () => {
  it('numbers frames from 0 and writes them to the attached socket as {v, seq, ...}', () => {
    const { sessions, sink, written } = setup();
    const s = sessions.open();
    sessions.attach(s, sink);
    expect(sessions.append(s, { type: 'session', sessionId: s.id })).toBe(0);
    expect(sessions.append(s, { type: 'pong' })).toBe(1);
    expect(written).toEqual([
      [0, JSON.stringify({ v: 1, seq: 0, type: 'session', sessionId: s.id })],
      [1, '{"v":1,"seq":1,"type":"pong"}'],
    ]);
  });

  it.each([
    [4, [5, 6], true],
    [3, [4, 5, 6], true],
    [1, [4, 5, 6], false],
    [6, [], true],
  ])('after seq %i replays %j (complete: %s) when the last three of 0..6 are kept', (after, expected, complete) => {
    const { sessions } = setup();
    const s = sessions.open();
    for (let i = 0; i <= 6; i++) sessions.append(s, { type: 'pong' });
    const out = s.after(after);
    expect([out.frames.map(([seq]) => seq), out.complete]).toEqual([expected, complete]);
  });

  it('keeps frames within maxBytes, but always the newest', () => {
    const { sessions } = setup();
    const s = sessions.open();
    sessions.append(s, { type: 'chunk', text: 'a'.repeat(600) });
    sessions.append(s, { type: 'chunk', text: 'b'.repeat(600) });
    expect(s.after(-1).frames.map(([seq]) => seq)).toEqual([1]);
    sessions.append(s, { type: 'chunk', text: 'c'.repeat(2000) });
    expect(s.after(-1).frames.map(([seq]) => seq)).toEqual([2]);
  });

  it('keeps a session ttlMs after its socket left and after its last frame, then forgets it', () => {
    const { sessions, sink, advance } = setup();
    const s = sessions.open();
    sessions.attach(s, sink);
    advance(5000);
    expect(sessions.get(s.id)).toBe(s);
    sessions.detach(s, sink);
    advance(900);
    sessions.append(s, { type: 'reply', text: 'while away' });
    advance(900);
    expect(sessions.get(s.id)).toBe(s);
    advance(200);
    expect(sessions.get(s.id)).toBeUndefined();
  });

  it('does not detach a session from a socket that has taken it over', () => {
    const { sessions, sink } = setup();
    const other: FrameSink = { write: () => undefined };
    const s = sessions.open();
    sessions.attach(s, sink);
    sessions.attach(s, other);
    sessions.detach(s, sink);
    expect(s.sink).toBe(other);
  });

  it('keeps at most maxDetached sessions without a socket, the longest idle going first', () => {
    const { sessions, sink, advance } = setup();
    const all = [0, 1, 2].map(() => {
      const s = sessions.open();
      sessions.attach(s, sink);
      sessions.detach(s, sink);
      advance(10);
      return s;
    });
    const live = sessions.open();
    sessions.attach(live, sink);
    sessions.sweep();
    expect([...all, live].map((s) => sessions.get(s.id) !== undefined)).toEqual([false, true, true, true]);
  });

  it('remembers the last maxIds message ids, and forgets one when asked', () => {
    const { sessions } = setup();
    const s = sessions.open();
    expect([s.seen('a'), s.seen('a'), s.seen('b'), s.seen('c'), s.seen('a')]).toEqual([false, true, false, false, false]);
    s.forget('c');
    expect(s.seen('c')).toBe(false);
  });
});
