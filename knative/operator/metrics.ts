import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { DURATION_BUCKETS } from '../../eventing/metrics.ts';

export type ReconciledKind = 'Bot' | 'EventBinding';
/** `ok`, `requeue` (ok, and to be looked at again later), `conflict` (409: the cache was behind), `error`. */
export type ReconcileOutcome = 'ok' | 'requeue' | 'conflict' | 'error';
export type WriteResult = 'ok' | 'conflict' | 'error';

/**
 * The operator's metrics (DESIGN §8), after controller-runtime's: reconciles by kind and result with
 * their durations, work queue depth, writes to the API server by verb and resource, and whether this
 * replica leads. Labels name kinds, verbs and results, never an object: the operator keeps thousands.
 */
export class OperatorMetrics {
  readonly registry: Registry;
  readonly #reconciles: Counter<'kind' | 'result'>;
  readonly #duration: Histogram<'kind'>;
  readonly #writes: Counter<'verb' | 'resource' | 'result'>;
  readonly #queues = new Map<ReconciledKind, () => number>();
  #leading: () => boolean = () => false;

  constructor(registry: Registry) {
    this.registry = registry;
    const registers = [registry];
    this.#reconciles = new Counter({ name: 'knbot_reconcile_total', help: 'Reconciles, by kind and result.', labelNames: ['kind', 'result'], registers });
    this.#duration = new Histogram({ name: 'knbot_reconcile_duration_seconds', help: 'Time one reconcile took, by kind.', labelNames: ['kind'], buckets: DURATION_BUCKETS, registers });
    this.#writes = new Counter({ name: 'knbot_api_writes_total', help: 'Writes to the Kubernetes API (server-side apply, delete), by verb, resource and result.', labelNames: ['verb', 'resource', 'result'], registers });
    const queues = this.#queues;
    new Gauge({
      name: 'knbot_workqueue_depth',
      help: 'Keys waiting in the work queue, by kind.',
      labelNames: ['kind'],
      registers,
      collect() {
        for (const [kind, depth] of queues) this.set({ kind }, depth());
      },
    });
    const self = this;
    new Gauge({
      name: 'knbot_operator_leader',
      help: '1 while this replica holds the leader Lease (or runs without leader election), else 0.',
      registers,
      collect() {
        this.set(self.#leading() ? 1 : 0);
      },
    });
  }

  /** Where the leader gauge reads from. */
  set leading(read: () => boolean) {
    this.#leading = read;
  }

  /** Where the queue depth gauge reads `kind`'s from. */
  queue(kind: ReconciledKind, depth: () => number): void {
    this.#queues.set(kind, depth);
  }

  reconciled(kind: ReconciledKind, result: ReconcileOutcome, seconds: number): void {
    this.#reconciles.inc({ kind, result });
    this.#duration.observe({ kind }, seconds);
  }

  wrote(verb: 'apply' | 'delete', resource: string, result: WriteResult): void {
    this.#writes.inc({ verb, resource, result });
  }
}
