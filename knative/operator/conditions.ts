// Status conditions as Knative and Kubernetes keep them: one entry per type, `lastTransitionTime`
// moved only when the status changes, `Ready` the summary of the others.

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/** `conditions` with `next` set: the transition time kept when the status did not change. */
export function setCondition(conditions: readonly Condition[], next: ConditionInput, now: Date): Condition[] {
  const old = conditions.find((c) => c.type === next.type);
  const changed = !old || old.status !== next.status;
  const entry: Condition = { ...next, lastTransitionTime: changed ? now.toISOString() : old.lastTransitionTime };
  return [...conditions.filter((c) => c.type !== next.type), entry].sort((a, b) => (a.type === 'Ready' ? -1 : b.type === 'Ready' ? 1 : a.type.localeCompare(b.type)));
}

/**
 * `Ready` from its dependents: False with the first failing one's reason and message, else Unknown
 * with the first unknown one's, else True.
 */
export function summarize(conditions: readonly Condition[], dependents: readonly string[], generation: number, now: Date): Condition[] {
  const deps = dependents.map((t) => conditions.find((c) => c.type === t) ?? { type: t, status: 'Unknown' as const, reason: 'NotReconciled', message: `${t} has not been reconciled yet` });
  const failed = deps.find((c) => c.status === 'False');
  const unknown = deps.find((c) => c.status === 'Unknown');
  const ready: ConditionInput = failed
    ? { type: 'Ready', status: 'False', reason: failed.reason ?? `${failed.type}Failed`, message: failed.message ?? `${failed.type} is False`, observedGeneration: generation }
    : unknown
      ? { type: 'Ready', status: 'Unknown', reason: unknown.reason ?? `${unknown.type}Pending`, message: unknown.message ?? `${unknown.type} is not known yet`, observedGeneration: generation }
      : { type: 'Ready', status: 'True', observedGeneration: generation };
  return setCondition(conditions, ready, now);
}
