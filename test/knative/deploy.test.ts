// knbot deploy, status, traffic and delete as a user runs them (the real command, KUBECONFIG pointing
// at a real API server with Knative Serving's CRDs). The test plays Knative's controller: it writes
// the Service's status, Ready or failed, as the serving controller would.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestApiServer, apiServerAvailable, installCrds, servingCrdFiles, startApiServer } from '../apiserver.ts';
import { waitFor } from '../pod.ts';
import { ROOT, sharedDir } from '../shared.ts';

const run = promisify(execFile);
const available = await apiServerAvailable();
const shared = available ? sharedDir() : undefined;
const svc = { group: 'serving.knative.dev', version: 'v1', plural: 'services' } as const;

describe.skipIf(!available || !shared)('knbot deploy / status / traffic / delete against a real API server', () => {
  let server: TestApiServer;
  let api: CustomObjectsApi;
  beforeAll(async () => {
    server = await startApiServer();
    await installCrds(server.kubeConfig, servingCrdFiles(shared!));
    api = server.kubeConfig.makeApiClient(CustomObjectsApi);
  }, 900_000);
  afterAll(() => server?.stop());

  const knbot = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await run(join(ROOT, 'node_modules/.bin/node'), [join(ROOT, 'cli/knbot.js'), ...args], { env: { ...process.env, KUBECONFIG: server.kubeconfigPath } });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code: number; stdout: string; stderr: string };
      return { code: err.code, stdout: err.stdout, stderr: err.stderr };
    }
  };

  /** Plays the serving controller once the Service of generation ≥ `generation` exists. */
  const controller = async (namespace: string, name: string, ready: boolean, generation = 1) => {
    const obj = (await waitFor(
      async () => {
        const o = (await api.getNamespacedCustomObject({ ...svc, namespace, name }).catch(() => undefined)) as { metadata: { generation: number } } | undefined;
        return o && o.metadata.generation >= generation ? o : undefined;
      },
      `the Service ${name}`,
    )) as Record<string, any>;
    const revision = `${name}-${String(obj.metadata.generation).padStart(5, '0')}`;
    obj.status = {
      observedGeneration: obj.metadata.generation,
      conditions: ready
        ? [{ type: 'Ready', status: 'True', lastTransitionTime: new Date().toISOString() }]
        : [{ type: 'Ready', status: 'False', reason: 'RevisionMissing', message: `Configuration "${name}" does not have any ready Revision.`, lastTransitionTime: new Date().toISOString() }],
      ...(ready ? { url: `http://${name}.${namespace}.example.com`, latestReadyRevisionName: revision, latestCreatedRevisionName: revision, traffic: [{ revisionName: revision, percent: 100, latestRevision: true }] } : {}),
    };
    await api.replaceNamespacedCustomObjectStatus({ ...svc, namespace, name, body: obj });
  };

  it('deploys, waits for Ready and prints the URL', async () => {
    const [res] = await Promise.all([knbot('deploy', 'functions/echo', '--image', 'registry.local/echo:1', '--namespace', 'ns-a', '--timeout', '30'), controller('ns-a', 'echo', true)]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('ns-a/echo is ready at http://echo.ns-a.example.com (revision echo-00001)');
    const obj = (await api.getNamespacedCustomObject({ ...svc, namespace: 'ns-a', name: 'echo' })) as Record<string, any>;
    expect(obj.spec.template.spec.containers[0].image).toBe('registry.local/echo:1');
    expect(obj.metadata.managedFields.map((m: { manager: string }) => m.manager)).toContain('knbot');
  });

  it('reports a failed deploy with the condition\'s reason and message', async () => {
    const [res] = await Promise.all([
      knbot('deploy', join(ROOT, 'test/fixtures/bots/slow'), '--image', 'registry.local/slow:1', '--namespace', 'ns-a', '--timeout', '30'),
      controller('ns-a', 'slow', false),
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('ns-a/slow failed: RevisionMissing: Configuration "slow" does not have any ready Revision.');
  });

  it('shows status, splits traffic for a canary, keeps the split across a redeploy, and deletes', async () => {
    const status = await knbot('status', 'echo', '--namespace', 'ns-a');
    expect(status.code).toBe(0);
    expect(load(status.stdout)).toMatchObject({ name: 'echo', state: 'ready', url: 'http://echo.ns-a.example.com', latestReadyRevision: 'echo-00001' });

    const traffic = await knbot('traffic', 'echo', '--tag', 'canary=20', '--namespace', 'ns-a');
    expect(traffic.code, traffic.stderr).toBe(0);
    const split = [{ latestRevision: true, percent: 20, tag: 'canary' }, { revisionName: 'echo-00001', percent: 80 }];
    expect(((await api.getNamespacedCustomObject({ ...svc, namespace: 'ns-a', name: 'echo' })) as any).spec.traffic).toEqual(split);

    // A new image: the traffic command's field manager still owns the split.
    const [redeploy] = await Promise.all([knbot('deploy', 'functions/echo', '--image', 'registry.local/echo:2', '--namespace', 'ns-a', '--timeout', '30'), controller('ns-a', 'echo', true, 3)]);
    expect(redeploy.code, redeploy.stderr).toBe(0);
    const after = (await api.getNamespacedCustomObject({ ...svc, namespace: 'ns-a', name: 'echo' })) as any;
    expect(after.spec.traffic).toEqual(split);
    expect(after.spec.template.spec.containers[0].image).toBe('registry.local/echo:2');

    expect((await knbot('delete', 'echo', '--namespace', 'ns-a')).stdout).toContain('ns-a/echo deleted');
    const again = await knbot('delete', 'echo', '--namespace', 'ns-a');
    expect([again.code, again.stdout.trim()]).toEqual([1, 'ns-a/echo does not exist']);
    expect((await knbot('status', 'echo', '--namespace', 'ns-a')).code).toBe(1);
  });

  it('shows what would be applied with --dry-run, changing nothing', async () => {
    const res = await knbot('deploy', 'functions/echo', '--image', 'registry.local/echo:9', '--namespace', 'ns-dry', '--dry-run', '--output', 'json');
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).spec.template.spec.containers[0].image).toBe('registry.local/echo:9');
    expect(await api.getNamespacedCustomObject({ ...svc, namespace: 'ns-dry', name: 'echo' }).then(() => 'exists', () => 'absent')).toBe('absent');
  });
});
