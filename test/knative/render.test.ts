import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BotManifest, ManifestValidationError, botImage, parseManifest, placeholderImage, renderService, validateService } from '../../knative/index.ts';
import { crdSchema, validateAgainst } from '../openapi.ts';
import { isValidated, type ServingOracle, servingOracleAvailable, startServingOracle } from '../oracle-serving.ts';
import { ROOT, sharedDir } from '../shared.ts';

const shared = sharedDir();
const schema = shared ? crdSchema(join(shared, 'knative/serving/service.yaml'), 'v1') : undefined;
const manifest = (yaml: string) => parseManifest(yaml, 'bot.yaml');

describe('renderService', () => {
  it('renders the echo bot to a Service that passes Knative\'s rules and the CRD schema', () => {
    const m = parseManifest(readFileSync(join(ROOT, 'functions/echo/bot.yaml'), 'utf8'), 'functions/echo/bot.yaml');
    const s = renderService(m, { image: 'registry.local/echo:1' });
    expect(validateService(s)).toEqual([]);
    if (schema) expect(validateAgainst(schema, s)).toEqual([]);
    expect(s.spec.template.spec).toMatchObject({ containerConcurrency: 100, timeoutSeconds: 30 });
    expect(s.spec.template.spec.containers[0]!.readinessProbe).toEqual({ httpGet: { path: '/health/readiness' } });
  });

  it('puts autoscaling on the revision template as strings, other annotations on the Service', () => {
    const s = renderService(
      manifest(`name: faq
image: r/faq:1
deploy:
  annotations: { autoscaling.knative.dev/window: "30s", example.com/team: bots }
  options: { scale: { min: 1, max: 5, target: 8, metric: concurrency, utilization: 70 } }
bot: { containerConcurrency: 10, scaleDownDelay: 5m, scaleToZeroRetention: 10m, initialScale: 2, activationScale: 2 }`),
    );
    expect(s.metadata.annotations).toEqual({ 'example.com/team': 'bots' });
    expect(s.spec.template.metadata.annotations).toEqual({
      'autoscaling.knative.dev/window': '30s',
      'autoscaling.knative.dev/min-scale': '1',
      'autoscaling.knative.dev/max-scale': '5',
      'autoscaling.knative.dev/metric': 'concurrency',
      'autoscaling.knative.dev/target': '8',
      'autoscaling.knative.dev/target-utilization-percentage': '70',
      'autoscaling.knative.dev/scale-down-delay': '5m',
      'autoscaling.knative.dev/scale-to-zero-pod-retention-period': '10m',
      'autoscaling.knative.dev/initial-scale': '2',
      'autoscaling.knative.dev/activation-scale': '2',
    });
    expect(validateService(s)).toEqual([]);
  });

  it('gives a WebSocket bot the whole revision timeout and no response-start or idle timeout', () => {
    const s = renderService(manifest('name: ws\nimage: r/ws:1\nbot: { websocket: true }'));
    expect(s.spec.template.spec).toMatchObject({ timeoutSeconds: 600, responseStartTimeoutSeconds: 0, idleTimeoutSeconds: 0 });
  });

  it('reads a plain func.yaml', () => {
    const m = manifest(`specVersion: 0.36.0
name: hello
runtime: node
registry: registry.local/me
created: 2026-01-01T00:00:00Z
run:
  envs: [{ name: GREETING, value: hi }]
deploy:
  namespace: bots
  options:
    scale: { min: 0, max: 3 }
    resources: { requests: { cpu: 100m, memory: 128Mi }, limits: { memory: 256Mi, concurrency: 20 } }`);
    const s = renderService(m);
    expect(s.metadata.namespace).toBe('bots');
    expect(s.spec.template.spec.containers[0]).toMatchObject({ image: 'registry.local/me/hello:latest', env: [{ name: 'GREETING', value: 'hi' }], resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } } });
    expect(s.spec.template.spec.containerConcurrency).toBe(20);
  });
});

describe('botImage (as Knative func picks the image)', () => {
  it.each([
    ['the image given, before all else', 'name: a\nimage: m/a:1\nregistry: m', { image: 'i/a:2', registry: 'r' }, 'i/a:2'],
    ["bot.yaml's image, before any registry", 'name: a\nimage: m/a:1\nregistry: m', { registry: 'r' }, 'm/a:1'],
    ["the registry given, before bot.yaml's", 'name: a\nregistry: m', { registry: 'r.example/team/' }, 'r.example/team/a:latest'],
    ["bot.yaml's registry", 'name: a\nregistry: m.example', {}, 'm.example/a:latest'],
    ['none', 'name: a', {}, undefined],
  ])('%s', (_, yaml, options, image) => {
    expect(botImage(manifest(yaml), options)).toBe(image);
  });

  it('refuses to render a Service without an image', () => {
    expect(() => renderService(manifest('name: a'))).toThrow(/no image/);
  });

  it('has a placeholder on a reserved domain that never resolves', () => {
    expect(placeholderImage('echo')).toMatch(/^[a-z0-9.-]+\.invalid\/echo:latest$/);
  });
});

describe('parseManifest rejects an invalid manifest, naming the field and the rule', () => {
  it.each([
    ['name: Bad_Name', 'name', /DNS-1035/],
    ['image: x', 'name', /required/],
    ['name: a\nbot: { containerConcurrency: 5000 }', 'bot.containerConcurrency', /0 to 1000/],
    ['name: a\nbot: { timeoutSeconds: 900 }', 'bot.timeoutSeconds', /1 to 600/],
    ['name: a\nbot: { scaleDownDelay: 2h }', 'bot.scaleDownDelay', /between 0s and 3600s/],
    ['name: a\nbot: { scaleDownDelay: 1.5s }', 'bot.scaleDownDelay', /whole seconds/],
    ['name: a\nbot: { scaleDownDelay: soon }', 'bot.scaleDownDelay', /duration/],
    ['name: a\nbot: { activationScale: 1 }', 'bot.activationScale', /2 to/],
    ['name: a\ndeploy: { options: { scale: { min: 3, max: 2 } } }', 'deploy.options.scale.max', /at least min/],
    ['name: a\ndeploy: { options: { scale: { metric: cpu } } }', 'deploy.options.scale.metric', /concurrency or rps/],
    ['name: a\ndeploy: { options: { scale: { target: 20 } } }\nbot: { containerConcurrency: 10 }', 'deploy.options.scale.target', /must not exceed bot.containerConcurrency/],
    ['name: a\ndeploy: { options: { resources: { requests: { cpu: lots } } } }', 'deploy.options.resources.requests.cpu', /quantity/],
    ['name: a\nrun: { envs: [{ name: K_SERVICE, value: x }] }', 'run.envs[0].name', /set by Knative/],
    ['name: a\nbot: { channels: { slack: { signingSecret: s3cr3t } } }', 'bot.channels.slack.signingSecret', /never the secret/],
    ['name: a\nbot: { channels: { slack: { token: { env: X } } } }', 'bot.channels.slack.token', /unknown field/],
    ['name: a\nbot: { colour: blue }', 'bot.colour', /unknown field/],
    ['name: a\nbot: { timeoutSeconds: 10, idleTimeoutSeconds: 20 }', 'bot.idleTimeoutSeconds', /must not exceed bot.timeoutSeconds/],
    ['name: [', '(document)', /not valid YAML/],
  ])('%j → %s', (yaml, field, rule) => {
    let err: unknown;
    try {
      manifest(yaml);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ManifestValidationError);
    const problem = (err as ManifestValidationError).problems.find((p) => p.field === field);
    expect(problem, JSON.stringify((err as ManifestValidationError).problems)).toBeDefined();
    expect(problem!.message).toMatch(rule);
    expect((err as Error).message).toContain(`bot.yaml: ${field}:`);
  });
});

describe('validateService (Knative\'s webhook rules and knbot\'s)', () => {
  const good = () => renderService(manifest('name: ok\nimage: r/ok:1\nbot: { containerConcurrency: 10 }'));
  it.each([
    ['an autoscaling annotation on the Service', (s: any) => (s.metadata.annotations = { 'autoscaling.knative.dev/min-scale': '1' }), 'metadata.annotations.autoscaling.knative.dev/min-scale'],
    ['a reserved port', (s: any) => (s.spec.template.spec.containers[0].ports[0].containerPort = 8012), 'spec.template.spec.containers[0].ports[0].containerPort'],
    ['two ports', (s: any) => s.spec.template.spec.containers[0].ports.push({ containerPort: 9000 }), 'spec.template.spec.containers[0].ports'],
    ['a reserved env name', (s: any) => (s.spec.template.spec.containers[0].env = [{ name: 'K_REVISION', value: 'x' }]), 'spec.template.spec.containers[0].env[0].name'],
    ['a startupProbe', (s: any) => (s.spec.template.spec.containers[0].startupProbe = { httpGet: { path: '/' } }), 'spec.template.spec.containers[0].startupProbe'],
    ['a readiness periodSeconds', (s: any) => (s.spec.template.spec.containers[0].readinessProbe.periodSeconds = 5), 'spec.template.spec.containers[0].readinessProbe.periodSeconds'],
    ['a pod securityContext', (s: any) => (s.spec.template.spec.securityContext = { runAsUser: 1 }), 'spec.template.spec.securityContext'],
    ['lifecycle hooks', (s: any) => (s.spec.template.spec.containers[0].lifecycle = { preStop: {} }), 'spec.template.spec.containers[0].lifecycle'],
    ['target above containerConcurrency', (s: any) => (s.spec.template.metadata.annotations['autoscaling.knative.dev/target'] = '20'), 'spec.template.metadata.annotations.autoscaling.knative.dev/target'],
    ['max-scale under min-scale', (s: any) => Object.assign(s.spec.template.metadata.annotations, { 'autoscaling.knative.dev/min-scale': '3', 'autoscaling.knative.dev/max-scale': '2' }), 'spec.template.metadata.annotations.autoscaling.knative.dev/max-scale'],
    ['an annotation that is not a string', (s: any) => (s.spec.template.metadata.annotations['autoscaling.knative.dev/min-scale'] = 1), 'spec.template.metadata.annotations.autoscaling.knative.dev/min-scale'],
    ['a timeout over the maximum', (s: any) => (s.spec.template.spec.timeoutSeconds = 601), 'spec.template.spec.timeoutSeconds'],
    ['privilege escalation', (s: any) => (s.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation = true), 'spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation'],
    ['traffic that does not add up', (s: any) => (s.spec.traffic = [{ latestRevision: true, percent: 90 }]), 'spec.traffic'],
  ])('rejects %s', (_, mutate, path) => {
    const s = good();
    expect(validateService(s)).toEqual([]);
    mutate(s);
    expect(validateService(s).map((p) => p.path)).toContain(path);
  });
});

/** Valid manifests, as many shapes as the schema allows. */
export const manifestArb: fc.Arbitrary<string> = fc
  .record(
    {
      name: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}[a-z0-9]$/),
      envs: fc.array(fc.record({ name: fc.stringMatching(/^[A-Z][A-Z0-9_]{0,8}$/).filter((n) => n !== 'PORT' && !n.startsWith('K_')), value: fc.string({ maxLength: 8 }) }), { maxLength: 3 }),
      min: fc.integer({ min: 0, max: 5 }),
      span: fc.integer({ min: 0, max: 20 }),
      cc: fc.integer({ min: 0, max: 1000 }),
      target: fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined }),
      metric: fc.constantFrom('concurrency', 'rps', undefined),
      utilization: fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }),
      timeout: fc.option(fc.integer({ min: 1, max: 600 }), { nil: undefined }),
      websocket: fc.boolean(),
      delay: fc.option(fc.constantFrom('0s', '30s', '5m', '1h'), { nil: undefined }),
      retention: fc.option(fc.constantFrom('0s', '1m', '90s'), { nil: undefined }),
      initial: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
      cpu: fc.option(fc.constantFrom('100m', '1', '250m'), { nil: undefined }),
      memory: fc.option(fc.constantFrom('128Mi', '1Gi'), { nil: undefined }),
    },
    { requiredKeys: ['name', 'envs', 'min', 'span', 'cc', 'websocket', 'metric'] },
  )
  .map((r) => {
    const max = r.span === 0 ? 0 : r.min + r.span;
    const target = r.target !== undefined && r.cc > 0 ? Math.min(r.target, r.cc) : r.target;
    const scale = { min: r.min, max, ...(r.metric ? { metric: r.metric } : {}), ...(target !== undefined ? { target } : {}), ...(r.utilization ? { utilization: r.utilization } : {}) };
    const bot: Record<string, unknown> = { containerConcurrency: r.cc, websocket: r.websocket };
    if (r.timeout !== undefined) bot.timeoutSeconds = r.timeout;
    if (r.delay) bot.scaleDownDelay = r.delay;
    if (r.retention) bot.scaleToZeroRetention = r.retention;
    if (r.initial) bot.initialScale = r.initial;
    const resources = r.cpu || r.memory ? { requests: { ...(r.cpu ? { cpu: r.cpu } : {}), ...(r.memory ? { memory: r.memory } : {}) } } : undefined;
    return JSON.stringify({ name: r.name, image: `registry.local/${r.name}:1`, run: { envs: r.envs }, deploy: { options: { scale, ...(resources ? { resources } : {}) } }, bot });
  });

describe('random valid manifests', () => {
  it('render to Services that pass knbot\'s rules and the CRD schema (500 cases)', () => {
    fc.assert(
      fc.property(manifestArb, (yaml) => {
        const s = renderService(parseManifest(yaml, 'bot.yaml') as BotManifest);
        expect(validateService(s)).toEqual([]);
        if (schema) expect(validateAgainst(schema, s)).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });
});

const oracle = await servingOracleAvailable();

describe.skipIf(!oracle)("Knative's own validation (the Go oracle)", () => {
  let knative: ServingOracle | undefined;
  beforeAll(async () => {
    knative = await startServingOracle();
  }, 600_000);
  afterAll(() => knative?.close());

  const ask = async (services: unknown[]) => {
    const answers = await knative!.ask(services.map((object, i) => ({ id: String(i), op: 'validate', object })));
    return answers.map((a) => {
      if (!isValidated(a)) throw new Error(`the oracle could not take a Service: ${JSON.stringify(a)}`);
      return a.errors;
    });
  };

  it('accepts every shipped function and 500 random valid manifests', async () => {
    const shipped = readdirSync(join(ROOT, 'functions')).map((f) =>
      renderService(parseManifest(readFileSync(join(ROOT, 'functions', f, 'bot.yaml'), 'utf8'), f), { image: `registry.local/${f}:1` }),
    );
    const random = fc.sample(manifestArb, { numRuns: 500, seed: 11 }).map((y) => renderService(parseManifest(y, 'bot.yaml')));
    const errors = await ask([...shipped, ...random]);
    expect(errors.map((e, i) => (e.length ? { i, e } : undefined)).filter(Boolean)).toEqual([]);
  });

  it('rejects, like knbot\'s own rules, what breaks Knative\'s', async () => {
    const base = () => renderService(manifest('name: ok\nimage: r/ok:1\nbot: { containerConcurrency: 10 }')) as any;
    const broken = [
      (s: any) => (s.metadata.annotations = { 'autoscaling.knative.dev/min-scale': '1' }),
      (s: any) => (s.spec.template.spec.containers[0].ports[0].containerPort = 8012),
      (s: any) => s.spec.template.spec.containers[0].ports.push({ containerPort: 9000 }),
      (s: any) => (s.spec.template.spec.containers[0].env = [{ name: 'K_REVISION', value: 'x' }]),
      (s: any) => (s.spec.template.spec.securityContext = { runAsUser: 1 }),
      (s: any) => (s.spec.template.spec.timeoutSeconds = 601),
      (s: any) => (s.spec.template.spec.containerConcurrency = 1001),
      (s: any) => Object.assign(s.spec.template.metadata.annotations, { 'autoscaling.knative.dev/min-scale': '3', 'autoscaling.knative.dev/max-scale': '2' }),
      (s: any) => (s.metadata.name = 'Bad_Name'),
      (s: any) => (s.spec.template.spec.containers[0].lifecycle = { preStop: { httpGet: { path: '/' } } }),
    ].map((mutate) => {
      const s = base();
      mutate(s);
      return s;
    });
    const theirs = await ask(broken);
    // The same field: one path contains the other, list indices aside (Knative names some lists without one).
    const bare = (path: string) => path.replace(/\[(\d+|\*)\]/g, '');
    const related = (a: string, b: string) => bare(a).startsWith(bare(b)) || bare(b).startsWith(bare(a));
    broken.forEach((s, i) => {
      const knative = theirs[i]!.map((e) => e.path);
      const ours = validateService(s).map((p) => p.path);
      expect(knative.length, JSON.stringify(s)).toBeGreaterThan(0);
      expect(ours.some((o) => knative.some((k) => related(o, k))), `knbot ${JSON.stringify(ours)} vs Knative ${JSON.stringify(knative)}`).toBe(true);
    });
  });
});
