// The Bot, Event and EventBinding CRDs (knative/crds/) against a real API server (test/apiserver.ts):
// the valid examples are accepted with their defaults filled in, each invalid example is refused
// with the message its comment promises, /status is served, and the printer columns and short names
// are what `kubectl get` shows. Without a server, the examples are checked against knbot's own
// validation, so the CRD schemas and the TypeScript model agree.
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { RequestOptions } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiException, ApiextensionsV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { V1CustomResourceDefinition } from '@kubernetes/client-node';
import { CORE_SCHEMA, dump, loadAll } from 'js-yaml';
import { validateResource } from '../../eventing/model/validate.ts';
import { ManifestValidationError, parseManifest } from '../../knative/manifest.ts';
import { apiServerAvailable, installCrds, startApiServer } from '../apiserver.ts';
import type { TestApiServer } from '../apiserver.ts';
import { ROOT } from '../shared.ts';

const CRD_DIR = join(ROOT, 'knative', 'crds');
const EXAMPLES = join(ROOT, 'knative', 'examples');
const INVALID = join(EXAMPLES, 'invalid');
const crdFiles = ['bot', 'event', 'eventbinding'].map((k) => join(CRD_DIR, `${k}.yaml`));

type Obj = Record<string, unknown>;
interface Resource {
  apiVersion: string;
  kind: 'Bot' | 'Event' | 'EventBinding';
  metadata: { name: string; namespace?: string; generation?: number; labels?: Record<string, string> };
  spec: Obj;
  status?: Obj;
}

const PLURAL = { Bot: 'bots', Event: 'events', EventBinding: 'eventbindings' } as const;

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();
}

function documents(file: string): Resource[] {
  return loadAll(readFileSync(file, 'utf8'), { schema: CORE_SCHEMA }).filter((d) => d !== null && d !== undefined) as Resource[];
}

function crds(): V1CustomResourceDefinition[] {
  return crdFiles.flatMap((f) => loadAll(readFileSync(f, 'utf8'), { schema: CORE_SCHEMA }) as V1CustomResourceDefinition[]);
}

/** The `# message:` comment of an invalid example: the API server's answer, word for word. */
function promisedMessage(file: string): string | undefined {
  return /^# message: (.*)$/m.exec(readFileSync(file, 'utf8'))?.[1];
}

const validFiles = yamlFiles(EXAMPLES);
const validDocs = validFiles.flatMap((file) => documents(join(EXAMPLES, file)).map((doc) => ({ file, doc })));

interface InvalidCase {
  file: string;
  /** The field the API server names. */
  field: string;
  /** The part of its message that states the rule. */
  rule: RegExp;
  /** The field knbot's own validation names; undefined where it has no such rule. */
  ownField: string | undefined;
}

const invalidCases: InvalidCase[] = [
  { file: 'bot-min-scale-above-max.yaml', field: 'spec.scaling.maxScale', rule: /maxScale must be 0 \(no limit\) or at least minScale/, ownField: 'deploy.options.scale.max' },
  { file: 'bot-image-and-function.yaml', field: 'spec', rule: /exactly one of spec\.image and spec\.function must be set/, ownField: undefined },
  { file: 'bot-timeout-over-600.yaml', field: 'spec.timeouts.timeoutSeconds', rule: /should be less than or equal to 600/, ownField: 'bot.timeoutSeconds' },
  { file: 'event-matches-nothing.yaml', field: 'spec', rule: /at least one of platforms, types, keywords, filters/, ownField: 'spec' },
  { file: 'event-two-dialects.yaml', field: 'spec.filters[0]', rule: /exactly one dialect/, ownField: 'spec.filters[0]' },
  { file: 'binding-unknown-operator.yaml', field: 'spec.eventSelector.matchExpressions[0].operator', rule: /Unsupported value: "Equals"/, ownField: 'spec.eventSelector.matchExpressions[0].operator' },
  { file: 'binding-negative-retry.yaml', field: 'spec.delivery.retry', rule: /greater than or equal to 0/, ownField: 'spec.delivery.retry' },
];

function invalidDoc(file: string): Resource {
  const [doc, ...rest] = documents(join(INVALID, file));
  if (!doc || rest.length) throw new Error(`${file}: expected exactly one object`);
  return doc;
}

/**
 * A Bot's spec as the bot.yaml knative/manifest.ts reads (func.yaml names under deploy.options,
 * knbot's under bot:), so the manifest's checks can judge the same settings.
 */
function botManifestText(bot: Resource): string {
  const s = bot.spec as {
    image?: string;
    scaling?: Obj;
    timeouts?: Obj;
    resources?: Obj;
    env?: Obj[];
    websocket?: boolean;
    config?: Obj;
    channels?: Obj;
  };
  const pick = (from: Obj | undefined, names: Record<string, string>): Obj =>
    Object.fromEntries(Object.entries(names).filter(([k]) => from?.[k] !== undefined).map(([k, to]) => [to, from![k]]));
  return dump({
    name: bot.metadata.name,
    ...(s.image === undefined ? {} : { image: s.image }),
    run: { envs: s.env ?? [] },
    deploy: {
      options: {
        scale: pick(s.scaling, { minScale: 'min', maxScale: 'max', target: 'target', metric: 'metric', utilization: 'utilization' }),
        ...(s.resources === undefined ? {} : { resources: s.resources }),
      },
    },
    bot: {
      ...pick(s.scaling, {
        containerConcurrency: 'containerConcurrency',
        scaleDownDelay: 'scaleDownDelay',
        scaleToZeroRetention: 'scaleToZeroRetention',
        initialScale: 'initialScale',
        activationScale: 'activationScale',
      }),
      ...s.timeouts,
      ...pick(s as Obj, { websocket: 'websocket', config: 'config', channels: 'channels' }),
    },
  });
}

/** The fields knbot's own validation names for a document: validateResource, or the bot.yaml reader. */
function ownProblems(doc: Resource): string[] {
  if (doc.kind !== 'Bot') return validateResource(doc).map((e) => `${e.field}: ${e.message}`);
  try {
    parseManifest(botManifestText(doc), `${doc.metadata.name}/bot.yaml`);
    return [];
  } catch (err) {
    if (err instanceof ManifestValidationError) return err.problems.map((p) => `${p.field}: ${p.message}`);
    throw err;
  }
}

describe('knbot CRD files', () => {
  it.each(crds().map((crd) => [crd.spec.names.kind, crd] as const))('%s is knbot.dev/v1alpha1, served and stored, with status', (_kind, crd) => {
    expect(crd.spec.group).toBe('knbot.dev');
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([['v1alpha1', true, true]]);
    expect(crd.spec.versions[0]!.subresources).toEqual({ status: {} });
  });

  it.each(crds().map((crd) => [crd.spec.names.kind, crd] as const))('%s describes every property', (_kind, crd) => {
    const undocumented: string[] = [];
    const walk = (schema: Obj, path: string): void => {
      // The API server refuses anything but type on metadata: its schema is implicit.
      if (path !== '' && path !== '.metadata' && typeof schema.description !== 'string') undocumented.push(path);
      for (const [name, child] of Object.entries((schema.properties ?? {}) as Record<string, Obj>)) walk(child, `${path}.${name}`);
      if (schema.items) walk(schema.items as Obj, `${path}[]`);
      if (schema.additionalProperties && typeof schema.additionalProperties === 'object') walk(schema.additionalProperties as Obj, `${path}{}`);
    };
    walk(crd.spec.versions[0]!.schema!.openAPIV3Schema as Obj, '');
    expect(undocumented).toEqual([]);
  });
});

describe('the examples agree with knbot\'s own validation', () => {
  it.each(validDocs.map(({ file, doc }) => [`${file}: ${doc.kind}/${doc.metadata.name}`, doc] as const))('%s passes', (_name, doc) => {
    expect(ownProblems(doc)).toEqual([]);
  });

  it('has an invalid example for each case, and a case for each invalid example', () => {
    expect(invalidCases.map((c) => c.file).sort()).toEqual(yamlFiles(INVALID));
  });

  it.each(invalidCases.filter((c) => c.ownField !== undefined).map((c) => [c.file, c] as const))('%s fails on the same field', (_file, c) => {
    const problems = ownProblems(invalidDoc(c.file));
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.every((p) => p.startsWith(`${c.ownField}: `)), problems.join('\n')).toBe(true);
  });

  it.each(invalidCases.map((c) => [c.file, c] as const))('%s says which rule it breaks and what the API server answers', (_file, c) => {
    const text = readFileSync(join(INVALID, c.file), 'utf8');
    expect(text).toMatch(/^# Breaks: /m);
    expect(promisedMessage(join(INVALID, c.file))).toMatch(c.rule);
  });
});

// Only whether the pieces exist is decided here; the (possibly long) build runs in beforeAll.
const available = await apiServerAvailable();

describe.skipIf(!available)('knbot CRDs on a real API server', () => {
  // Namespaces are not served and NamespaceLifecycle is off: any name works.
  const namespace = 'knbot-crds-test';
  const group = 'knbot.dev';
  const version = 'v1alpha1';
  let server: TestApiServer | undefined;
  let objects: CustomObjectsApi;

  beforeAll(async () => {
    // The first run builds apiextensions-apiserver: minutes on a fresh machine.
    server = await startApiServer();
    await installCrds(server.kubeConfig, crdFiles);
    objects = server.kubeConfig.makeApiClient(CustomObjectsApi);
  }, 900_000);

  afterAll(async () => {
    await server?.stop();
  });

  const ref = (doc: Resource) => ({ group, version, namespace, plural: PLURAL[doc.kind] });

  function create(doc: Resource): Promise<Resource> {
    return objects.createNamespacedCustomObject({ ...ref(doc), body: doc }) as Promise<Resource>;
  }

  interface Cause {
    field?: string;
    message?: string;
  }

  async function refusal(promise: Promise<unknown>): Promise<{ code: number; message: string; causes: Cause[] }> {
    try {
      await promise;
    } catch (err) {
      if (!(err instanceof ApiException)) throw err;
      const body = (typeof err.body === 'string' ? JSON.parse(err.body) : err.body) as { message?: string; details?: { causes?: Cause[] } };
      // After a schema error (enum, required, type) the server skips the CEL rules and adds a cause
      // without a field saying so; it is in the message, not among the causes compared.
      const causes = (body.details?.causes ?? []).filter((c) => !c.message?.includes('some validation rules were not checked'));
      return { code: err.code, message: body.message ?? '', causes };
    }
    throw new Error('expected the API server to refuse');
  }

  /** A GET with the test client certificate, e.g. for the Table form kubectl asks for. */
  async function getJson(path: string, accept = 'application/json'): Promise<Obj> {
    const options: RequestOptions = { headers: { Accept: accept } };
    await server!.kubeConfig.applyToHTTPSOptions(options);
    return new Promise((resolve, reject) => {
      const req = request(`${server!.url}${path}`, { ...options, method: 'GET' }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text) as Obj) : reject(new Error(`GET ${path}: ${res.statusCode} ${text}`))));
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** What the CRDs' defaults add to an example's spec. */
  function withDefaults(doc: Resource): Obj {
    const spec = structuredClone(doc.spec);
    if (doc.kind === 'Bot') {
      spec.broker ??= 'default';
      spec.websocket ??= false;
      if (spec.scaling) (spec.scaling as Obj).metric ??= 'concurrency';
    }
    if (doc.kind === 'EventBinding') spec.ordering ??= 'none';
    return spec;
  }

  it.each(validDocs.map(({ file, doc }) => [`${file}: ${doc.kind}/${doc.metadata.name}`, doc] as const))(
    'accepts %s as written, with its defaults filled in',
    async (_name, doc) => {
      const created = await create(doc);
      expect(created.metadata.generation).toBe(1);
      // Also: nothing was pruned (nested filters are kept as written).
      expect(created.spec).toEqual(withDefaults(doc));
    },
  );

  it('fills in the defaults the examples rely on', async () => {
    const bot = documents(join(EXAMPLES, 'faq-bot.yaml'))[0]!;
    const back = (await objects.getNamespacedCustomObject({ ...ref(bot), name: 'faq' })) as Resource;
    expect(back.spec).toMatchObject({ broker: 'default', websocket: false, scaling: { metric: 'concurrency' } });
    const binding = documents(join(EXAMPLES, 'slack-binding.yaml')).find((d) => d.kind === 'EventBinding')!;
    const bound = (await objects.getNamespacedCustomObject({ ...ref(binding), name: binding.metadata.name })) as Resource;
    expect(bound.spec.ordering).toBe('none');
  });

  it.each(invalidCases.map((c) => [c.file, c] as const))('refuses %s with 422 and the message its comment gives', async (file, c) => {
    const err = await refusal(create(invalidDoc(file)));
    expect(err.code).toBe(422);
    expect(err.message).toMatch(c.rule);
    expect(err.message).toBe(promisedMessage(join(INVALID, file)));
    expect(err.causes.map((cause) => cause.field)).toEqual([c.field]);
  });

  const botWith = (name: string, spec: Obj): Resource => ({
    apiVersion: `${group}/${version}`,
    kind: 'Bot',
    metadata: { name },
    spec: { image: 'ghcr.io/acme/knbot-faq:1.4.0', ...spec },
  });

  it.each<[string, Obj, string, RegExp]>([
    ['neither image nor function', { image: undefined }, 'spec', /exactly one of spec\.image and spec\.function/],
    ['target above containerConcurrency', { scaling: { target: 20, containerConcurrency: 10 } }, 'spec.scaling.target', /target must not exceed containerConcurrency/],
    ['activationScale below minScale', { scaling: { minScale: 3, activationScale: 2 } }, 'spec.scaling.activationScale', /activationScale must be at least minScale/],
    ['activationScale above maxScale', { scaling: { maxScale: 4, activationScale: 5 } }, 'spec.scaling.activationScale', /activationScale must be at most maxScale/],
    ['activationScale of 1', { scaling: { activationScale: 1 } }, 'spec.scaling.activationScale', /greater than or equal to 2/],
    ['initialScale of 0', { scaling: { initialScale: 0 } }, 'spec.scaling.initialScale', /greater than or equal to 1/],
    ['utilization over 100', { scaling: { utilization: 101 } }, 'spec.scaling.utilization', /less than or equal to 100/],
    ['an unknown metric', { scaling: { metric: 'cpu' } }, 'spec.scaling.metric', /supported values: "concurrency", "rps"/],
    ['scaleDownDelay that is not a Go duration', { scaling: { scaleDownDelay: '5 minutes' } }, 'spec.scaling.scaleDownDelay', /should match/],
    ['scaleDownDelay over an hour', { scaling: { scaleDownDelay: '61m' } }, 'spec.scaling.scaleDownDelay', /must be at most 1h/],
    ['scaleDownDelay in part seconds', { scaling: { scaleDownDelay: '1500ms' } }, 'spec.scaling.scaleDownDelay', /must be whole seconds/],
    ['responseStartTimeoutSeconds above timeoutSeconds', { timeouts: { timeoutSeconds: 60, responseStartTimeoutSeconds: 90 } }, 'spec.timeouts.responseStartTimeoutSeconds', /responseStartTimeoutSeconds must not exceed timeoutSeconds/],
    ['idleTimeoutSeconds above timeoutSeconds', { timeouts: { timeoutSeconds: 60, idleTimeoutSeconds: 61 } }, 'spec.timeouts.idleTimeoutSeconds', /idleTimeoutSeconds must not exceed timeoutSeconds/],
    ['a reserved env name', { env: [{ name: 'K_SERVICE', value: 'x' }] }, 'spec.env[0].name', /PORT and K_\* are set by Knative/],
    ['a CPU that is not a quantity', { resources: { requests: { cpu: 'lots' } } }, 'spec.resources.requests.cpu', /should match/],
    // A rule on the root names no field (the server prints <nil>): the message names metadata.name.
    ['a name that is not a DNS-1035 label', { name: 'faq.v2' }, '<nil>', /<nil>: Invalid value: a Bot's name must be a DNS-1035 label/],
    ['a channel secret without secretKeyRef', { channels: { slack: { botToken: { env: 'SLACK_BOT_TOKEN' } } } }, 'spec.channels.slack.botToken.secretKeyRef', /Required value/],
  ])('refuses a Bot with %s', async (name, { name: objectName, ...spec }, field, rule) => {
    const err = await refusal(create(botWith(typeof objectName === 'string' ? objectName : name.replace(/[^a-z0-9]+/gi, '-').toLowerCase().slice(0, 50).replace(/-$/, ''), spec)));
    expect(err.code).toBe(422);
    expect(err.causes.map((cause) => cause.field)).toEqual([field]);
    expect(err.message).toMatch(rule);
  });

  it.each<[string, Obj]>([
    ['maxScale 0 (no limit) below minScale', { scaling: { minScale: 3, maxScale: 0, activationScale: 4 } }],
    ['target equal to containerConcurrency, and any target when it is 0', { scaling: { target: 10, containerConcurrency: 10 } }],
    ['a fractional target with no concurrency limit', { scaling: { target: 0.5, containerConcurrency: 0, metric: 'rps' } }],
    ['scaleDownDelay 1m30s and retention 0', { scaling: { scaleDownDelay: '1m30s', scaleToZeroRetention: '0' } }],
    ['scaleDownDelay 1.5m (whole seconds) and retention 1.5s', { scaling: { scaleDownDelay: '1.5m', scaleToZeroRetention: '1.5s' } }],
    ['a function instead of an image', { image: undefined, function: 'faq' }],
    ['quantities as numbers', { resources: { requests: { cpu: 1, memory: '128Mi' }, limits: { cpu: '1.5' } } }],
  ])('accepts a Bot with %s', async (name, spec) => {
    const created = await create(botWith(`ok-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase().slice(0, 40).replace(/-$/, '')}`, spec));
    expect(created.metadata.generation).toBe(1);
  });

  const event = (name: string, spec: Obj): Resource => ({ apiVersion: `${group}/${version}`, kind: 'Event', metadata: { name }, spec });
  const binding = (name: string, spec: Obj): Resource => ({
    apiVersion: `${group}/${version}`,
    kind: 'EventBinding',
    metadata: { name },
    spec: { botRef: { name: 'faq' }, eventSelector: {}, ...spec },
  });

  it.each<[string, Resource, string, RegExp]>([
    ['an Event with an upper-case keyword', event('upper-keyword', { keywords: ['Hello'] }), 'spec.keywords[0]', /should match/],
    ['an Event with a nested filter of two dialects', event('nested-two', { filters: [{ any: [{ exact: { type: 'a' }, cesql: 'true' }] }] }), 'spec.filters[0].any[0]', /exactly one dialect/],
    ['an Event with an empty any', event('empty-any', { filters: [{ any: [] }] }), 'spec.filters[0].any', /should have at least 1 items/],
    ['an Event filtering on an upper-case attribute', event('upper-attribute', { filters: [{ exact: { Type: 'a' } }] }), 'spec.filters[0].exact', /attribute names are lower-case letters and digits/],
    ['an Event with an empty reply', event('empty-reply', { types: ['t'], reply: { text: '' } }), 'spec.reply.text', /at least 1 chars long/],
    ['a binding without eventSelector', binding('no-selector', { eventSelector: undefined }), 'spec.eventSelector', /Required value/],
    ['a binding with In and no values', binding('in-no-values', { eventSelector: { matchExpressions: [{ key: 'a', operator: 'In' }] } }), 'spec.eventSelector.matchExpressions[0].values', /In needs at least one value/],
    ['a binding with Exists and values', binding('exists-values', { eventSelector: { matchExpressions: [{ key: 'a', operator: 'Exists', values: ['x'] }] } }), 'spec.eventSelector.matchExpressions[0].values', /Exists takes no values/],
    ['a binding with a bad label key', binding('bad-key', { eventSelector: { matchLabels: { 'a b': 'x' } } }), 'spec.eventSelector.matchLabels', /label keys are/],
    ['a binding with a zero backoffDelay', binding('zero-delay', { delivery: { backoffDelay: 'PT0S' } }), 'spec.delivery.backoffDelay', /positive ISO 8601 duration/],
    ['a binding with a Go-style timeout', binding('go-timeout', { delivery: { timeout: '30s' } }), 'spec.delivery.timeout', /positive ISO 8601 duration/],
    ['a binding with an empty deadLetterSink', binding('empty-sink', { delivery: { deadLetterSink: {} } }), 'spec.delivery.deadLetterSink', /needs a ref or a uri/],
    ['a binding with a relative dead-letter URI', binding('relative-sink', { delivery: { deadLetterSink: { uri: '/dead' } } }), 'spec.delivery.deadLetterSink.uri', /absolute URL/],
    ['an Event whose name has a dot', event('hello.v2', { types: ['t'] }), '<nil>', /an Event's name must be a DNS-1123 label/],
    ['a binding with an unknown ordering', binding('bad-ordering', { ordering: 'fifo' }), 'spec.ordering', /supported values: "none", "conversation"/],
  ])('refuses %s', async (_name, doc, field, rule) => {
    const err = await refusal(create(doc));
    expect(err.code).toBe(422);
    expect(err.causes.map((cause) => cause.field)).toEqual([field]);
    expect(err.message).toMatch(rule);
  });

  it.each<[string, Resource]>([
    ['a binding with a dead-letter URI relative to its ref', binding('relative-to-ref', { delivery: { deadLetterSink: { ref: { apiVersion: 'v1', kind: 'Service', name: 'dl' }, uri: '/dead' } } })],
    ['a binding with an absolute dead-letter URI and P1D timeout', binding('absolute-sink', { delivery: { deadLetterSink: { uri: 'http://dl.default.svc' }, timeout: 'P1D' } })],
    ['an Event with filters three deep', event('three-deep', { filters: [{ all: [{ not: { any: [{ suffix: { type: '.received' } }] } }] }] })],
  ])('accepts %s', async (_name, doc) => {
    const created = await create(doc);
    expect(created.spec).toEqual(withDefaults(doc));
  });

  // The status and printing tests below use the examples the first tests created (faq, hello,
  // faq-slack): tests in a file run in order.
  const applyStatus = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
  const ready = [{ type: 'Ready', status: 'True', reason: 'Ready', lastTransitionTime: '2026-01-02T03:04:05Z', observedGeneration: 1 }];
  const statuses: [Resource['kind'], string, Obj][] = [
    ['Bot', 'faq', { observedGeneration: 1, conditions: [...ready, { type: 'ServiceReady', status: 'True' }, { type: 'RoutesReady', status: 'True' }], url: 'http://faq.knbot-crds-test.example.com', latestReadyRevision: 'faq-00001' }],
    ['Event', 'hello', { observedGeneration: 1, conditions: ready }],
    ['EventBinding', 'faq-slack', { observedGeneration: 1, conditions: ready, boundEvents: ['slack-messages'], triggers: ['faq-slack-0'] }],
  ];

  it.each(statuses)('serves /status for a %s, without bumping its generation', async (kind, name, status) => {
    const where = { group, version, namespace, plural: PLURAL[kind], name };
    await objects.patchNamespacedCustomObjectStatus(
      { ...where, body: { apiVersion: `${group}/${version}`, kind, metadata: { name }, status }, fieldManager: 'knbot-operator', force: true },
      applyStatus,
    );
    const back = (await objects.getNamespacedCustomObject(where)) as Resource;
    expect(back.status).toEqual(status);
    expect(back.metadata.generation).toBe(1);
  });

  it('refuses a status whose condition is neither True, False nor Unknown', async () => {
    const err = await refusal(objects.patchNamespacedCustomObjectStatus(
      {
        group, version, namespace, plural: 'bots', name: 'faq',
        body: { apiVersion: `${group}/${version}`, kind: 'Bot', metadata: { name: 'faq' }, status: { conditions: [{ type: 'Ready', status: 'Yes' }] } },
        fieldManager: 'knbot-operator', force: true,
      },
      applyStatus,
    ));
    expect(err.code).toBe(422);
    expect(err.message).toMatch(/status\.conditions\[0\]\.status: Unsupported value: "Yes"/);
  });

  it.each<[Resource['kind'], string, string[]]>([
    ['Bot', 'kbot', ['Ready', 'Reason', 'URL', 'Age']],
    ['Event', 'kbev', ['Platforms', 'Types', 'Keywords', 'Reply', 'Age']],
    ['EventBinding', 'kbeb', ['Bot', 'Events', 'Ready', 'Ordering', 'Age']],
  ])('reads back the %s CRD with short name %s and its printer columns', async (kind, shortName, columns) => {
    const api = server!.kubeConfig.makeApiClient(ApiextensionsV1Api);
    const crd = await api.readCustomResourceDefinition({ name: `${PLURAL[kind]}.${group}` });
    expect(crd.spec.names.shortNames).toEqual([shortName]);
    expect(crd.spec.names.categories).toEqual(['knbot']);
    expect(crd.spec.versions[0]!.additionalPrinterColumns?.map((c) => c.name)).toEqual(columns);
    expect(crd.status?.acceptedNames?.shortNames).toEqual([shortName]);

    const discovery = (await getJson(`/apis/${group}/${version}`)) as { resources: { kind: string; name: string; shortNames?: string[]; categories?: string[] }[] };
    expect(discovery.resources.find((r) => r.name === PLURAL[kind])).toMatchObject({ kind, shortNames: [shortName], categories: ['knbot'] });
  });

  it.each<[Resource['kind'], string, Obj]>([
    ['Bot', 'faq', { Ready: 'True', URL: 'http://faq.knbot-crds-test.example.com' }],
    ['Event', 'hello', { Platforms: null, Types: '["dev.knbot.chat.message.received"]', Keywords: '["hello","hi"]', Reply: "Hello! Ask me anything about Acme's products." }],
    ['EventBinding', 'faq-slack', { Bot: 'faq', Events: '["slack-messages"]', Ready: 'True', Ordering: 'none' }],
  ])('prints a %s row with the columns kubectl get shows', async (kind, name, cells) => {
    const table = (await getJson(
      `/apis/${group}/${version}/namespaces/${namespace}/${PLURAL[kind]}?fieldSelector=metadata.name%3D${name}`,
      'application/json;as=Table;v=v1;g=meta.k8s.io',
    )) as { columnDefinitions: { name: string }[]; rows: { cells: unknown[] }[] };
    const names = table.columnDefinitions.map((c) => c.name);
    expect(table.rows).toHaveLength(1);
    const row = Object.fromEntries(names.map((n, i) => [n, table.rows[0]!.cells[i]]));
    expect(row).toMatchObject({ Name: name, ...cells });
    expect(row.Age).toMatch(/^\d+s$/);
  });
});
