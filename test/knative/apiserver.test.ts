// What the test API server (test/apiserver.ts) does with Knative Serving objects, through the same
// client the deploy command and the operator use. If these fail, the harness or the client is wrong,
// not knbot.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiException, CoordinationV1Api, CustomObjectsApi, PatchStrategy, V1MicroTime, Watch, setHeaderOptions } from '@kubernetes/client-node';
import type { V1Lease } from '@kubernetes/client-node';
import { apiServerAvailable, installCrds, installLeaseCrd, servingCrdFiles, startApiServer, trimCrd } from '../apiserver.ts';
import type { TestApiServer } from '../apiserver.ts';
import { sharedDir } from '../shared.ts';

// Only whether the pieces exist is decided here; the (possibly long) build runs in beforeAll.
const available = await apiServerAvailable();
const shared = available ? sharedDir() : undefined;
const servingCrds = servingCrdFiles(shared ?? '');

const services = { group: 'serving.knative.dev', version: 'v1', plural: 'services' } as const;
// Namespaces are not served and NamespaceLifecycle is off: any name works, no Namespace object needed.
const namespace = 'knbot-apiserver-test';
const apply = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

interface Condition {
  type: string;
  status: string;
  reason?: string;
  lastTransitionTime?: string;
}

interface KnativeService {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    managedFields?: { manager: string; operation: string; subresource?: string }[];
  };
  spec: { template: { spec: { containers: { image: string }[]; containerConcurrency?: unknown } } };
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

function service(name: string, image: string, revisionSpec: object = {}): KnativeService {
  return {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: { name, namespace },
    spec: { template: { spec: { containers: [{ image }], ...revisionSpec } } },
  };
}

async function rejection(promise: Promise<unknown>): Promise<ApiException<unknown>> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ApiException) return err as ApiException<unknown>;
    throw err;
  }
  throw new Error('expected the API server to refuse');
}

describe('trimCrd', () => {
  const crd = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'things.example.com' },
    spec: {
      group: 'example.com',
      names: { kind: 'Thing', plural: 'things' },
      scope: 'Namespaced',
      conversion: { strategy: 'Webhook', webhook: { conversionReviewVersions: ['v1'] } },
      versions: [
        { name: 'v1alpha1', served: true, storage: false },
        { name: 'v1', served: true, storage: true },
      ],
    },
  };

  it('keeps only the storage version and drops the conversion webhook', () => {
    const trimmed = trimCrd(crd);
    expect(trimmed.spec.versions.map((v) => v.name)).toEqual(['v1']);
    expect(trimmed.spec).not.toHaveProperty('conversion');
    expect(crd.spec.versions).toHaveLength(2);
  });

  it('refuses a CRD whose storage version is not served', () => {
    const unserved = { ...crd, spec: { ...crd.spec, versions: [{ name: 'v1', served: false, storage: true }] } };
    expect(() => trimCrd(unserved, 'things.yaml')).toThrow(/things\.yaml: expected one served storage version/);
  });
});

describe.skipIf(!available || shared === undefined)('test Kubernetes API server with Knative Serving CRDs', () => {
  let server: TestApiServer | undefined;
  let objects: CustomObjectsApi;
  let leases: CoordinationV1Api;

  beforeAll(async () => {
    // The first run builds apiextensions-apiserver: minutes on a fresh machine.
    server = await startApiServer();
    // Together: the server holds the first create of a kind for 2 s after its CRD is Established
    // (an HA safeguard in apiextensions' customresource_handler.go), and then only the first test waits.
    await Promise.all([installCrds(server.kubeConfig, servingCrds), installLeaseCrd(server.kubeConfig)]);
    objects = server.kubeConfig.makeApiClient(CustomObjectsApi);
    leases = server.kubeConfig.makeApiClient(CoordinationV1Api);
  }, 900_000);

  afterAll(async () => {
    await server?.stop();
  });

  async function read(name: string): Promise<KnativeService> {
    return (await objects.getNamespacedCustomObject({ ...services, namespace, name })) as KnativeService;
  }

  function applyService(body: KnativeService, force = false): Promise<KnativeService> {
    const name = body.metadata.name;
    return objects.patchNamespacedCustomObject({ ...services, namespace, name, body, fieldManager: 'knbot', force }, apply);
  }

  it('creates a Service and reads it back', async () => {
    const created = (await objects.createNamespacedCustomObject({
      ...services,
      namespace,
      body: service('created', 'example.com/bot:v1'),
    })) as KnativeService;
    expect(created.metadata).toMatchObject({ name: 'created', namespace, generation: 1 });
    expect(created.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);

    const read1 = await read('created');
    expect(read1.spec.template.spec.containers).toEqual([{ image: 'example.com/bot:v1' }]);
    expect(read1.metadata.resourceVersion).toBe(created.metadata.resourceVersion);
  });

  it('refuses an apply that takes a field another manager owns, unless forced', async () => {
    await objects.createNamespacedCustomObject({
      ...services,
      namespace,
      body: service('taken-over', 'example.com/bot:v1'),
      fieldManager: 'kubectl-edit',
    });

    const conflict = await rejection(applyService(service('taken-over', 'example.com/bot:v2')));
    expect(conflict.code).toBe(409);
    expect(String(conflict.body)).toContain('kubectl-edit');

    const applied = await applyService(service('taken-over', 'example.com/bot:v2'), true);
    expect(applied.metadata.generation).toBe(2);
    const back = await read('taken-over');
    expect(back.spec.template.spec.containers).toEqual([{ image: 'example.com/bot:v2' }]);
    expect(back.metadata.managedFields).toContainEqual(expect.objectContaining({ manager: 'knbot', operation: 'Apply' }));
  });

  it('creates by server-side apply, and re-applying the same object changes nothing', async () => {
    const first = await applyService(service('applied', 'example.com/bot:v1'));
    const again = await applyService(service('applied', 'example.com/bot:v1'));
    expect(again.metadata.generation).toBe(1);
    expect(again.metadata.resourceVersion).toBe(first.metadata.resourceVersion);
  });

  it('writes status.conditions only through the status subresource, without bumping generation', async () => {
    await applyService(service('with-status', 'example.com/bot:v1'));
    const conditions: Condition[] = [
      { type: 'Ready', status: 'True', lastTransitionTime: '2026-01-02T03:04:05Z' },
      { type: 'RoutesReady', status: 'True', reason: 'Ready', lastTransitionTime: '2026-01-02T03:04:05Z' },
    ];
    // The status subresource takes apiVersion, kind and metadata.name in an apply body.
    await objects.patchNamespacedCustomObjectStatus(
      {
        ...services,
        namespace,
        name: 'with-status',
        body: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', metadata: { name: 'with-status' }, status: { observedGeneration: 1, conditions } },
        fieldManager: 'knbot',
        force: true,
      },
      apply,
    );
    const back = await read('with-status');
    expect(back.status).toEqual({ observedGeneration: 1, conditions });
    expect(back.metadata.generation).toBe(1);

    // Status sent to the main resource is dropped, as the status subresource requires.
    await applyService({ ...service('with-status', 'example.com/bot:v1'), status: { conditions: [{ type: 'Ready', status: 'False' }] } });
    expect((await read('with-status')).status).toEqual({ observedGeneration: 1, conditions });
  });

  it('streams the update of a watched Service', async () => {
    const created = await applyService(service('watched', 'example.com/bot:v1'));
    const watch = new Watch(server!.kubeConfig);
    let settle: { resolve(event: [string, KnativeService]): void; reject(err: unknown): void } | undefined;
    const seen = new Promise<[string, KnativeService]>((resolve, reject) => {
      settle = { resolve, reject };
    });
    seen.catch(() => {}); // awaited below; a watch that ends early must not count as unhandled meanwhile
    const controller = await watch.watch(
      `/apis/serving.knative.dev/v1/namespaces/${namespace}/services`,
      { resourceVersion: created.metadata.resourceVersion, fieldSelector: 'metadata.name=watched' },
      (phase: string, object: KnativeService) => settle?.resolve([phase, object]),
      (err: unknown) => settle?.reject(err ?? new Error('the watch ended before an event')),
    );
    try {
      await applyService(service('watched', 'example.com/bot:v2'));
      const [phase, object] = await seen;
      expect(phase).toBe('MODIFIED');
      expect(object.spec.template.spec.containers).toEqual([{ image: 'example.com/bot:v2' }]);
      expect(object.metadata.generation).toBe(2);
    } finally {
      settle = undefined;
      controller.abort();
    }
  });

  it.each<[string, object, string]>([
    ['a string where the schema wants an integer', { containerConcurrency: 'many' }, 'spec.template.spec.containerConcurrency'],
    ['a missing required field', { containers: undefined }, 'spec.template.spec.containers'],
  ])('rejects a Service with %s (422)', async (_name, revisionSpec, field) => {
    const err = await rejection(
      objects.createNamespacedCustomObject({ ...services, namespace, body: service('invalid', 'example.com/bot:v1', revisionSpec) }),
    );
    expect(err.code).toBe(422);
    expect(String(err.body)).toContain(field);
  });

  it('serves Leases from a CRD: creates, renews and refuses a stale renewal', async () => {
    const now = new V1MicroTime('2026-01-02T03:04:05.123Z');
    // A CRD, unlike the native kind, refuses a body without apiVersion and kind (400 "Object 'Kind' is
    // missing"): leader election must set them on create. Reads return them, so replaces carry them.
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'knbot-operator', namespace },
      spec: { holderIdentity: 'pod-a', leaseDurationSeconds: 15, acquireTime: now, renewTime: now, leaseTransitions: 0 },
    };
    const created = await leases.createNamespacedLease({ namespace, body });
    expect(created.spec).toMatchObject({ holderIdentity: 'pod-a', leaseDurationSeconds: 15, leaseTransitions: 0 });

    const read1 = await leases.readNamespacedLease({ name: 'knbot-operator', namespace });
    const renewed = await leases.replaceNamespacedLease({
      name: 'knbot-operator',
      namespace,
      body: { ...read1, spec: { ...read1.spec, renewTime: new V1MicroTime('2026-01-02T03:04:10Z') } },
    });
    expect(renewed.metadata?.resourceVersion).not.toBe(read1.metadata?.resourceVersion);
    expect(String(renewed.spec?.renewTime)).toMatch(/^2026-01-02T03:04:10/);

    // A second candidate that read before the renewal loses: 409 on the stale resourceVersion.
    const stale = await rejection(leases.replaceNamespacedLease({
      name: 'knbot-operator',
      namespace,
      body: { ...read1, spec: { ...read1.spec, holderIdentity: 'pod-b' } },
    }));
    expect(stale.code).toBe(409);
    expect((await leases.readNamespacedLease({ name: 'knbot-operator', namespace })).spec?.holderIdentity).toBe('pod-a');
  });
});
