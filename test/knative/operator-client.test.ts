// The operator's way to the API server, against a real one: one connection pool for all requests,
// informer lists read in pages, and cached objects trimmed of what no reconciler reads.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { informer } from '../../knative/operator/informers.ts';
import { withSharedAgent } from '../../knative/kube.ts';
import { type TestApiServer, apiServerAvailable, installCrds, operatorCrdFiles, requestCount, startApiServer } from '../apiserver.ts';
import { waitFor } from '../pod.ts';
import { sharedDir } from '../shared.ts';

const available = await apiServerAvailable();
const shared = available ? sharedDir() : undefined;
const EVENTS = { group: 'knbot.dev', version: 'v1alpha1', plural: 'events' };
const ns = 'op-client';

/** TCP connections this process holds open to `port` on loopback (Linux: /proc). */
function connectionsTo(port: number): number {
  const mine = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    const target = (() => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        return '';
      }
    })();
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) mine.add(inode);
  }
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  // Columns: sl, local address, remote address, state (01: established), …, inode (the tenth).
  return readFileSync('/proc/self/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((c) => c[2]?.endsWith(`:${hexPort}`) && c[3] === '01' && mine.has(c[9]!)).length;
}

describe.skipIf(!available || !shared)('the operator\'s API client', () => {
  let server: TestApiServer;
  beforeAll(async () => {
    server = await startApiServer();
    await installCrds(server.kubeConfig, operatorCrdFiles(shared!));
    const api = server.kubeConfig.makeApiClient(CustomObjectsApi);
    const event = (i: number) => ({
      apiVersion: 'knbot.dev/v1alpha1',
      kind: 'Event',
      metadata: { name: `ev-${i}`, namespace: ns, labels: { n: String(i) }, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"a copy":"of the object"}', note: 'kept' } },
      spec: { types: [`dev.knbot.test.${i}`] },
    });
    await waitFor(() => api.createNamespacedCustomObject({ ...EVENTS, namespace: ns, body: event(0) }).then(() => true, () => false), 'the first Event to be taken');
    for (let i = 1; i < 5; i++) await api.createNamespacedCustomObject({ ...EVENTS, namespace: ns, body: event(i) });
  }, 900_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('shares one connection across requests, where client-node alone opens one per request', async () => {
    const opened = async (kc: TestApiServer['kubeConfig']) => {
      const api = kc.makeApiClient(CustomObjectsApi);
      const port = Number(new URL(server.url).port);
      const before = connectionsTo(port);
      for (let i = 0; i < 20; i++) await api.getNamespacedCustomObject({ ...EVENTS, namespace: ns, name: 'ev-0' });
      return connectionsTo(port) - before;
    };
    expect(await opened(withSharedAgent(server.kubeConfig))).toBe(1);
    // client-node's own: every request makes its connection, left open until its keep-alive runs out
    // (how many are still open when counted varies with timing).
    expect(await opened(server.kubeConfig)).toBeGreaterThanOrEqual(3);
  });

  it('lists in pages, and keeps its objects trimmed of managedFields and kubectl\'s last-applied copy', async () => {
    const kc = withSharedAgent(server.kubeConfig);
    const lists = () => requestCount(server, { resource: 'events', verb: 'LIST' });
    const before = await lists();
    const events = informer(kc, kc.makeApiClient(CustomObjectsApi), EVENTS, undefined, 2);
    await events.start();
    try {
      expect(events.list(ns).map((e) => e.metadata!.name).sort()).toEqual(['ev-0', 'ev-1', 'ev-2', 'ev-3', 'ev-4']);
      // Five Events two at a time: three pages.
      expect((await lists()) - before).toBe(3);
      for (const e of events.list(ns)) {
        expect(e.metadata!.managedFields).toBeUndefined();
        expect(e.metadata!.annotations).toEqual({ note: 'kept' });
      }
    } finally {
      await events.stop();
    }
  });
});
