// npm run bench:operator — 500 Bots, 2,000 Events and 500 EventBindings applied at once to a real API
// server; the operator (`knbot operator`, its own process) makes their Services and Triggers while
// this process plays Knative's serving controller. Reports the time until every status is Ready and
// observed, the operator's write requests per object (from the API server's request counters), and
// the operator's peak RSS.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CustomObjectsApi } from '@kubernetes/client-node';
import { installCrds, operatorCrdFiles, requestCount, startApiServer } from '../test/apiserver.ts';
import { sharedDir } from '../test/shared.ts';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const BOTS = Number(process.env.BENCH_BOTS ?? 500);
const EVENTS_PER_BOT = 4;
const ns = 'bench';
const shared = sharedDir();
if (!shared) throw new Error('bench:operator needs ../shared (the Knative CRDs)');

const server = await startApiServer();
const kc = server.kubeConfig;
await installCrds(kc, operatorCrdFiles(shared));
const api = kc.makeApiClient(CustomObjectsApi);
const KNBOT = { group: 'knbot.dev', version: 'v1alpha1' };

// The operator's writes, whatever their answer, as the API server counted them: it writes only with
// server-side apply (children, status) and deletes (stale Triggers); this process creates (POST) and
// replaces Service status (PUT).
const RESOURCES = ['services', 'triggers', 'bots', 'eventbindings'] as const;
const VERBS = /^(APPLY|DELETE)$/;
async function writes(): Promise<Record<(typeof RESOURCES)[number] | 'conflicts', number>> {
  const counts = await Promise.all(RESOURCES.map((resource) => requestCount(server, { resource, verb: VERBS })));
  const conflicts = await requestCount(server, { resource: new RegExp(`^(${RESOURCES.join('|')})$`), verb: VERBS, code: '409' });
  return { ...(Object.fromEntries(RESOURCES.map((r, i) => [r, counts[i]!])) as Record<(typeof RESOURCES)[number], number>), conflicts };
}

async function inBatches<T>(items: T[], n: number, fn: (x: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

// Node's flags for the operator process (BENCH_OPERATOR_NODE_FLAGS, space-separated; none by default).
const nodeFlags = (process.env.BENCH_OPERATOR_NODE_FLAGS ?? '').split(' ').filter(Boolean);
const operator = spawn(join(root, 'node_modules/.bin/node'), [...nodeFlags, join(root, 'cli/knbot.js'), 'operator', '--no-leader-elect', '--workers', '8', '--metrics-port', '0'], {
  env: { ...process.env, KUBECONFIG: server.kubeconfigPath },
  stdio: ['ignore', 'ignore', 'inherit'],
});
try {
  await new Promise((r) => setTimeout(r, 1500));
  const before = await writes();
  const t0 = performance.now();
  const bots = Array.from({ length: BOTS }, (_, i) => `bot-${i}`);
  const objects: [string, Record<string, unknown>][] = [];
  for (const b of bots) {
    objects.push(['bots', { apiVersion: 'knbot.dev/v1alpha1', kind: 'Bot', metadata: { name: b, namespace: ns }, spec: { image: `registry.local/${b}:1`, scaling: { minScale: 0, maxScale: 5 } } }]);
    for (let e = 0; e < EVENTS_PER_BOT; e++) {
      objects.push(['events', { apiVersion: 'knbot.dev/v1alpha1', kind: 'Event', metadata: { name: `${b}-ev-${e}`, namespace: ns, labels: { bot: b } }, spec: { types: [`dev.knbot.bench.${e}`] } }]);
    }
    objects.push(['eventbindings', { apiVersion: 'knbot.dev/v1alpha1', kind: 'EventBinding', metadata: { name: b, namespace: ns }, spec: { botRef: { name: b }, eventSelector: { matchLabels: { bot: b } } } }]);
  }
  // Knative's serving controller, played here: every Service the operator makes turns Ready.
  let stop = false;
  const serving = (async () => {
    while (!stop) {
      const list = (await api.listNamespacedCustomObject({ group: 'serving.knative.dev', version: 'v1', plural: 'services', namespace: ns })) as { items: Record<string, any>[] };
      await inBatches(list.items.filter((s) => s.status?.observedGeneration !== s.metadata.generation), 16, async (s) => {
        s.status = { observedGeneration: s.metadata.generation, url: `http://${s.metadata.name}.${ns}.example.com`, latestReadyRevisionName: `${s.metadata.name}-00001`, conditions: ['Ready', 'RoutesReady'].map((type) => ({ type, status: 'True', lastTransitionTime: new Date().toISOString() })) };
        await api.replaceNamespacedCustomObjectStatus({ group: 'serving.knative.dev', version: 'v1', plural: 'services', namespace: ns, name: s.metadata.name, body: s }).catch(() => undefined);
      });
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  await inBatches(objects, 16, ([plural, body]) => api.createNamespacedCustomObject({ ...KNBOT, plural, namespace: ns, body }));
  const applied = performance.now();
  let settled = 0;
  for (;;) {
    const b = (await api.listNamespacedCustomObject({ ...KNBOT, plural: 'bots', namespace: ns })) as { items: Record<string, any>[] };
    const eb = (await api.listNamespacedCustomObject({ ...KNBOT, plural: 'eventbindings', namespace: ns })) as { items: Record<string, any>[] };
    const ready = (o: Record<string, any>) => o.status?.observedGeneration === o.metadata.generation && o.status?.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True';
    settled = b.items.filter(ready).length + eb.items.filter((o) => ready(o) && o.status.triggers?.length === 1).length;
    if (settled === 2 * BOTS || performance.now() - t0 > 300_000) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const done = performance.now();
  stop = true;
  await serving;
  const after = await writes();
  const procStatus = readFileSync(`/proc/${operator.pid}/status`, 'utf8');
  const rss = Number(/VmHWM:\s+(\d+)/.exec(procStatus)?.[1] ?? 0) / 1024;
  const rssNow = Number(/VmRSS:\s+(\d+)/.exec(procStatus)?.[1] ?? 0) / 1024;
  const made = Object.fromEntries([...RESOURCES, 'conflicts' as const].map((k) => [k, after[k] - before[k]])) as typeof after;
  const operatorWrites = RESOURCES.reduce((n, r) => n + made[r], 0);
  const objectsMade = 2 * BOTS; // each Bot (its Service, its status) and each EventBinding (its Trigger, its status)
  console.log(`operator bench: ${BOTS} Bots, ${BOTS * EVENTS_PER_BOT} Events, ${BOTS} EventBindings, Node ${process.versions.node}${nodeFlags.length ? `, operator run with node ${nodeFlags.join(' ')}` : ''}`);
  console.log(`applied in ${((applied - t0) / 1000).toFixed(1)} s; every Bot and EventBinding Ready and observed ${((done - t0) / 1000).toFixed(1)} s after the first apply (${settled}/${2 * BOTS})`);
  console.log(`operator writes: ${operatorWrites} for ${objectsMade} Bots and EventBindings = ${(operatorWrites / objectsMade).toFixed(2)} per object (Services ${made.services}, Triggers ${made.triggers}, Bot status ${made.bots}, EventBinding status ${made.eventbindings}; ${made.conflicts} refused with 409)`);
  console.log(`operator RSS: peak ${rss.toFixed(0)} MB, ${rssNow.toFixed(0)} MB at steady state`);
} finally {
  operator.kill('SIGTERM');
  await server.stop();
}
