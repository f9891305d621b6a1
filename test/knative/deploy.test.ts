// knbot deploy, status, traffic and delete as a user runs them (the real command, KUBECONFIG pointing
// at a real API server with Knative Serving's CRDs and Eventing's Trigger). The test plays Knative's
// controller: it writes the Service's status, Ready or failed, as the serving controller would.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ApiextensionsV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestApiServer, apiServerAvailable, installCrds, servingCrdFiles, startApiServer } from '../apiserver.ts';
import { waitFor } from '../pod.ts';
import { ROOT, sharedDir } from '../shared.ts';

const run = promisify(execFile);
const available = await apiServerAvailable();
const shared = available ? sharedDir() : undefined;
const svc = { group: 'serving.knative.dev', version: 'v1', plural: 'services' } as const;
const trg = { group: 'eventing.knative.dev', version: 'v1', plural: 'triggers' } as const;

describe.skipIf(!available || !shared)('knbot deploy / status / traffic / delete against a real API server', () => {
  let server: TestApiServer;
  let api: CustomObjectsApi;
  beforeAll(async () => {
    server = await startApiServer();
    await installCrds(server.kubeConfig, [...servingCrdFiles(shared!), join(shared!, 'knative', 'eventing', 'trigger.yaml')]);
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

  const triggerNames = async (namespace: string) =>
    (((await api.listNamespacedCustomObject({ ...trg, namespace })) as { items: { metadata: { name: string } }[] }).items.map((t) => t.metadata.name)).sort();

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
    // Its default Trigger: messages for echo on the default Broker, to the Service.
    expect(res.stdout).toContain('trigger ns-a/echo-default applied (broker default)');
    const trigger = (await api.getNamespacedCustomObject({ ...trg, namespace: 'ns-a', name: 'echo-default' })) as Record<string, any>;
    expect(trigger.metadata.labels).toEqual({ 'knbot.dev/bot': 'echo', 'app.kubernetes.io/managed-by': 'knbot' });
    expect(trigger.spec).toMatchObject({ broker: 'default', filters: [{ exact: { chatbot: 'echo' } }, { not: {} }], subscriber: { ref: { kind: 'Service', name: 'echo' } } });
    expect(trigger.metadata.managedFields.map((m: { manager: string }) => m.manager)).toContain('knbot');
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

    const deleted = await knbot('delete', 'echo', '--namespace', 'ns-a');
    expect(deleted.stdout).toContain('ns-a/echo deleted');
    expect(deleted.stdout).toContain('trigger ns-a/echo-default deleted');
    expect(await triggerNames('ns-a')).toEqual(['slow-default']);
    const again = await knbot('delete', 'echo', '--namespace', 'ns-a');
    expect([again.code, again.stdout.trim()]).toEqual([1, 'ns-a/echo does not exist']);
    expect((await knbot('status', 'echo', '--namespace', 'ns-a')).code).toBe(1);
  });

  it('shows what would be applied with --dry-run, changing nothing', async () => {
    const res = await knbot('deploy', 'functions/echo', '--image', 'registry.local/echo:9', '--namespace', 'ns-dry', '--dry-run', '--output', 'json');
    expect(res.code, res.stderr).toBe(0);
    const [service, trigger, ...rest] = JSON.parse(res.stdout).items;
    expect(service.spec.template.spec.containers[0].image).toBe('registry.local/echo:9');
    expect([trigger.kind, trigger.metadata.name, rest]).toEqual(['Trigger', 'echo-default', []]);
    expect(await api.getNamespacedCustomObject({ ...svc, namespace: 'ns-dry', name: 'echo' }).then(() => 'exists', () => 'absent')).toBe('absent');
    expect(await triggerNames('ns-dry')).toEqual([]);
  });

  it("applies the Triggers of the bot's EventBindings, prunes those no longer rendered, and delete removes them", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'knbot-deploy-events-'));
    const events = join(dir, 'events.yaml');
    const questions = `apiVersion: knbot.dev/v1alpha1
kind: Event
metadata: { name: questions, labels: { bot: echo } }
spec: { types: [dev.knbot.chat.message.received] }
---
apiVersion: knbot.dev/v1alpha1
kind: EventBinding
metadata: { name: echo-chat }
spec: { botRef: { name: echo }, eventSelector: { matchLabels: { bot: echo } }, delivery: { retry: 3, backoffPolicy: exponential, backoffDelay: PT0.2S } }
`;
    const hello = `---
apiVersion: knbot.dev/v1alpha1
kind: Event
metadata: { name: hello, labels: { bot: echo } }
spec: { keywords: [hello], reply: { text: Hi! } }
`;
    // A Trigger of echo that the operator made (owned by an EventBinding, no knbot label): deploy leaves it alone.
    await api.createNamespacedCustomObject({
      ...trg, namespace: 'ns-t',
      body: {
        apiVersion: 'eventing.knative.dev/v1', kind: 'Trigger',
        metadata: { name: 'operators', labels: { 'knbot.dev/bot': 'echo', 'knbot.dev/binding': 'x' }, ownerReferences: [{ apiVersion: 'knbot.dev/v1alpha1', kind: 'EventBinding', name: 'x', uid: 'u-1', controller: true }] },
        spec: { broker: 'default', subscriber: { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'echo' } } },
      },
    });
    const deploy = (...more: string[]) => knbot('deploy', 'functions/echo', '--image', 'registry.local/echo:1', '--namespace', 'ns-t', '--timeout', '30', ...more);

    const [first] = await Promise.all([deploy(), controller('ns-t', 'echo', true)]);
    expect(first.code, first.stderr).toBe(0);
    expect(await triggerNames('ns-t')).toEqual(['echo-default', 'operators']);

    // Bound now: the binding's Trigger and its canned reply's replace the default one.
    writeFileSync(events, questions + hello);
    const bound = await deploy('--events', events);
    expect(bound.code, bound.stderr).toBe(0);
    expect(bound.stdout).toContain('trigger ns-t/echo-chat applied (broker default)');
    expect(bound.stdout).toContain('trigger ns-t/echo-chat-reply-hello applied (broker default)');
    expect(bound.stdout).toContain('trigger ns-t/echo-default deleted, no longer rendered');
    expect(await triggerNames('ns-t')).toEqual(['echo-chat', 'echo-chat-reply-hello', 'operators']);
    const chat = (await api.getNamespacedCustomObject({ ...trg, namespace: 'ns-t', name: 'echo-chat' })) as Record<string, any>;
    expect(chat.spec.delivery).toEqual({ retry: 3, backoffPolicy: 'exponential', backoffDelay: 'PT0.2S' });
    expect(chat.spec.filters.slice(0, 2)).toEqual([{ exact: { chatbot: 'echo' } }, { exact: { type: 'dev.knbot.chat.message.received' } }]);

    // One Event fewer, and no delivery settings: the redeploy converges.
    writeFileSync(events, questions.replace(', delivery: { retry: 3, backoffPolicy: exponential, backoffDelay: PT0.2S }', ''));
    const fewer = await deploy('--events', events);
    expect(fewer.code, fewer.stderr).toBe(0);
    expect(fewer.stdout).toContain('trigger ns-t/echo-chat-reply-hello deleted, no longer rendered');
    expect(await triggerNames('ns-t')).toEqual(['echo-chat', 'operators']);
    const after = (await api.getNamespacedCustomObject({ ...trg, namespace: 'ns-t', name: 'echo-chat' })) as Record<string, any>;
    expect(after.spec.delivery).toBeUndefined();
    expect(after.spec.filters).toEqual([{ exact: { chatbot: 'echo' } }, { exact: { type: 'dev.knbot.chat.message.received' } }]);

    // --dry-run says what it would delete, and deletes nothing.
    const dry = await deploy('--dry-run');
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toContain('knbot deploy: would delete trigger ns-t/echo-chat, no longer rendered');
    expect(await triggerNames('ns-t')).toEqual(['echo-chat', 'operators']);

    const deleted = await knbot('delete', 'echo', '--namespace', 'ns-t');
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toBe('ns-t/echo deleted\ntrigger ns-t/echo-chat deleted\n');
    expect(await triggerNames('ns-t')).toEqual(['operators']);
  });

  // Last: it takes the Trigger API away.
  it('on a cluster without Knative Eventing, applies nothing unless asked for the Service only', async () => {
    await server.kubeConfig.makeApiClient(ApiextensionsV1Api).deleteCustomResourceDefinition({ name: 'triggers.eventing.knative.dev' });
    await waitFor(async () => (await api.listNamespacedCustomObject({ ...trg, namespace: 'ns-n' }).then(() => false, (e: { code?: number }) => e.code === 404)) || undefined, 'the Trigger API to go');
    const refused = await knbot('deploy', 'functions/echo', '--image', 'registry.local/echo:1', '--namespace', 'ns-n', '--timeout', '30');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('knbot deploy: the cluster has no Knative Eventing Triggers (eventing.knative.dev/v1): install Knative Eventing, or deploy with --no-triggers');
    expect(await api.getNamespacedCustomObject({ ...svc, namespace: 'ns-n', name: 'echo' }).then(() => 'exists', () => 'absent')).toBe('absent');

    const [res] = await Promise.all([knbot('deploy', 'functions/echo', '--image', 'registry.local/echo:1', '--namespace', 'ns-n', '--timeout', '30', '--no-triggers'), controller('ns-n', 'echo', true)]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toBe('ns-n/echo is ready at http://echo.ns-n.example.com (revision echo-00001)\n');
    const deleted = await knbot('delete', 'echo', '--namespace', 'ns-n');
    expect([deleted.code, deleted.stdout]).toEqual([0, 'ns-n/echo deleted\n']);
  });
});
