import { CustomObjectsApi, type KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Trigger } from '../eventing/model/types.ts';
import type { KnativeService } from './render/service.ts';
import type { TrafficTarget } from './status.ts';

const GROUP = 'serving.knative.dev';
const VERSION = 'v1';
const PLURAL = 'services';
const TRIGGERS = { group: 'eventing.knative.dev', version: 'v1', plural: 'triggers' } as const;
/** Field managers: the Service is knbot's; the traffic split is the traffic command's, so a redeploy keeps it. */
export const FIELD_MANAGER = 'knbot';
export const TRAFFIC_MANAGER = 'knbot-traffic';

/** A Trigger as listed: enough to decide whether it is still wanted. */
export interface ListedTrigger {
  metadata: { name: string; namespace: string; labels?: Record<string, string>; ownerReferences?: { kind: string; name: string; controller?: boolean }[] };
}

/** The narrow part of the Kubernetes API that deploy, status, traffic and delete use. */
export interface ServiceClient {
  apply(service: KnativeService, dryRun: boolean): Promise<unknown>;
  get(namespace: string, name: string): Promise<unknown | undefined>;
  setTraffic(namespace: string, name: string, traffic: TrafficTarget[]): Promise<unknown>;
  delete(namespace: string, name: string): Promise<boolean>;
  applyTrigger(trigger: Trigger, dryRun: boolean): Promise<unknown>;
  /** The Triggers in `namespace` that match `labelSelector`; undefined when the cluster has no Trigger API (no Knative Eventing). */
  listTriggers(namespace: string, labelSelector: string): Promise<ListedTrigger[] | undefined>;
  deleteTrigger(namespace: string, name: string): Promise<boolean>;
}

const applyPatch = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

type RequestContext = Parameters<KubeConfig['applySecurityAuthentication']>[0];

/**
 * `kc` with one HTTP connection pool for every client made from it (API clients, watches). client-node
 * 2.0 makes a new undici Agent per request (KubeConfig.applySecurityAuthentication): each request
 * opens its own TLS connection, with the CA, client certificate and key parsed into a new secure
 * context, and the idle connection lingers until its keep-alive runs out. Over thousands of requests
 * that is most of a controller's native memory; one Agent keeps a few connections and reuses them.
 * Credentials are still applied per request (tokens are headers, read afresh as before).
 */
export function withSharedAgent(kc: KubeConfig): KubeConfig {
  let agent: ReturnType<RequestContext['getDispatcher']>;
  const shared = Object.create(kc) as KubeConfig;
  shared.applySecurityAuthentication = async (context: RequestContext) => {
    await kc.applySecurityAuthentication(context);
    agent ??= context.getDispatcher();
    if (agent) context.setDispatcher(agent);
  };
  return shared;
}

function notFound(e: unknown): boolean {
  return (e as { code?: number }).code === 404;
}

/** The client over @kubernetes/client-node: server-side apply with knbot's field managers. */
export function serviceClient(kc: KubeConfig): ServiceClient {
  const api = kc.makeApiClient(CustomObjectsApi);
  return {
    apply: (service, dryRun) =>
      api.patchNamespacedCustomObject(
        {
          group: GROUP, version: VERSION, plural: PLURAL, namespace: service.metadata.namespace, name: service.metadata.name,
          body: service, fieldManager: FIELD_MANAGER, force: true, ...(dryRun ? { dryRun: 'All' } : {}),
        },
        applyPatch,
      ),
    get: async (namespace, name) => {
      try {
        return await api.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name });
      } catch (e) {
        if (notFound(e)) return undefined;
        throw e;
      }
    },
    setTraffic: (namespace, name, traffic) =>
      api.patchNamespacedCustomObject(
        {
          group: GROUP, version: VERSION, plural: PLURAL, namespace, name,
          body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'Service', metadata: { name, namespace }, spec: { traffic } },
          fieldManager: TRAFFIC_MANAGER, force: true,
        },
        applyPatch,
      ),
    delete: async (namespace, name) => {
      try {
        await api.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace, name });
        return true;
      } catch (e) {
        if (notFound(e)) return false;
        throw e;
      }
    },
    applyTrigger: (trigger, dryRun) =>
      api.patchNamespacedCustomObject(
        {
          ...TRIGGERS, namespace: trigger.metadata.namespace, name: trigger.metadata.name,
          body: trigger, fieldManager: FIELD_MANAGER, force: true, ...(dryRun ? { dryRun: 'All' } : {}),
        },
        applyPatch,
      ),
    listTriggers: async (namespace, labelSelector) => {
      try {
        const list = (await api.listNamespacedCustomObject({ ...TRIGGERS, namespace, labelSelector })) as { items: ListedTrigger[] };
        return list.items;
      } catch (e) {
        // The resource itself is unknown: a 404 on a list means the API group is not served.
        if (notFound(e)) return undefined;
        throw e;
      }
    },
    deleteTrigger: async (namespace, name) => {
      try {
        await api.deleteNamespacedCustomObject({ ...TRIGGERS, namespace, name });
        return true;
      } catch (e) {
        if (notFound(e)) return false;
        throw e;
      }
    },
  };
}
