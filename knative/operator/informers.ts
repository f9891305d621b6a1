import { type CustomObjectsApi, type Informer, type KubeConfig, type KubernetesObject, type ObjectCache, makeInformer } from '@kubernetes/client-node';

// The operator's informers: client-node's list-and-watch caches, made lighter. Lists are read in
// pages, so the first list of a large cluster is not one response held whole, and the objects the
// cache keeps are trimmed of what no reconciler reads.

export type Obj = KubernetesObject & Record<string, any>;
export type Cached = Informer<Obj> & ObjectCache<Obj>;
export interface Resource {
  group: string;
  version: string;
  plural: string;
}

/** Objects per list page (the API server's own default page for kubectl is 500). */
export const LIST_PAGE = 500;
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * Drops, in place, what the cache would keep for nothing: managedFields (a third to a half of an
 * object written with server-side apply) and kubectl's last-applied annotation (a second copy of
 * an object applied with `kubectl apply`).
 */
export function trim(o: Obj): Obj {
  const m = o.metadata;
  if (m?.managedFields) delete m.managedFields;
  if (m?.annotations?.[LAST_APPLIED] !== undefined) {
    const { [LAST_APPLIED]: _, ...rest } = m.annotations;
    m.annotations = rest;
  }
  return o;
}

/** An informer over `resource` in every namespace, its list paged and its objects trimmed. */
export function informer(kc: KubeConfig, api: CustomObjectsApi, resource: Resource, labelSelector?: string, pageSize = LIST_PAGE): Cached {
  const list = async () => {
    const items: Obj[] = [];
    let page: { metadata?: { resourceVersion?: string; continue?: string }; items: Obj[] };
    let next: string | undefined;
    do {
      page = (await api.listClusterCustomObject({ ...resource, limit: pageSize, ...(labelSelector ? { labelSelector } : {}), ...(next ? { _continue: next } : {}) })) as typeof page;
      for (const o of page.items) items.push(trim(o));
      next = page.metadata?.continue || undefined;
    } while (next);
    // Every page is read at the first page's resourceVersion: the watch starts from there.
    return { metadata: { resourceVersion: page.metadata?.resourceVersion }, items };
  };
  const path = `/apis/${resource.group}/${resource.version}/${resource.plural}`;
  return makeInformer<Obj>(kc, path, list as never, labelSelector) as Cached;
}
