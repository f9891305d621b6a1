/** What a Knative Service's status says, read the way `kn` and knbot's deploy wait read it. */
export interface ServiceState {
  state: 'ready' | 'failed' | 'pending';
  url?: string;
  latestReadyRevision?: string;
  latestCreatedRevision?: string;
  reason?: string;
  message?: string;
  traffic: { revisionName?: string; percent?: number; tag?: string; latestRevision?: boolean; url?: string }[];
  conditions: { type: string; status: string; reason?: string; message?: string }[];
}

type Obj = Record<string, unknown>;

/**
 * Ready once the controller has seen the current generation and `Ready` is True; failed when, for the
 * current generation, `Ready` is False (the reason and message say why); pending otherwise.
 */
export function serviceState(service: unknown): ServiceState {
  const s = (service ?? {}) as Obj;
  const meta = (s.metadata ?? {}) as Obj;
  const status = (s.status ?? {}) as Obj;
  const conditions = Array.isArray(status.conditions) ? (status.conditions as ServiceState['conditions']) : [];
  const ready = conditions.find((c) => c.type === 'Ready');
  const current = typeof status.observedGeneration === 'number' && typeof meta.generation === 'number' && status.observedGeneration >= meta.generation;
  const state: ServiceState['state'] = current && ready?.status === 'True' ? 'ready' : current && ready?.status === 'False' ? 'failed' : 'pending';
  return {
    state,
    ...(typeof status.url === 'string' ? { url: status.url } : {}),
    ...(typeof status.latestReadyRevisionName === 'string' ? { latestReadyRevision: status.latestReadyRevisionName } : {}),
    ...(typeof status.latestCreatedRevisionName === 'string' ? { latestCreatedRevision: status.latestCreatedRevisionName } : {}),
    ...(ready?.reason ? { reason: ready.reason } : {}),
    ...(ready?.message ? { message: ready.message } : {}),
    traffic: Array.isArray(status.traffic) ? (status.traffic as ServiceState['traffic']) : [],
    conditions,
  };
}

export interface TrafficTarget {
  latestRevision?: boolean;
  revisionName?: string;
  percent: number;
  tag?: string;
}

/**
 * A canary split: each tag's percent goes to the latest revision under that tag, the rest stays on
 * the revision that serves now (the one with the most traffic in status, else the latest ready one).
 * `promote` sends everything to the latest revision.
 */
export function splitTraffic(state: ServiceState, tags: Record<string, number>, promote: boolean): TrafficTarget[] {
  if (promote) return [{ latestRevision: true, percent: 100 }];
  const total = Object.values(tags).reduce((a, b) => a + b, 0);
  if (total > 100) throw new Error(`tagged percents add up to ${total}, more than 100`);
  const stable = [...state.traffic].filter((t) => t.revisionName && t.percent).sort((a, b) => (b.percent ?? 0) - (a.percent ?? 0))[0]?.revisionName ?? state.latestReadyRevision;
  const targets: TrafficTarget[] = Object.entries(tags).map(([tag, percent]) => ({ latestRevision: true, percent, tag }));
  if (total < 100) {
    if (!stable) throw new Error('no ready revision to keep the rest of the traffic on');
    targets.push({ revisionName: stable, percent: 100 - total });
  }
  return targets;
}
