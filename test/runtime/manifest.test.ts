import { describe, expect, it } from 'vitest';
import { ManifestValidationError, parseManifest } from '../../knative/manifest.ts';
import { ManifestError, parsePodManifest } from '../../runtime/manifest.ts';

/** What each reader makes of a manifest: its `bot.sessions`, or the field it rejects. */
function knative(yaml: string): unknown {
  try {
    return parseManifest(yaml, 'bot.yaml').bot.sessions ?? {};
  } catch (e) {
    if (!(e instanceof ManifestValidationError)) throw e;
    return { rejects: e.problems.map((p) => p.field) };
  }
}

function pod(yaml: string): unknown {
  try {
    return parsePodManifest(yaml, 'bot.yaml').sessions;
  } catch (e) {
    if (!(e instanceof ManifestError)) throw e;
    return { rejects: [e.field] };
  }
}

describe('bot.sessions: the pod\'s reader and knative\'s agree', () => {
  it.each([
    ['', {}],
    ['sessions: {}', {}],
    ['sessions: { turnPolicy: ~ }', {}],
    ['sessions: { turnPolicy: queue }', { turnPolicy: 'queue' }],
    ['sessions: { turnPolicy: reject }', { turnPolicy: 'reject' }],
    ['sessions: { turnPolicy: interrupt }', { turnPolicy: 'interrupt' }],
    ['sessions: { turnPolicy: debounce, debounceMs: 1500 }', { turnPolicy: 'debounce', debounceMs: 1500 }],
    ['sessions: { debounceMs: 60000 }', { debounceMs: 60000 }],
    ['sessions: { turnPolicy: sometimes }', { rejects: ['bot.sessions.turnPolicy'] }],
    ['sessions: { turnPolicy: 3 }', { rejects: ['bot.sessions.turnPolicy'] }],
    ['sessions: { debounceMs: 0 }', { rejects: ['bot.sessions.debounceMs'] }],
    ['sessions: { debounceMs: 60001 }', { rejects: ['bot.sessions.debounceMs'] }],
    ['sessions: { debounceMs: 1.5 }', { rejects: ['bot.sessions.debounceMs'] }],
    ['sessions: { debounceMs: "800" }', { rejects: ['bot.sessions.debounceMs'] }],
    ['sessions: interrupt', { rejects: ['bot.sessions'] }],
  ])('bot: { %s } → %j', (sessions, expected) => {
    const yaml = `name: a\nbot: { ${sessions} }`;
    expect(knative(yaml)).toEqual(expected);
    expect(pod(yaml)).toEqual(expected);
  });

  it('names the allowed policies in the error', () => {
    expect(() => parsePodManifest('name: a\nbot: { sessions: { turnPolicy: later } }', 'bot.yaml')).toThrow(/bot.sessions.turnPolicy: must be one of queue, debounce, interrupt, reject/);
    expect(() => parseManifest('name: a\nbot: { sessions: { turnPolicy: later } }', 'bot.yaml')).toThrow(/bot.sessions.turnPolicy: must be one of queue, debounce, interrupt, reject/);
  });

  it('knative\'s rejects a field under bot.sessions it does not know', () => {
    expect(knative('name: a\nbot: { sessions: { policy: queue } }')).toEqual({ rejects: ['bot.sessions.policy'] });
  });
});

describe('bot.websocket: the pod\'s reader and knative\'s agree', () => {
  it.each([
    ['', false],
    ['websocket: true', true],
    ['websocket: false', false],
    ['websocket: "true"', { rejects: ['bot.websocket'] }],
    ['websocket: 1', { rejects: ['bot.websocket'] }],
    ['websocket: ~', { rejects: ['bot.websocket'] }],
  ])('bot: { %s } → %j', (field, expected) => {
    const yaml = `name: a\nbot: { ${field} }`;
    const read = (parse: () => boolean) => {
      try {
        return parse();
      } catch (e) {
        if (e instanceof ManifestValidationError) return { rejects: e.problems.map((p) => p.field) };
        if (e instanceof ManifestError) return { rejects: [e.field] };
        throw e;
      }
    };
    expect(read(() => parseManifest(yaml, 'bot.yaml').bot.websocket)).toEqual(expected);
    expect(read(() => parsePodManifest(yaml, 'bot.yaml').websocket ?? false)).toEqual(expected);
  });
});
