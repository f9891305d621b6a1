import { describe, expect, it } from 'vitest';
import { serviceState, splitTraffic } from '../../knative/status.ts';

const svc = (generation: number, observed: number, ready: string, extra: Record<string, unknown> = {}) => ({
  metadata: { generation },
  status: { observedGeneration: observed, conditions: [{ type: 'Ready', status: ready, reason: 'RevisionFailed', message: 'image pull failed' }], ...extra },
});

describe('serviceState', () => {
  it.each([
    ['ready for the current generation', svc(2, 2, 'True', { url: 'http://echo.default.example.com' }), 'ready'],
    ['failed for the current generation', svc(2, 2, 'False'), 'failed'],
    ['an old generation is still pending', svc(3, 2, 'True'), 'pending'],
    ['Unknown is pending', svc(1, 1, 'Unknown'), 'pending'],
    ['no status is pending', { metadata: { generation: 1 } }, 'pending'],
  ])('%s', (_, s, want) => {
    expect(serviceState(s).state).toBe(want);
  });

  it('carries the failing reason and message', () => {
    expect(serviceState(svc(1, 1, 'False'))).toMatchObject({ reason: 'RevisionFailed', message: 'image pull failed' });
  });
});

describe('splitTraffic', () => {
  const state = serviceState({
    metadata: { generation: 2 },
    status: { observedGeneration: 2, latestReadyRevisionName: 'echo-00002', traffic: [{ revisionName: 'echo-00001', percent: 100 }] },
  });

  it('sends the tagged share to the latest revision and keeps the rest on the serving one', () => {
    expect(splitTraffic(state, { canary: 20 }, false)).toEqual([
      { latestRevision: true, percent: 20, tag: 'canary' },
      { revisionName: 'echo-00001', percent: 80 },
    ]);
  });

  it('promotes the latest revision', () => {
    expect(splitTraffic(state, {}, true)).toEqual([{ latestRevision: true, percent: 100 }]);
  });

  it('refuses tags that add up past 100', () => {
    expect(() => splitTraffic(state, { a: 60, b: 50 }, false)).toThrow(/110/);
  });
});
