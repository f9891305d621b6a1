import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from '@kubernetes/client-node';

// Lease-based leader election, as client-go's leaderelection does it: the holder renews the Lease
// every retry period; another candidate takes it over once it has not been renewed for the lease
// duration. Only the leader runs the controller, so two replicas never both write.

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  retryPeriodMs?: number;
  onStartedLeading: () => Promise<void> | void;
  /** Called once if leadership is lost (renewals failed past the lease duration). */
  onStoppedLeading: () => void;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

export type LeaseDecision = { action: 'create' } | { action: 'renew' } | { action: 'takeover' } | { action: 'wait'; holder: string };

/** What a candidate does with the Lease as it reads it now (pure, so it is tested alone). */
export function decide(lease: V1Lease | undefined, identity: string, now: number): LeaseDecision {
  if (!lease) return { action: 'create' };
  const spec = lease.spec ?? {};
  if (spec.holderIdentity === identity) return { action: 'renew' };
  const renewed = spec.renewTime ? new Date(spec.renewTime as unknown as string).getTime() : 0;
  const duration = (spec.leaseDurationSeconds ?? 15) * 1000;
  if (!spec.holderIdentity || renewed + duration < now) return { action: 'takeover' };
  return { action: 'wait', holder: spec.holderIdentity };
}

export class LeaderElector {
  readonly #api: CoordinationV1Api;
  readonly #o: Required<Omit<LeaderElectionOptions, 'log'>> & Pick<LeaderElectionOptions, 'log'>;
  #leading = false;
  #lastRenew = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(kc: KubeConfig, options: LeaderElectionOptions) {
    this.#api = kc.makeApiClient(CoordinationV1Api);
    this.#o = { leaseDurationSeconds: 15, retryPeriodMs: 2000, ...options };
  }

  get leading(): boolean {
    return this.#leading;
  }

  start(): void {
    void this.#tick();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  async #tick(): Promise<void> {
    if (this.#stopped) return;
    try {
      await this.#try();
    } catch (e) {
      this.#o.log?.('lease update failed', { error: (e as Error).message });
    }
    // A leader that could not renew for the whole lease duration may have been replaced: step down.
    if (this.#leading && Date.now() - this.#lastRenew > this.#o.leaseDurationSeconds * 1000) {
      this.#leading = false;
      this.#o.onStoppedLeading();
      return;
    }
    this.#timer = setTimeout(() => void this.#tick(), this.#o.retryPeriodMs);
  }

  async #try(): Promise<void> {
    const { namespace, name, identity } = this.#o;
    const lease = await this.#api.readNamespacedLease({ namespace, name }).catch((e: { code?: number }) => {
      if (e.code === 404) return undefined;
      throw e;
    });
    const now = new Date();
    const decision = decide(lease, identity, now.getTime());
    const micro = new V1MicroTime(now.getTime());
    if (decision.action === 'wait') {
      // Someone else holds the Lease while we thought we led: we are not the leader; stop at once.
      if (this.#leading) {
        this.#leading = false;
        this.#o.log?.('another holder took the lease', { holder: decision.holder });
        this.#o.onStoppedLeading();
        this.stop();
      }
      return;
    }
    const spec = { ...lease?.spec, holderIdentity: identity, leaseDurationSeconds: this.#o.leaseDurationSeconds, renewTime: micro };
    if (decision.action !== 'renew') Object.assign(spec, { acquireTime: micro, leaseTransitions: (lease?.spec?.leaseTransitions ?? -1) + 1 });
    try {
      if (decision.action === 'create') {
        await this.#api.createNamespacedLease({ namespace, body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace }, spec } });
      } else {
        // The read resourceVersion makes this a compare-and-swap: 409 means someone else wrote first.
        await this.#api.replaceNamespacedLease({ namespace, name, body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { ...lease!.metadata, name, namespace }, spec } });
      }
    } catch (e) {
      if ((e as { code?: number }).code === 409) return;
      throw e;
    }
    this.#lastRenew = Date.now();
    if (!this.#leading) {
      this.#leading = true;
      this.#o.log?.('became leader', { lease: `${namespace}/${name}`, identity });
      await this.#o.onStartedLeading();
    }
  }
}
