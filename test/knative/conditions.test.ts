import { describe, expect, it } from 'vitest';
import { setCondition, summarize } from '../../knative/operator/conditions.ts';

const t0 = new Date('2026-01-01T00:00:00Z');
const t1 = new Date('2026-01-01T00:05:00Z');

describe('conditions', () => {
  it('moves lastTransitionTime only when the status changes', () => {
    const a = setCondition([], { type: 'ServiceReady', status: 'Unknown', reason: 'Deploying' }, t0);
    const b = setCondition(a, { type: 'ServiceReady', status: 'Unknown', reason: 'StillDeploying' }, t1);
    expect(b[0]).toMatchObject({ reason: 'StillDeploying', lastTransitionTime: t0.toISOString() });
    const c = setCondition(b, { type: 'ServiceReady', status: 'True' }, t1);
    expect(c[0]!.lastTransitionTime).toBe(t1.toISOString());
  });

  it.each([
    [[{ type: 'ServiceReady', status: 'True' }, { type: 'RoutesReady', status: 'True' }], 'True', undefined],
    [[{ type: 'ServiceReady', status: 'True' }, { type: 'RoutesReady', status: 'False', reason: 'TriggerFailed' }], 'False', 'TriggerFailed'],
    [[{ type: 'ServiceReady', status: 'Unknown', reason: 'Deploying' }, { type: 'RoutesReady', status: 'True' }], 'Unknown', 'Deploying'],
    [[{ type: 'ServiceReady', status: 'True' }], 'Unknown', 'NotReconciled'],
  ] as const)('Ready summarises %j as %s (%s)', (deps, status, reason) => {
    let cs = deps.reduce((acc, d) => setCondition(acc, d, t0), [] as ReturnType<typeof setCondition>);
    cs = summarize(cs, ['ServiceReady', 'RoutesReady'], 4, t1);
    expect(cs[0]).toMatchObject({ type: 'Ready', status, observedGeneration: 4, ...(reason ? { reason } : {}) });
  });
});
