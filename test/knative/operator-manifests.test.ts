import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../shared.ts';

const docs = loadAll(readFileSync(join(ROOT, 'knative/deploy/operator.yaml'), 'utf8')) as Record<string, any>[];
const rules = docs.filter((d) => d.kind === 'ClusterRole' || d.kind === 'Role').flatMap((d) => d.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]);
const allows = (group: string, resource: string, verb: string) => rules.some((r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb));

describe('the operator\'s deployment manifests', () => {
  it('grant no wildcard verb, resource or group', () => {
    for (const r of rules) for (const v of [...r.apiGroups, ...r.resources, ...r.verbs]) expect(v).not.toBe('*');
  });

  it.each([
    ['knbot.dev', 'bots', 'watch'],
    ['knbot.dev', 'eventbindings/status', 'patch'],
    ['serving.knative.dev', 'services', 'patch'],
    ['eventing.knative.dev', 'triggers', 'delete'],
    ['coordination.k8s.io', 'leases', 'update'],
  ])('let it %s %s: %s (what the controller does)', (group, resource, verb) => {
    expect(allows(group, resource, verb)).toBe(true);
  });

  it('do not let it delete what it does not own, or touch Secrets', () => {
    expect(allows('knbot.dev', 'bots', 'delete')).toBe(false);
    expect(allows('serving.knative.dev', 'services', 'delete')).toBe(false);
    expect(allows('', 'secrets', 'get')).toBe(false);
  });

  it("probe the operator where it serves them: /healthz and /readyz on its metrics port (knbot operator's default, 8080)", () => {
    const container = docs.find((d) => d.kind === 'Deployment')!.spec.template.spec.containers[0];
    expect(container.ports).toEqual([{ name: 'metrics', containerPort: 8080 }]);
    expect(container.command).not.toContain('--metrics-port');
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
  });
});

describe("the gateway's deployment manifests", () => {
  const gateway = loadAll(readFileSync(join(ROOT, 'knative/deploy/gateway.yaml'), 'utf8')) as Record<string, any>[];
  const trigger = gateway.find((d) => d.kind === 'Trigger')!;

  it('run knbot gateway as non-root on a read-only root, never scaled to zero', () => {
    const deployment = gateway.find((d) => d.kind === 'Deployment')!;
    expect(deployment.spec.replicas).toBeGreaterThanOrEqual(1);
    const container = deployment.spec.template.spec.containers[0];
    expect(container.command.slice(0, 3)).toEqual(['node', '/app/cli/knbot.js', 'gateway']);
    expect(container.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(deployment.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
  });

  it('subscribe the egress port to exactly the bot output types', async () => {
    const { EGRESS_TYPES } = await import('../../gateway/egress.ts');
    const { compileFilters } = await import('../../eventing/filters/index.ts');
    const matches = compileFilters(trigger.spec.filters);
    for (const type of EGRESS_TYPES) expect(matches({ specversion: '1.0', id: '1', source: '/x', type })).toBe(true);
    expect(matches({ specversion: '1.0', id: '1', source: '/x', type: 'dev.knbot.chat.message.received' })).toBe(false);
    const egress = gateway.find((d) => d.kind === 'Service' && d.metadata.name === trigger.spec.subscriber.ref.name)!;
    expect(egress.spec.ports[0].targetPort).toBe('egress');
  });
});

describe('the Deployments\' NODE_OPTIONS', () => {
  const deployments = ['operator.yaml', 'gateway.yaml'].flatMap((f) =>
    (loadAll(readFileSync(join(ROOT, 'knative/deploy', f), 'utf8')) as Record<string, any>[]).filter((d) => d.kind === 'Deployment'),
  );
  const options = deployments.flatMap((d) => (d.spec.template.spec.containers[0].env ?? []).filter((e: { name: string }) => e.name === 'NODE_OPTIONS').map((e: { value: string }) => e.value as string));

  it('are set on both, and Node takes them', () => {
    expect(options).toHaveLength(2);
    for (const value of options) {
      const run = spawnSync(process.execPath, ['-e', 'process.exit(0)'], { env: { ...process.env, NODE_OPTIONS: value }, encoding: 'utf8' });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
    }
  });
});
