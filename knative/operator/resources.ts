import { type CompiledRouting, compileRouting } from '../../eventing/model/compile.ts';
import type { EventBindingResource, EventResource, Trigger } from '../../eventing/model/types.ts';
import type { BotManifest } from '../manifest.ts';
import { type KnativeService, renderService } from '../render/service.ts';

// Pure builders of the operator's children (as Knative's reconcilers keep theirs in resources/):
// what a Bot and an EventBinding should make, with owner references and labels.

export interface BotResource {
  apiVersion: 'knbot.dev/v1alpha1';
  kind: 'Bot';
  metadata: { name: string; namespace?: string; uid?: string; generation?: number; labels?: Record<string, string>; deletionTimestamp?: string };
  spec: {
    image?: string;
    function?: string;
    scaling?: { minScale?: number; maxScale?: number; target?: number; metric?: 'concurrency' | 'rps'; utilization?: number; containerConcurrency?: number; scaleDownDelay?: string; scaleToZeroRetention?: string; initialScale?: number; activationScale?: number };
    timeouts?: { timeoutSeconds?: number; responseStartTimeoutSeconds?: number; idleTimeoutSeconds?: number };
    resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
    env?: { name: string; value?: string }[];
    websocket?: boolean;
    config?: Record<string, unknown>;
    broker?: string;
  };
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: true;
  blockOwnerDeletion: true;
}

export function ownerReference(owner: { apiVersion: string; kind: string; metadata: { name: string; uid?: string } }): OwnerReference {
  if (!owner.metadata.uid) throw new Error(`${owner.kind}/${owner.metadata.name} has no uid yet`);
  return { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name, uid: owner.metadata.uid, controller: true, blockOwnerDeletion: true };
}

const text = (v: string | number | undefined) => (v === undefined ? undefined : String(v));

/** A Bot's settings in bot.yaml's shape, so a Bot renders exactly as `knbot render` renders a folder. */
export function botManifest(bot: BotResource, image: string): BotManifest {
  const s = bot.spec;
  const sc = s.scaling ?? {};
  const t = s.timeouts ?? {};
  const pick = (m: Record<string, string | number> | undefined) => Object.fromEntries(Object.entries(m ?? {}).map(([k, v]) => [k, text(v)!]));
  return {
    name: bot.metadata.name,
    image,
    run: { envs: (s.env ?? []).map((e) => ({ name: e.name, value: e.value ?? '' })) },
    deploy: {
      annotations: {},
      labels: {},
      scale: {
        ...(sc.minScale !== undefined ? { min: sc.minScale } : {}),
        ...(sc.maxScale !== undefined ? { max: sc.maxScale } : {}),
        ...(sc.metric ? { metric: sc.metric } : {}),
        ...(sc.target !== undefined ? { target: sc.target } : {}),
        ...(sc.utilization !== undefined ? { utilization: sc.utilization } : {}),
      },
      resources: { requests: pick(s.resources?.requests), limits: pick(s.resources?.limits) },
    },
    bot: {
      ...(sc.containerConcurrency !== undefined ? { containerConcurrency: sc.containerConcurrency } : {}),
      ...(t.timeoutSeconds !== undefined ? { timeoutSeconds: t.timeoutSeconds } : {}),
      ...(t.responseStartTimeoutSeconds !== undefined ? { responseStartTimeoutSeconds: t.responseStartTimeoutSeconds } : {}),
      ...(t.idleTimeoutSeconds !== undefined ? { idleTimeoutSeconds: t.idleTimeoutSeconds } : {}),
      ...(sc.scaleDownDelay ? { scaleDownDelay: sc.scaleDownDelay } : {}),
      ...(sc.scaleToZeroRetention ? { scaleToZeroRetention: sc.scaleToZeroRetention } : {}),
      ...(sc.initialScale !== undefined ? { initialScale: sc.initialScale } : {}),
      ...(sc.activationScale !== undefined ? { activationScale: sc.activationScale } : {}),
      websocket: s.websocket ?? false,
      config: s.config ?? {},
      channels: {},
    },
  };
}

/** The Knative Service a Bot owns. */
export function makeService(bot: BotResource, image: string): KnativeService & { metadata: { ownerReferences: OwnerReference[] } } {
  const service = renderService(botManifest(bot, image), { namespace: bot.metadata.namespace ?? 'default' });
  return { ...service, metadata: { ...service.metadata, ownerReferences: [ownerReference(bot)] } };
}

/** The Triggers an EventBinding owns, and the Events it binds. */
export function makeTriggers(binding: EventBindingResource & { metadata: { uid?: string } }, events: EventResource[], broker: string): { triggers: (Trigger & { metadata: { ownerReferences: OwnerReference[] } })[]; outcome: CompiledRouting['bindings'][number] } {
  const namespace = binding.metadata.namespace ?? 'default';
  const compiled = compileRouting({ bots: [{ name: binding.spec.botRef.name, namespace, broker }], events, bindings: [binding] });
  const owner = ownerReference(binding);
  const triggers = compiled.triggers
    .filter((t) => t.metadata.labels['knbot.dev/binding'] === binding.metadata.name)
    .map((t) => ({ ...t, metadata: { ...t.metadata, ownerReferences: [owner] } }));
  return { triggers, outcome: compiled.bindings[0]! };
}
