import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';

/** What the operator tells users about an object, where `kubectl describe` shows it. */
export interface EventRecorder {
  record(involved: { apiVersion: string; kind: string; name: string; namespace: string; uid?: string }, type: 'Normal' | 'Warning', reason: string, message: string): void;
}

/**
 * Kubernetes Events (core/v1), fire and forget: a cluster without the Events API (or a refused
 * write) never holds up a reconcile. The same event within a minute is not written twice.
 */
export function kubeEventRecorder(kc: KubeConfig, component = 'knbot-operator', log?: (msg: string, fields?: Record<string, unknown>) => void): EventRecorder {
  const api = kc.makeApiClient(CoreV1Api);
  const recent = new Map<string, number>();
  return {
    record(involved, type, reason, message) {
      const key = `${involved.namespace}/${involved.kind}/${involved.name}/${reason}/${message}`;
      const now = Date.now();
      if ((recent.get(key) ?? 0) > now - 60_000) return;
      recent.set(key, now);
      if (recent.size > 10_000) recent.delete(recent.keys().next().value!);
      const time = new Date(now);
      api
        .createNamespacedEvent({
          namespace: involved.namespace,
          body: {
            metadata: { generateName: `${involved.name}.`, namespace: involved.namespace },
            involvedObject: involved,
            type,
            reason,
            message,
            source: { component },
            reportingComponent: component,
            firstTimestamp: time,
            lastTimestamp: time,
            count: 1,
          },
        })
        .catch((e: { code?: number }) => {
          if (e.code !== 404) log?.('could not record an event', { reason, code: e.code });
        });
    },
  };
}
