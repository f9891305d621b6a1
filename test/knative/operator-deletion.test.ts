// Deleting what the operator works from leaves nothing behind. The test API server runs no garbage
// collector (it lives in kube-controller-manager, which is not here), so owner references cascade
// nowhere on their own. The test asserts what the operator answers for: every child it makes carries
// a controller owner reference with blockOwnerDeletion, what it must remove itself is gone, it adds no
// finalizers, and it re-makes nothing whose owner is being deleted. collectGarbage below then does the
// garbage collector's part, with its foreground semantics, so that the test can see the namespace end
// up empty; it deletes only what the real collector would.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller } from '../../knative/operator/controller.ts';
import { type TestApiServer, apiServerAvailable, installCrds, operatorCrdFiles, requestCount, startApiServer } from '../apiserver.ts';
import { waitFor } from '../pod.ts';
import { sharedDir } from '../shared.ts';

const available = await apiServerAvailable();
const shared = available ? sharedDir() : undefined;
type Resource = { group: string; version: string; plural: string };
type Obj = Record<string, any>;
const BOTS = { group: 'knbot.dev', version: 'v1alpha1', plural: 'bots' };
const EVENTS = { ...BOTS, plural: 'events' };
const BINDINGS = { ...BOTS, plural: 'eventbindings' };
const SERVICES = { group: 'serving.knative.dev', version: 'v1', plural: 'services' };
const TRIGGERS = { group: 'eventing.knative.dev', version: 'v1', plural: 'triggers' };
const RESOURCES: Resource[] = [BOTS, EVENTS, BINDINGS, SERVICES, TRIGGERS];
const ns = 'op-deletion';
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** Every object of the operator's kinds in `namespace`, with its resource. */
async function everything(api: CustomObjectsApi, namespace: string): Promise<{ r: Resource; o: Obj }[]> {
  const lists = await Promise.all(RESOURCES.map(async (r) => ((await api.listNamespacedCustomObject({ ...r, namespace })) as { items: Obj[] }).items.map((o) => ({ r, o }))));
  return lists.flat();
}

/**
 * One pass of Kubernetes' garbage collector over `namespace`: an object whose owners are all gone is
 * deleted; an owner deleted in the foreground (deletionTimestamp and the foregroundDeletion finalizer)
 * has its dependents deleted, in the foreground too, and loses the finalizer once no dependent that
 * blocks it (blockOwnerDeletion) is left. Answers how many objects it acted on: 0 when all is done.
 */
async function collectGarbage(api: CustomObjectsApi, namespace: string): Promise<number> {
  const all = await everything(api, namespace);
  const uids = new Set(all.map(({ o }) => o.metadata.uid));
  const gone = (e: { code?: number }) => {
    if (e.code !== 404) throw e;
  };
  const remove = (r: Resource, o: Obj, propagationPolicy: string) => api.deleteNamespacedCustomObject({ ...r, namespace, name: o.metadata.name, propagationPolicy }).catch(gone);
  let acted = 0;
  for (const { r, o } of all) {
    const owners: Obj[] = o.metadata.ownerReferences ?? [];
    if (owners.length && owners.every((ref) => !uids.has(ref.uid))) {
      if (!o.metadata.deletionTimestamp) (acted++, await remove(r, o, 'Background'));
      continue;
    }
    if (!o.metadata.deletionTimestamp || !o.metadata.finalizers?.includes('foregroundDeletion')) continue;
    const dependents = all.filter((d) => d.o.metadata.ownerReferences?.some((ref: Obj) => ref.uid === o.metadata.uid));
    for (const d of dependents) if (!d.o.metadata.deletionTimestamp) (acted++, await remove(d.r, d.o, 'Foreground'));
    if (dependents.some((d) => d.o.metadata.ownerReferences.some((ref: Obj) => ref.uid === o.metadata.uid && ref.blockOwnerDeletion))) continue;
    acted++;
    const finalizers = o.metadata.finalizers.filter((f: string) => f !== 'foregroundDeletion');
    await api.patchNamespacedCustomObject({ ...r, namespace, name: o.metadata.name, body: { metadata: { finalizers: finalizers.length ? finalizers : null } } }, merge).catch(gone);
  }
  return acted;
}

describe.skipIf(!available || !shared)('knbot operator, deleting', () => {
  let server: TestApiServer;
  let api: CustomObjectsApi;
  let controller: Controller;
  beforeAll(async () => {
    server = await startApiServer();
    await installCrds(server.kubeConfig, operatorCrdFiles(shared!));
    api = server.kubeConfig.makeApiClient(CustomObjectsApi);
    controller = new Controller(server.kubeConfig, { workers: 2 });
    await controller.start();
  }, 900_000);
  afterAll(async () => {
    await controller?.stop();
    await server?.stop();
  });

  const create = (r: Resource, body: Obj) => api.createNamespacedCustomObject({ ...r, namespace: ns, body: { apiVersion: 'knbot.dev/v1alpha1', ...body, metadata: { ...body.metadata, namespace: ns } } }) as Promise<Obj>;
  const get = (r: Resource, name: string) => api.getNamespacedCustomObject({ ...r, namespace: ns, name }).then((o) => o as Obj, () => undefined);
  const list = async (r: Resource) => ((await api.listNamespacedCustomObject({ ...r, namespace: ns })) as { items: Obj[] }).items;
  const names = async (r: Resource) => (await list(r)).map((o) => o.metadata.name).sort();
  const remove = (r: Resource, name: string, propagationPolicy?: string) => api.deleteNamespacedCustomObject({ ...r, namespace: ns, name, ...(propagationPolicy ? { propagationPolicy } : {}) });

  it('leaves nothing behind: children owned by their parents, the ones it must remove removed, the rest collected', async () => {
    const bot = await create(BOTS, { kind: 'Bot', metadata: { name: 'shop' }, spec: { image: 'registry.local/shop:1' } });
    await create(EVENTS, { kind: 'Event', metadata: { name: 'orders', labels: { bot: 'shop' } }, spec: { types: ['dev.knbot.chat.message.received'], keywords: ['order'] } });
    await create(EVENTS, { kind: 'Event', metadata: { name: 'greeting', labels: { bot: 'shop' } }, spec: { keywords: ['hi'], reply: { text: 'Hello!' } } });
    const binding = await create(BINDINGS, { kind: 'EventBinding', metadata: { name: 'shop' }, spec: { botRef: { name: 'shop' }, eventSelector: { matchLabels: { bot: 'shop' } } } });
    // The bot's own Trigger, and one to the reply router for the canned reply.
    await waitFor(async () => (await get(BINDINGS, 'shop'))?.status?.triggers?.length === 2 && (await names(TRIGGERS)).length === 2, 'the binding\'s two Triggers');
    await waitFor(() => get(SERVICES, 'shop'), 'the Bot\'s Service');

    // Every child carries one owner reference: its parent, as controller, blocking the parent's
    // foreground deletion until it is gone.
    const owner = (o: Obj) => ({ apiVersion: 'knbot.dev/v1alpha1', kind: o.kind, name: o.metadata.name, uid: o.metadata.uid, controller: true, blockOwnerDeletion: true });
    for (const service of await list(SERVICES)) expect(service.metadata.ownerReferences, service.metadata.name).toEqual([owner(bot)]);
    for (const trigger of await list(TRIGGERS)) expect(trigger.metadata.ownerReferences, trigger.metadata.name).toEqual([owner(binding)]);
    // No finalizers: nothing outside owner references needs cleaning up, so no deletion waits on the operator.
    expect((await everything(api, ns)).flatMap(({ o }) => o.metadata.finalizers ?? [])).toEqual([]);

    // What the operator removes itself (no garbage collector would: the binding, their owner, is still
    // there). An Event deleted: its reply Trigger goes.
    await remove(EVENTS, 'greeting');
    const rebound = await waitFor(async () => {
      const b = await get(BINDINGS, 'shop');
      return (await names(TRIGGERS)).join() === 'shop' && b?.status?.triggers?.join() === 'shop' && b;
    }, 'the reply Trigger of the deleted Event to go');
    expect(rebound.status.boundEvents).toEqual(['orders']);

    // The Bot deleted in the foreground: it waits, with a deletionTimestamp, for its Service (the
    // garbage collector's work). Meanwhile the Triggers that delivered to it go (the operator's).
    const applies = () => requestCount(server, { resource: /^(services|triggers)$/, verb: 'APPLY' });
    const appliesBefore = await applies();
    await remove(BOTS, 'shop', 'Foreground');
    expect((await get(BOTS, 'shop'))?.metadata.deletionTimestamp).toBeDefined();
    await waitFor(async () => (await names(TRIGGERS)).length === 0, 'the Triggers to the deleted Bot to go');
    const orphaned = await waitFor(async () => {
      const b = await get(BINDINGS, 'shop');
      return b?.status?.conditions?.find((c: Obj) => c.type === 'Ready')?.reason === 'BotNotFound' && b;
    }, 'the binding to report its Bot missing');
    expect(orphaned.status.triggers).toEqual([]);

    // The rest is the garbage collector's: the Service goes, then the Bot; the binding and the last
    // Event are deleted by hand.
    await remove(BINDINGS, 'shop', 'Foreground');
    await remove(EVENTS, 'orders');
    await waitFor(async () => (await collectGarbage(api, ns)) === 0 && (await everything(api, ns)).length === 0, 'the namespace to be empty', 20_000);
    // The operator re-made nothing while its owner was being deleted (it would fight the collector).
    expect(await applies()).toBe(appliesBefore);
  }, 60_000);
});
