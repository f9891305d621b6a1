// `knbot operator` as a process against a real API server: its metrics port answers the probes and
// Prometheus, and the series move with the objects it reconciles.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestApiServer, apiServerAvailable, installCrds, installLeaseCrd, operatorCrdFiles, startApiServer } from '../apiserver.ts';
import { count, metricsOf, sample, scrape } from '../metrics.ts';
import { startKnbot, waitFor } from '../pod.ts';
import { sharedDir } from '../shared.ts';

const available = await apiServerAvailable();
const shared = available ? sharedDir() : undefined;
const KNBOT = { group: 'knbot.dev', version: 'v1alpha1' } as const;
const SERVICES = { group: 'serving.knative.dev', version: 'v1', plural: 'services' } as const;
const ns = 'metrics';

interface OperatorProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
}

describe.skipIf(!available || !shared)('knbot operator metrics', () => {
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
    for (const c of children) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      c.kill('SIGKILL');
      await once(c, 'exit');
    }
    await server?.stop();
  });

  const start = async (): Promise<OperatorProcess> => {
    const { child, output, ready } = await startKnbot(['operator', '--lease-namespace', ns, '--lease-duration', '5', '--metrics-port', '0'], {
      ready: 'metrics listening',
      env: { KUBECONFIG: server.kubeconfigPath },
    });
    children.push(child);
    return { child, url: `http://127.0.0.1:${ready.port}`, output };
  };

  it('answers /healthz, /readyz and /metrics, and counts reconciles and API writes as Bots come', async () => {
    const leader = await start();
    expect((await scrape(`${leader.url}/healthz`)).status).toBe(200);
    await waitFor(() => leader.output().includes('"msg":"operator started"'), 'the leader to start reconciling', 20_000);
    await waitFor(async () => (await scrape(`${leader.url}/readyz`)).status === 200, 'readiness');
    const before = await metricsOf(`${leader.url}/metrics`);
    expect(sample(before, 'knbot_operator_leader')).toBe(1);
    expect(sample(before, 'knbot_workqueue_depth', { kind: 'Bot' })).toBeGreaterThanOrEqual(0);
    expect(sample(before, 'knbot_workqueue_depth', { kind: 'EventBinding' })).toBeGreaterThanOrEqual(0);
    expect(sample(before, 'process_resident_memory_bytes')).toBeGreaterThan(0);

    const names = ['counted-a', 'counted-b', 'counted-c'];
    for (const name of names) {
      await api.createNamespacedCustomObject({ ...KNBOT, plural: 'bots', namespace: ns, body: { apiVersion: 'knbot.dev/v1alpha1', kind: 'Bot', metadata: { name, namespace: ns }, spec: { image: `registry.local/${name}:1` } } });
    }
    for (const name of names) await waitFor(() => api.getNamespacedCustomObject({ ...SERVICES, namespace: ns, name }).then(() => true, () => false), `the Service ${name}`);
    const applied = (t: string) => count(t, 'knbot_api_writes_total', { verb: 'apply', resource: 'services', result: 'ok' });
    const statuses = (t: string) => count(t, 'knbot_api_writes_total', { verb: 'apply', resource: 'bots/status', result: 'ok' });
    const after = await waitFor(async () => {
      const t = await metricsOf(`${leader.url}/metrics`);
      return statuses(t) - statuses(before) >= names.length && t;
    }, 'the status writes to be counted');
    // One Service each: applied once, and not again while it is as the Bot wants it.
    expect(applied(after) - applied(before)).toBe(names.length);
    const reconciles = (t: string) => count(t, 'knbot_reconcile_total', { kind: 'Bot', result: 'ok' }) + count(t, 'knbot_reconcile_total', { kind: 'Bot', result: 'requeue' });
    expect(reconciles(after) - reconciles(before)).toBeGreaterThanOrEqual(names.length);
    expect(count(after, 'knbot_reconcile_duration_seconds_count', { kind: 'Bot' }) - count(before, 'knbot_reconcile_duration_seconds_count', { kind: 'Bot' })).toBeGreaterThanOrEqual(names.length);
    // Kinds, verbs and results: never an object's name.
    expect(after).not.toContain('counted-');
  }, 60_000);

  it('keeps a candidate waiting for leadership ready, and says it does not lead', async () => {
    const candidate = await start();
    await waitFor(() => candidate.output().includes('"msg":"waiting for leadership"'), 'the candidate to wait');
    expect((await scrape(`${candidate.url}/readyz`)).status).toBe(200);
    const text = await metricsOf(`${candidate.url}/metrics`);
    expect(sample(text, 'knbot_operator_leader')).toBe(0);
    expect(count(text, 'knbot_reconcile_total', { kind: 'Bot', result: 'ok' })).toBe(0);
  }, 30_000);
});
