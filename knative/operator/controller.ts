import { CustomObjectsApi, type KubeConfig, type KubernetesObject, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { EventBindingResource, EventResource } from '../../eventing/model/types.ts';
import { withSharedAgent } from '../kube.ts';
import { serviceState } from '../status.ts';
import { validateService } from '../validate.ts';
import { type Condition, setCondition, summarize } from './conditions.ts';
import { type EventRecorder, kubeEventRecorder } from './events.ts';
import { type Cached, type Obj, informer, trim } from './informers.ts';
import type { OperatorMetrics, ReconciledKind } from './metrics.ts';
import { PENDING_MS, PendingWrites } from './pending-writes.ts';
import { type BotResource, makeService, makeTriggers } from './resources.ts';
import { type ReconcileResult, WorkQueue, runWorkers } from './work-queue.ts';
import { selects } from '../../eventing/model/selector.ts';
import { isDeepStrictEqual } from 'node:util';
import { createHash } from 'node:crypto';

export const OPERATOR_MANAGER = 'knbot-operator';
const KNBOT = { group: 'knbot.dev', version: 'v1alpha1' };
const SERVING = { group: 'serving.knative.dev', version: 'v1', plural: 'services' };
const EVENTING = { group: 'eventing.knative.dev', version: 'v1', plural: 'triggers' };
const knbot = (plural: string) => ({ ...KNBOT, plural });
const apply = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
const RESYNC_MS = 5 * 60_000;
/** The hash of the object the operator last applied, kept on the child. */
export const APPLIED_HASH = 'knbot.dev/applied-hash';

/** `child` with the hash of its own content as an annotation. */
function withHash<T extends { metadata: { annotations?: Record<string, string> } }>(child: T): T {
  const hash = createHash('sha256').update(JSON.stringify(child)).digest('hex').slice(0, 16);
  return { ...child, metadata: { ...child.metadata, annotations: { ...child.metadata.annotations, [APPLIED_HASH]: hash } } };
}

export interface ControllerOptions {
  workers?: number;
  /** The image of a Bot that names a `function` instead of an image; `{function}` is replaced. */
  functionImage?: string;
  metrics?: OperatorMetrics;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

const keyOf = (o: KubernetesObject) => `${o.metadata?.namespace ?? 'default'}/${o.metadata?.name}`;
const split = (key: string) => {
  const i = key.indexOf('/');
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
};

/**
 * `knbot operator` (DESIGN §10): Bots become Knative Services, EventBindings become Triggers. Informers
 * feed two work queues; reconcilers compare desired with actual through server-side apply (field
 * manager knbot-operator) and write status with observedGeneration and conditions.
 */
export class Controller {
  readonly #api: CustomObjectsApi;
  readonly #options: ControllerOptions;
  readonly #bots = new WorkQueue();
  readonly #bindings = new WorkQueue();
  readonly #informers: Record<'bot' | 'event' | 'binding' | 'service' | 'trigger', Cached>;
  readonly #events: EventRecorder;
  /** Status writes the informers have not delivered yet. */
  readonly #pending = new PendingWrites();
  #running: Promise<void>[] = [];
  #resync: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(config: KubeConfig, options: ControllerOptions = {}) {
    const kc = withSharedAgent(config);
    this.#api = kc.makeApiClient(CustomObjectsApi);
    this.#options = options;
    options.metrics?.queue('Bot', () => this.#bots.length);
    options.metrics?.queue('EventBinding', () => this.#bindings.length);
    this.#events = kubeEventRecorder(kc, OPERATOR_MANAGER, options.log);
    this.#informers = {
      bot: informer(kc, this.#api, knbot('bots')),
      event: informer(kc, this.#api, knbot('events')),
      binding: informer(kc, this.#api, knbot('eventbindings')),
      service: informer(kc, this.#api, SERVING, 'app.kubernetes.io/managed-by=knbot'),
      trigger: informer(kc, this.#api, EVENTING, 'knbot.dev/binding'),
    };
    // Changes that come in bursts (a binding applied with its Events) are gathered: the binding is
    // looked at once, a moment later, instead of once per change.
    const GATHER_MS = 200;
    const bindingsOf = (bot: Obj) => {
      for (const b of this.#informers.binding.list(bot.metadata?.namespace)) if (b.spec?.botRef?.name === bot.metadata?.name) this.#bindings.addAfter(keyOf(b), GATHER_MS);
    };
    const owner = (o: Obj, kind: string) => o.metadata?.ownerReferences?.find((r: { kind: string; controller?: boolean }) => r.kind === kind && r.controller);
    const on = (name: keyof Controller['informers'], handler: (o: Obj) => void) => {
      // The cache keeps the objects it hands over, watched ones included: trimmed, they hold only
      // what the reconcilers read.
      const trimmed = (o: Obj) => handler(trim(o));
      for (const verb of ['add', 'update', 'delete'] as const) this.#informers[name].on(verb, trimmed);
      this.#informers[name].on('error', (err) => this.#restart(name, err));
    };
    on('bot', (o) => {
      this.#bots.add(keyOf(o));
      bindingsOf(o);
    });
    // An Event matters to the bindings that select it now, and to those that bound it before.
    on('event', (o) => {
      const labels = (o.metadata?.labels ?? {}) as Record<string, string>;
      for (const b of this.#informers.binding.list(o.metadata?.namespace)) {
        const selector = (b as Obj).spec?.eventSelector;
        if ((selector && selects(selector, labels)) || (b as Obj).status?.boundEvents?.includes(o.metadata?.name)) this.#bindings.addAfter(keyOf(b), GATHER_MS);
      }
    });
    on('binding', (o) => this.#bindings.addAfter(keyOf(o), GATHER_MS));
    // A child changed or went away (drift): its owner is reconciled, which restores it.
    on('service', (o) => {
      const ref = owner(o, 'Bot');
      if (ref) this.#bots.add(`${o.metadata?.namespace}/${ref.name}`);
    });
    on('trigger', (o) => {
      const ref = owner(o, 'EventBinding');
      if (ref) this.#bindings.add(`${o.metadata?.namespace}/${ref.name}`);
    });
  }

  get informers(): Record<'bot' | 'event' | 'binding' | 'service' | 'trigger', Cached> {
    return this.#informers;
  }

  async start(): Promise<void> {
    await Promise.all(Object.values(this.#informers).map((i) => i.start()));
    const workers = this.#options.workers ?? 4;
    const onError = (kind: 'Bot' | 'EventBinding') => (key: string, err: unknown) => {
      // A 409 means the cache was behind the server: expected, and retried once it has caught up.
      if (isConflict(err)) return this.#log('conflict, retrying', { key });
      this.#log('reconcile failed', { key, error: (err as Error).message });
      const { namespace, name } = split(key);
      this.#events.record({ apiVersion: 'knbot.dev/v1alpha1', kind, name, namespace }, 'Warning', 'ReconcileFailed', (err as Error).message);
    };
    this.#running = [
      runWorkers(this.#bots, workers, this.#timed('Bot', (k) => this.#reconcileBot(k)), onError('Bot')),
      runWorkers(this.#bindings, workers, this.#timed('EventBinding', (k) => this.#reconcileBinding(k)), onError('EventBinding')),
    ];
    // Periodic resync: every object is looked at again, whatever the watches said.
    this.#resync = setInterval(() => {
      for (const b of this.#informers.bot.list()) this.#bots.add(keyOf(b));
      for (const b of this.#informers.binding.list()) this.#bindings.add(keyOf(b));
    }, RESYNC_MS).unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#resync);
    this.#bots.shutDown();
    this.#bindings.shutDown();
    await Promise.all(Object.values(this.#informers).map((i) => i.stop()));
    await Promise.all(this.#running);
  }

  /**
   * An informer stopped on an error: start it again after a pause (client-node does not). One stopped
   * on purpose (its watch aborted, AbortError) stays stopped.
   */
  #restart(name: string, err: unknown): void {
    if (this.#stopped || (err as Error)?.name === 'AbortError') return;
    this.#log('informer error, restarting', { informer: name, error: (err as Error)?.message });
    setTimeout(() => void this.#informers[name as keyof Controller['informers']].start().catch((e: unknown) => this.#restart(name, e)), 1000).unref();
  }

  #log(msg: string, fields?: Record<string, unknown>): void {
    this.#options.log?.(msg, fields);
  }

  /** `reconcile`, counted and timed by its result. */
  #timed(kind: ReconciledKind, reconcile: (key: string) => Promise<ReconcileResult | void>): (key: string) => Promise<ReconcileResult | void> {
    const metrics = this.#options.metrics;
    if (!metrics) return reconcile;
    return async (key) => {
      const t0 = performance.now();
      try {
        const result = await reconcile(key);
        metrics.reconciled(kind, result?.requeueAfterMs ? 'requeue' : 'ok', (performance.now() - t0) / 1000);
        return result;
      } catch (err) {
        metrics.reconciled(kind, isConflict(err) ? 'conflict' : 'error', (performance.now() - t0) / 1000);
        throw err;
      }
    };
  }

  /** A write to the API server, counted by verb, resource and result. */
  async #write<T>(verb: 'apply' | 'delete', resource: string, call: () => Promise<T>): Promise<T> {
    try {
      const out = await call();
      this.#options.metrics?.wrote(verb, resource, 'ok');
      return out;
    } catch (err) {
      this.#options.metrics?.wrote(verb, resource, isConflict(err) ? 'conflict' : 'error');
      throw err;
    }
  }

  async #reconcileBot(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = split(key);
    const bot = this.#informers.bot.get(name, namespace) as unknown as (BotResource & { status?: { conditions?: Condition[] } }) | undefined;
    // Deleted, or being deleted: its Service goes with it (owner reference). Applying the Service again
    // would fight the garbage collector, which deletes it first when the deletion is in the foreground.
    if (!bot || bot.metadata.deletionTimestamp) {
      this.#pending.forget(`services/${key}`);
      return this.#pending.forget(`bots/${key}`);
    }
    const generation = bot.metadata.generation ?? 0;
    const now = new Date();
    let conditions = bot.status?.conditions ?? [];
    const image = bot.spec.image ?? (bot.spec.function && this.#options.functionImage ? this.#options.functionImage.replaceAll('{function}', bot.spec.function) : undefined);
    const status: Record<string, unknown> = { observedGeneration: generation };
    if (!image) {
      conditions = setCondition(conditions, { type: 'ServiceReady', status: 'False', reason: 'NoImage', message: `spec.function ${bot.spec.function} needs the operator's --function-image`, observedGeneration: generation }, now);
    } else {
      const service = withHash(makeService(bot, image));
      const problems = validateService(service);
      if (problems.length) {
        conditions = setCondition(conditions, { type: 'ServiceReady', status: 'False', reason: 'InvalidService', message: problems.map((p) => `${p.path}: ${p.message}`).join('; '), observedGeneration: generation }, now);
      } else {
        const cached = this.#informers.service.get(name, namespace);
        // Apply only when what we own differs: a no-op apply is still a write request.
        let applied = cached;
        if (!cached || !owns(cached, service)) {
          // The cache may not show our last apply yet (the status write's own event can come first): the
          // Service's watch event brings the Bot back, to be looked at with it.
          const serviceKey = `services/${key}`;
          const cachedVersion = cached?.metadata?.resourceVersion;
          if (this.#pending.awaiting(serviceKey, cachedVersion)) return { requeueAfterMs: PENDING_MS };
          applied = await this.#write('apply', 'services', () => this.#api.patchNamespacedCustomObject({ ...SERVING, namespace, name, body: service, fieldManager: OPERATOR_MANAGER, force: true }, apply));
          this.#pending.wrote(serviceKey, cachedVersion);
          const involved = { apiVersion: 'knbot.dev/v1alpha1', kind: 'Bot', name, namespace, ...(bot.metadata.uid ? { uid: bot.metadata.uid } : {}) };
          this.#events.record(involved, 'Normal', cached ? 'ServiceUpdated' : 'ServiceCreated', `Knative Service ${name} ${cached ? 'updated' : 'created'}`);
        }
        const state = serviceState(applied);
        // Knative's Ready counts only once its controller has seen this generation (serviceState).
        conditions = setCondition(
          conditions,
          state.state === 'ready'
            ? { type: 'ServiceReady', status: 'True', observedGeneration: generation }
            : state.state === 'failed'
              ? { type: 'ServiceReady', status: 'False', reason: state.reason ?? 'ServiceFailed', message: state.message ?? 'the Knative Service is not Ready', observedGeneration: generation }
              : { type: 'ServiceReady', status: 'Unknown', reason: 'Deploying', message: 'waiting for Knative to make the Service Ready', observedGeneration: generation },
          now,
        );
        const routes = state.conditions.find((c) => c.type === 'RoutesReady');
        conditions = setCondition(
          conditions,
          routes && routes.status !== 'Unknown' && state.state !== 'pending'
            ? { type: 'RoutesReady', status: routes.status as 'True' | 'False', ...(routes.reason ? { reason: routes.reason } : {}), ...(routes.message ? { message: routes.message } : {}), observedGeneration: generation }
            : { type: 'RoutesReady', status: 'Unknown', reason: 'Deploying', message: "waiting for the Knative Service's routes", observedGeneration: generation },
          now,
        );
        if (state.url) status.url = state.url;
        if (state.latestReadyRevision) status.latestReadyRevision = state.latestReadyRevision;
      }
    }
    status.conditions = summarize(conditions, ['ServiceReady', 'RoutesReady'], generation, now);
    return this.#writeStatus('bots', 'Bot', namespace, name, status);
  }

  async #reconcileBinding(key: string): Promise<ReconcileResult | void> {
    const { namespace, name } = split(key);
    const binding = this.#informers.binding.get(name, namespace) as unknown as (EventBindingResource & { metadata: { uid?: string; generation?: number; deletionTimestamp?: string }; status?: { conditions?: Condition[] } }) | undefined;
    if (!binding || binding.metadata.deletionTimestamp) return this.#pending.forget(`eventbindings/${key}`); // as for Bots
    const generation = binding.metadata.generation ?? 0;
    const now = new Date();
    const found = this.#informers.bot.get(binding.spec.botRef.name, namespace) as unknown as BotResource | undefined;
    const bot = found?.metadata.deletionTimestamp ? undefined : found;
    const events = this.#informers.event.list(namespace) as unknown as EventResource[];
    const made = makeTriggers(binding, events, bot?.spec.broker ?? 'default');
    // Without its Bot a Trigger would deliver to a Service that is not there: the binding makes none,
    // and removes those it made (they are owned by the binding, so no garbage collector would).
    const triggers = bot ? made.triggers.map(withHash) : [];
    const { outcome } = made;
    for (const t of triggers) {
      const cached = this.#informers.trigger.get(t.metadata.name, namespace);
      if (cached && owns(cached, t)) continue;
      // As for a Bot's Service: not again while the cache does not show the last apply yet.
      const triggerKey = `triggers/${namespace}/${t.metadata.name}`;
      const cachedVersion = cached?.metadata?.resourceVersion;
      if (this.#pending.awaiting(triggerKey, cachedVersion)) continue;
      await this.#write('apply', 'triggers', () => this.#api.patchNamespacedCustomObject({ ...EVENTING, namespace, name: t.metadata.name, body: t, fieldManager: OPERATOR_MANAGER, force: true }, apply));
      this.#pending.wrote(triggerKey, cachedVersion);
    }
    // Triggers this binding made before and no longer wants (an Event was unbound): only those it owns,
    // not others with its labels (`knbot deploy` labels what it applies alike).
    const wanted = new Set(triggers.map((t) => t.metadata.name));
    const uid = binding.metadata.uid;
    for (const stale of this.#informers.trigger.list(namespace)) {
      if (stale.metadata?.labels?.['knbot.dev/binding'] !== name || wanted.has(stale.metadata.name!)) continue;
      if (!stale.metadata.ownerReferences?.some((r) => r.controller && r.uid === uid)) continue;
      const staleName = stale.metadata.name!;
      await this.#write('delete', 'triggers', () =>
        this.#api.deleteNamespacedCustomObject({ ...EVENTING, namespace, name: staleName }).catch((e: { code?: number }) => {
          if (e.code !== 404) throw e;
        }),
      );
    }
    let conditions = binding.status?.conditions ?? [];
    conditions = setCondition(
      conditions,
      bot
        ? { type: 'TriggersReady', status: 'True', observedGeneration: generation }
        : { type: 'TriggersReady', status: 'False', reason: 'BotNotFound', message: `no Bot ${binding.spec.botRef.name} in ${namespace}`, observedGeneration: generation },
      now,
    );
    const status = { observedGeneration: generation, boundEvents: outcome.boundEvents, triggers: triggers.map((t) => t.metadata.name), conditions: summarize(conditions, ['TriggersReady'], generation, now) };
    return this.#writeStatus('eventbindings', 'EventBinding', namespace, name, status);
  }

  /**
   * Writes status computed from the cached object, on condition that the object is still the one
   * cached (its resourceVersion): a status made from a stale copy never lands on a newer spec, nor on
   * an object deleted and made again under the same name. A 409 retries the reconcile (see start).
   * While the cache has not shown the last write yet, nothing is written: the write's own watch event
   * brings the key back (a second write would only be refused).
   */
  async #writeStatus(plural: string, kind: string, namespace: string, name: string, status: Record<string, unknown>): Promise<ReconcileResult | void> {
    const informer = plural === 'bots' ? this.#informers.bot : this.#informers.binding;
    const cached = informer.get(name, namespace);
    if (isDeepStrictEqual(cached?.status, status)) return;
    const key = `${plural}/${namespace}/${name}`;
    const resourceVersion = cached?.metadata?.resourceVersion;
    if (this.#pending.awaiting(key, resourceVersion)) return { requeueAfterMs: PENDING_MS };
    await this.#write('apply', `${plural}/status`, () =>
      this.#api.patchNamespacedCustomObjectStatus(
        { ...KNBOT, plural, namespace, name, body: { apiVersion: `${KNBOT.group}/${KNBOT.version}`, kind, metadata: { name, namespace, resourceVersion }, status }, fieldManager: OPERATOR_MANAGER, force: true },
        apply,
      ),
    );
    this.#pending.wrote(key, resourceVersion);
  }
}

const isConflict = (err: unknown) => (err as { code?: number })?.code === 409;

/**
 * True when `actual` already holds every field of `desired` (labels, annotations, owner references,
 * spec) with the same values: defaults the API server or Knative added beside them do not count.
 */
function owns(actual: Obj, desired: Record<string, any>): boolean {
  const m = actual.metadata ?? {};
  // Something removed from the desired object leaves actual ⊇ desired: the hash of what was last
  // applied catches that (apply then drops the field the operator no longer owns).
  if (m.annotations?.[APPLIED_HASH] !== desired.metadata.annotations?.[APPLIED_HASH]) return false;
  return (
    contains(m.labels ?? {}, desired.metadata.labels ?? {}) &&
    contains(m.annotations ?? {}, desired.metadata.annotations ?? {}) &&
    isDeepStrictEqual(m.ownerReferences ?? [], desired.metadata.ownerReferences ?? []) &&
    contains(actual.spec ?? {}, desired.spec)
  );
}

function contains(actual: unknown, desired: unknown): boolean {
  if (desired === null || typeof desired !== 'object') return isDeepStrictEqual(actual, desired);
  if (Array.isArray(desired)) return Array.isArray(actual) && actual.length === desired.length && desired.every((d, i) => contains(actual[i], d));
  if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return false;
  return Object.entries(desired).every(([k, v]) => v === undefined || contains((actual as Record<string, unknown>)[k], v));
}
