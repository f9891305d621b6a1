// The operator against a real API server: our CRDs and Knative's Service and Trigger CRDs
// registered, the controller running in this process, the test playing Knative's serving controller.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { load, loadAll } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller } from '../../knative/operator/controller.ts';
import { decide } from '../../knative/operator/leader-election.ts';
import { type TestApiServer, apiServerAvailable, installCrds, installLeaseCrd, operatorCrdFiles, requestCount, startApiServer } from '../apiserver.ts';
import { waitFor } from '../pod.ts';
import { ROOT, sharedDir } from '../shared.ts';

const available = await apiServerAvailable();
const shared = available ? sharedDir() : undefined;
const KNBOT = { group: 'knbot.dev', version: 'v1alpha1' } as const;
const SERVICES = { group: 'serving.knative.dev', version: 'v1', plural: 'services' } as const;
const TRIGGERS = { group: 'eventing.knative.dev', version: 'v1', plural: 'triggers' } as const;
const ns = 'op-test';
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

describe.skipIf(!available || !shared)('knbot operator', () => {
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

  const create = (plural: string, body: Record<string, any>) => api.createNamespacedCustomObject({ ...KNBOT, plural, namespace: ns, body: { ...body, metadata: { ...body.metadata, namespace: ns } } });
  const get = (g: { group: string; version: string; plural: string }, name: string) => api.getNamespacedCustomObject({ ...g, namespace: ns, name }).then((o) => o as Record<string, any>, () => undefined);
  const readyOf = (o: Record<string, any> | undefined) => o?.status?.conditions?.find((c: any) => c.type === 'Ready');
  /** Knative's controller, played here: the Service's status says Ready for its current generation. */
  const knativeReady = async (name: string) => {
    const service = (await get(SERVICES, name))!;
    service.status = {
      observedGeneration: service.metadata.generation,
      url: `http://${name}.${ns}.example.com`,
      latestReadyRevisionName: `${name}-00001`,
      conditions: ['Ready', 'ConfigurationsReady', 'RoutesReady'].map((type) => ({ type, status: 'True', lastTransitionTime: new Date().toISOString() })),
    };
    await api.replaceNamespacedCustomObjectStatus({ ...SERVICES, namespace: ns, name, body: service });
  };

  it('makes a Bot\'s Knative Service, owned by the Bot, and reports Ready once Knative does', async () => {
    const faq = load(readFileSync(join(ROOT, 'knative/examples/faq-bot.yaml'), 'utf8')) as Record<string, any>;
    const bot = (await create('bots', faq)) as Record<string, any>;
    const service = await waitFor(() => get(SERVICES, 'faq'), 'the Service');
    expect(service.metadata.ownerReferences).toEqual([{ apiVersion: 'knbot.dev/v1alpha1', kind: 'Bot', name: 'faq', uid: bot.metadata.uid, controller: true, blockOwnerDeletion: true }]);
    expect(service.spec.template.metadata.annotations['autoscaling.knative.dev/min-scale']).toBe('1');
    expect(service.spec.template.spec.containerConcurrency).toBe(10);
    await waitFor(async () => (await get({ ...KNBOT, plural: 'bots' }, 'faq'))?.status?.conditions?.find((c: any) => c.type === 'Ready')?.status === 'Unknown', 'Ready Unknown while deploying');

    await knativeReady('faq');
    const ready = await waitFor(async () => {
      const b = await get({ ...KNBOT, plural: 'bots' }, 'faq');
      return b?.status?.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True' && b;
    }, 'the Bot to turn Ready');
    expect(ready.status).toMatchObject({ observedGeneration: ready.metadata.generation, url: 'http://faq.op-test.example.com', latestReadyRevision: 'faq-00001' });
  });

  it('retries a status write the API server refuses with 409 Conflict, and converges', async () => {
    await create('bots', { apiVersion: 'knbot.dev/v1alpha1', kind: 'Bot', metadata: { name: 'racy' }, spec: { image: 'registry.local/racy:1' } });
    // Reported, and seen by the operator's own cache (it holds back while its last write is unseen).
    await waitFor(() => readyOf(controller.informers.bot.get('racy', ns))?.reason === 'Deploying', 'the Bot to report Deploying');
    const conflicts = () => requestCount(server, { resource: 'bots', subresource: 'status', code: '409' });
    const before = await conflicts();

    // The operator's copy of the Bot falls behind the server, as when its watch lags: its Bot
    // informer is stopped (the cache stays), then someone else changes the Bot's labels (a new
    // resourceVersion, the same generation).
    await controller.informers.bot.stop();
    await api.patchNamespacedCustomObject({ ...KNBOT, plural: 'bots', namespace: ns, name: 'racy', body: { metadata: { labels: { team: 'support' } } } }, merge);
    // Knative turns the Service Ready: the operator reconciles the Bot from its stale copy, and the
    // status write, conditioned on that copy's resourceVersion, is refused; it retries, refused again.
    await knativeReady('racy');
    await waitFor(async () => (await conflicts()) >= before + 2, 'the status write to be refused with 409, twice');
    expect(readyOf(await get({ ...KNBOT, plural: 'bots' }, 'racy'))?.status, 'nothing written from the stale copy').toBe('Unknown');

    // The watch catches up; the next retry writes the status, on the Bot as it is now.
    await controller.informers.bot.start();
    const converged = await waitFor(async () => {
      const b = await get({ ...KNBOT, plural: 'bots' }, 'racy');
      return readyOf(b)?.status === 'True' && b;
    }, 'the Bot to turn Ready after the conflicts');
    expect(converged.status.observedGeneration).toBe(converged.metadata.generation);
    expect(converged.status.conditions.every((c: any) => c.status === 'True' && c.observedGeneration === converged.metadata.generation)).toBe(true);
    expect(converged.metadata.labels).toEqual({ team: 'support' });
  });

  it('recovers when the API server restarts under it', async () => {
    await server.restart();
    const bot = { apiVersion: 'knbot.dev/v1alpha1', kind: 'Bot', metadata: { name: 'after-restart' }, spec: { image: 'registry.local/after:1' } };
    await waitFor(() => create('bots', bot).then(() => true, () => false), 'the API server to take writes again', 20_000);
    await waitFor(() => get(SERVICES, 'after-restart'), 'the operator to make the Service after the restart', 20_000);
  }, 60_000);

  it('restores a Service edited by hand', async () => {
    await api.patchNamespacedCustomObject({ ...SERVICES, namespace: ns, name: 'faq', body: { spec: { template: { spec: { containerConcurrency: 99 } } } } }, merge);
    await waitFor(async () => (await get(SERVICES, 'faq'))?.spec.template.spec.containerConcurrency === 10, 'the drift to be undone');
  });

  it('drops from the Service what the Bot no longer asks for', async () => {
    await api.patchNamespacedCustomObject({ ...KNBOT, plural: 'bots', namespace: ns, name: 'faq', body: { spec: { scaling: { minScale: null } } } }, merge);
    await waitFor(async () => (await get(SERVICES, 'faq'))?.spec.template.metadata.annotations?.['autoscaling.knative.dev/min-scale'] === undefined, 'min-scale to leave the Service');
    expect((await get(SERVICES, 'faq'))!.spec.template.metadata.annotations['autoscaling.knative.dev/max-scale']).toBe('10');
  });

  it('turns an EventBinding into Triggers, and re-binds when an Event\'s labels change', async () => {
    const docs = loadAll(readFileSync(join(ROOT, 'knative/examples/slack-binding.yaml'), 'utf8')) as Record<string, any>[];
    for (const d of docs) await create(d.kind === 'Event' ? 'events' : 'eventbindings', d);
    const binding = docs.find((d) => d.kind === 'EventBinding')!;
    const event = docs.find((d) => d.kind === 'Event')!;
    const bound = await waitFor(async () => {
      const b = await get({ ...KNBOT, plural: 'eventbindings' }, binding.metadata.name);
      return b?.status?.triggers?.length && b;
    }, 'the binding status');
    expect(bound.status.boundEvents).toEqual([event.metadata.name]);
    const trigger = await waitFor(() => get(TRIGGERS, bound.status.triggers[0]), 'the Trigger');
    expect(trigger.spec.filters[0]).toEqual({ exact: { chatbot: binding.spec.botRef.name } });
    expect(trigger.spec.subscriber).toEqual({ ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: binding.spec.botRef.name } });
    expect(trigger.metadata.ownerReferences[0]).toMatchObject({ kind: 'EventBinding', name: binding.metadata.name, controller: true });

    // A Trigger with the same labels that the binding does not own (`knbot deploy` made it): not the operator's to delete.
    const foreign = { apiVersion: 'eventing.knative.dev/v1', kind: 'Trigger', metadata: { name: 'made-by-deploy', namespace: ns, labels: trigger.metadata.labels }, spec: trigger.spec };
    await api.createNamespacedCustomObject({ ...TRIGGERS, namespace: ns, body: foreign });

    // The Event no longer carries the label the binding selects: unbound, its Trigger goes.
    const labels = Object.fromEntries(Object.keys(event.metadata.labels).map((k) => [k, null]));
    await api.patchNamespacedCustomObject({ ...KNBOT, plural: 'events', namespace: ns, name: event.metadata.name, body: { metadata: { labels } } }, merge);
    await waitFor(async () => (await get({ ...KNBOT, plural: 'eventbindings' }, binding.metadata.name))?.status?.boundEvents?.length === 0, 'the Event to be unbound');
    await waitFor(async () => (await get(TRIGGERS, trigger.metadata.name)) === undefined, 'the stale Trigger to be deleted');
    expect(await get(TRIGGERS, 'made-by-deploy')).toBeDefined();
  });
});

describe('decide (leader election)', () => {
  // Leases are made when each case runs: built at collection they would age behind the slow suites.
  const lease = (holder: string | undefined, renewedAgoMs: number, duration = 15) => ({
    spec: { holderIdentity: holder, leaseDurationSeconds: duration, renewTime: new Date(Date.now() - renewedAgoMs).toISOString() as never },
  });
  it.each([
    ['no Lease', undefined, { action: 'create' }],
    ['our own Lease', ['me', 1000], { action: 'renew' }],
    ['a live Lease of another', ['other', 1000], { action: 'wait', holder: 'other' }],
    ['an expired Lease of another', ['other', 16_000], { action: 'takeover' }],
    ['a Lease nobody holds', [undefined, 0], { action: 'takeover' }],
  ] as const)('%s', (_, l, want) => {
    expect(decide(l === undefined ? undefined : (lease(l[0], l[1]) as never), 'me', Date.now())).toEqual(want);
  });
});

describe.skipIf(!available || !shared)('two operator processes', () => {
  let server: TestApiServer;
  let api: CustomObjectsApi;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    server = await startApiServer();
    await installCrds(server.kubeConfig, operatorCrdFiles(shared!));
    await installLeaseCrd(server.kubeConfig);
    api = server.kubeConfig.makeApiClient(CustomObjectsApi);
  }, 900_000);
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await server?.stop();
  });

  it('elect one leader, and the other takes over when the leader is killed', async () => {
    // A lease of 5 s: this server holds the first write of a new kind for 2 s after its CRD is
    // established, so a shorter lease could expire before the first leader's first renewal.
    const start = () => {
      const c = spawn(join(ROOT, 'node_modules/.bin/node'), [join(ROOT, 'cli/knbot.js'), 'operator', '--lease-namespace', 'ha', '--lease-duration', '5', '--metrics-port', '0'], {
        env: { ...process.env, KUBECONFIG: server.kubeconfigPath },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      c.stdout!.on('data', (d) => (out += d));
      c.stderr!.on('data', (d) => (out += d));
      children.push(c);
      return { c, out: () => out };
    };
    // One candidate first, so the test knows which one leads; then a second, which must wait.
    const leader = start();
    await waitFor(() => leader.out().includes('"msg":"became leader"'), 'a leader', 20_000);
    const follower = start();
    await waitFor(() => follower.out().includes('"msg":"waiting for leadership"'), 'the second candidate', 20_000);
    await new Promise((r) => setTimeout(r, 3000));
    expect(follower.out(), leader.out()).not.toContain('"msg":"became leader"');
    expect(leader.c.exitCode).toBeNull();

    const bot = (name: string) => ({ apiVersion: 'knbot.dev/v1alpha1', kind: 'Bot', metadata: { name, namespace: 'ha' }, spec: { image: `registry.local/${name}:1` } });
    await api.createNamespacedCustomObject({ ...KNBOT, plural: 'bots', namespace: 'ha', body: bot('one') });
    await waitFor(() => api.getNamespacedCustomObject({ ...SERVICES, namespace: 'ha', name: 'one' }).then(() => true, () => false), 'the leader to make the Service');

    leader.c.kill('SIGKILL');
    await waitFor(() => follower.out().includes('"msg":"became leader"'), 'the follower to take over', 20_000);
    await api.createNamespacedCustomObject({ ...KNBOT, plural: 'bots', namespace: 'ha', body: bot('two') });
    await waitFor(() => api.getNamespacedCustomObject({ ...SERVICES, namespace: 'ha', name: 'two' }).then(() => true, () => false), 'the new leader to make the Service');
  }, 60_000);
});
