import { CORE_SCHEMA, load } from 'js-yaml';
import { parseGoDuration } from './go-duration.ts';

/**
 * A bot's manifest, `functions/<bot>/bot.yaml`: Knative func's `func.yaml` field names where func has
 * the field, knbot's own settings under `bot:`. A plain func.yaml is a valid manifest too.
 */
export interface BotManifest {
  name: string;
  runtime?: string;
  image?: string;
  registry?: string;
  namespace?: string;
  run: { envs: { name: string; value: string }[] };
  deploy: {
    namespace?: string;
    annotations: Record<string, string>;
    labels: Record<string, string>;
    scale: { min?: number; max?: number; metric?: 'concurrency' | 'rps'; target?: number; utilization?: number };
    resources: { requests: Record<string, string>; limits: Record<string, string> };
  };
  bot: {
    containerConcurrency?: number;
    timeoutSeconds?: number;
    responseStartTimeoutSeconds?: number;
    idleTimeoutSeconds?: number;
    scaleDownDelay?: string;
    scaleToZeroRetention?: string;
    initialScale?: number;
    activationScale?: number;
    websocket: boolean;
    maxBodyBytes?: number;
    config: Record<string, unknown>;
    channels: Record<string, Record<string, SecretSource>>;
    /** DESIGN §4.3; the pod reads the same fields (runtime/manifest.ts) and applies them. */
    sessions?: { turnPolicy?: TurnPolicy; debounceMs?: number };
    /** The Knative Broker its Triggers hang on (`render`/`deploy`; `--broker` wins); default `default`. */
    broker?: string;
  };
}

/** What a chat message does when its conversation has a turn running (DESIGN §4.3). */
export type TurnPolicy = 'queue' | 'debounce' | 'interrupt' | 'reject';
const TURN_POLICIES: readonly TurnPolicy[] = ['queue', 'debounce', 'interrupt', 'reject'];
/** The longest `bot.sessions.debounceMs`: a minute. */
export const MAX_DEBOUNCE_MS = 60_000;

/** Where a secret is, never the secret: an environment variable locally, a Secret key on a cluster. */
export type SecretSource = { env: string } | { secretKeyRef: { name: string; key: string } };

export interface ManifestProblem {
  field: string;
  message: string;
}

export class ManifestValidationError extends Error {
  readonly code = 'invalid_manifest';
  readonly file: string;
  readonly problems: readonly ManifestProblem[];

  constructor(file: string, problems: readonly ManifestProblem[]) {
    super(problems.map((p) => `${file}: ${p.field}: ${p.message}`).join('\n'));
    this.name = 'ManifestValidationError';
    this.file = file;
    this.problems = problems;
  }
}

const DNS1035 = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[kMGTPE]i?|m|)$/;
/** Knative's limit on containerConcurrency (container-concurrency-max-limit, default 1000). */
export const MAX_CONTAINER_CONCURRENCY = 1000;
/** Knative's max-revision-timeout-seconds default. */
export const MAX_REVISION_TIMEOUT_SECONDS = 600;
const CHANNEL_KEYS: Record<string, string[]> = {
  slack: ['signingSecret', 'botToken'],
  telegram: ['secretToken', 'botToken'],
  discord: ['publicKey', 'applicationId', 'botToken'],
  line: ['channelSecret', 'channelAccessToken'],
  whatsapp: ['appSecret', 'verifyToken', 'accessToken', 'phoneNumberId'],
  // Any CloudEvent at /hooks/cloudevents/<bot>; with a bearer token, only from senders that have it.
  cloudevents: ['bearerToken'],
};

type Obj = Record<string, unknown>;

class Reader {
  readonly problems: ManifestProblem[] = [];

  fail(field: string, message: string): undefined {
    this.problems.push({ field, message });
    return undefined;
  }

  object(v: unknown, field: string, known: string[]): Obj {
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) return this.fail(field, 'must be a mapping') ?? {};
    for (const k of Object.keys(v)) if (!known.includes(k)) this.fail(field ? `${field}.${k}` : k, `unknown field (known: ${known.join(', ')})`);
    return v as Obj;
  }

  string(v: unknown, field: string, re?: RegExp, rule?: string): string | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v === '') return this.fail(field, 'must be a non-empty string');
    if (re && !re.test(v)) return this.fail(field, rule ?? `must match ${re}`);
    return v;
  }

  int(v: unknown, field: string, min: number, max: number): number | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) return this.fail(field, `must be an integer from ${min} to ${max}`);
    return v;
  }

  number(v: unknown, field: string, min: number, max: number): number | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) return this.fail(field, `must be a number from ${min} to ${max}`);
    return v;
  }

  duration(v: unknown, field: string, maxSeconds: number, wholeSeconds: boolean): string | undefined {
    const s = this.string(v, field);
    if (s === undefined) return undefined;
    const seconds = parseGoDuration(s);
    if (seconds === undefined) return this.fail(field, 'must be a duration such as 30s, 5m or 1h');
    if (seconds < 0 || seconds > maxSeconds) return this.fail(field, `must be between 0s and ${maxSeconds}s`);
    if (wholeSeconds && !Number.isInteger(seconds)) return this.fail(field, 'must be whole seconds');
    return s;
  }

  stringMap(v: unknown, field: string): Record<string, string> {
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) return this.fail(field, 'must be a mapping of strings') ?? {};
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(v)) {
      if (x === undefined) continue;
      if (typeof x !== 'string') this.fail(`${field}.${k}`, 'must be a string (quote numbers)');
      else out[k] = x;
    }
    return out;
  }
}

/** Reads and checks a manifest. Throws ManifestValidationError listing every problem with its field path. */
export function parseManifest(text: string, file: string): BotManifest {
  let doc: unknown;
  try {
    doc = load(text, { schema: CORE_SCHEMA, filename: file });
  } catch (e) {
    throw new ManifestValidationError(file, [{ field: '(document)', message: `not valid YAML: ${(e as Error).message.split('\n')[0]}` }]);
  }
  const r = new Reader();
  const top = r.object(doc, '', ['specVersion', 'name', 'runtime', 'image', 'imageDigest', 'registry', 'namespace', 'created', 'invoke', 'build', 'run', 'deploy', 'bot']);
  const name = r.string(top.name, 'name', DNS1035, 'must be a DNS-1035 label: lower-case letters, digits and -, starting with a letter, at most 63');
  if (name === undefined && top.name === undefined) r.fail('name', 'is required');
  const run = r.object(top.run, 'run', ['envs', 'volumes']);
  const envs: BotManifest['run']['envs'] = [];
  if (run.envs !== undefined && !Array.isArray(run.envs)) r.fail('run.envs', 'must be a list of {name, value}');
  else
    ((run.envs as unknown[]) ?? []).forEach((e, i) => {
      const env = r.object(e, `run.envs[${i}]`, ['name', 'value']);
      const n = r.string(env.name, `run.envs[${i}].name`, ENV_NAME, 'must be an environment variable name');
      if (n === undefined && env.name === undefined) r.fail(`run.envs[${i}].name`, 'is required');
      if (n && (n === 'PORT' || n.startsWith('K_'))) r.fail(`run.envs[${i}].name`, 'PORT and K_* are set by Knative and may not be set here');
      if (env.value !== undefined && typeof env.value !== 'string') r.fail(`run.envs[${i}].value`, 'must be a string (quote numbers)');
      if (n) envs.push({ name: n, value: (env.value as string | undefined) ?? '' });
    });
  const deploy = r.object(top.deploy, 'deploy', ['namespace', 'remote', 'annotations', 'labels', 'options', 'serviceAccountName', 'image', 'subscriptions']);
  const options = r.object(deploy.options, 'deploy.options', ['scale', 'resources', 'readiness', 'liveness']);
  const scale = r.object(options.scale, 'deploy.options.scale', ['min', 'max', 'metric', 'target', 'utilization']);
  const resources = r.object(options.resources, 'deploy.options.resources', ['requests', 'limits']);
  const labels: Record<string, string> = {};
  if (Array.isArray(deploy.labels)) {
    deploy.labels.forEach((l, i) => {
      const o = r.object(l, `deploy.labels[${i}]`, ['key', 'value']);
      const k = r.string(o.key, `deploy.labels[${i}].key`);
      if (k) labels[k] = typeof o.value === 'string' ? o.value : '';
    });
  } else Object.assign(labels, r.stringMap(deploy.labels, 'deploy.labels'));
  const metric = scale.metric;
  if (metric !== undefined && metric !== 'concurrency' && metric !== 'rps') r.fail('deploy.options.scale.metric', 'must be concurrency or rps (the Knative Pod Autoscaler)');
  const requests = r.stringMap(r.object(resources.requests, 'deploy.options.resources.requests', ['cpu', 'memory']), 'deploy.options.resources.requests');
  const limitsIn = r.object(resources.limits, 'deploy.options.resources.limits', ['cpu', 'memory', 'concurrency']);
  // func writes limits.concurrency as a number: it is containerConcurrency, not a quantity.
  const concurrency = r.int(limitsIn.concurrency, 'deploy.options.resources.limits.concurrency', 0, MAX_CONTAINER_CONCURRENCY);
  const limits = r.stringMap({ ...limitsIn, concurrency: undefined }, 'deploy.options.resources.limits');
  delete limits.concurrency;
  if (concurrency !== undefined) limits.concurrency = String(concurrency);
  for (const [group, map] of [['requests', requests], ['limits', limits]] as const) {
    for (const [k, v] of Object.entries(map)) if (k !== 'concurrency' && !QUANTITY.test(v)) r.fail(`deploy.options.resources.${group}.${k}`, 'must be a Kubernetes quantity such as 250m or 256Mi');
  }

  const b = r.object(top.bot, 'bot', [
    'containerConcurrency', 'timeoutSeconds', 'responseStartTimeoutSeconds', 'idleTimeoutSeconds', 'scaleDownDelay', 'scaleToZeroRetention',
    'initialScale', 'activationScale', 'websocket', 'maxBodyBytes', 'config', 'channels', 'sessions', 'ordering', 'broker',
  ]);
  const manifest: BotManifest = {
    name: name ?? '',
    ...(typeof top.runtime === 'string' ? { runtime: top.runtime } : {}),
    ...(r.string(top.image, 'image') ? { image: top.image as string } : {}),
    ...(r.string(top.registry, 'registry') ? { registry: top.registry as string } : {}),
    ...(r.string(top.namespace, 'namespace', DNS1035, 'must be a DNS-1123 label') ? { namespace: top.namespace as string } : {}),
    run: { envs },
    deploy: {
      ...(r.string(deploy.namespace, 'deploy.namespace', DNS1035, 'must be a DNS-1123 label') ? { namespace: deploy.namespace as string } : {}),
      annotations: r.stringMap(deploy.annotations, 'deploy.annotations'),
      labels,
      scale: {
        ...opt('min', r.int(scale.min, 'deploy.options.scale.min', 0, 2 ** 31 - 1)),
        ...opt('max', r.int(scale.max, 'deploy.options.scale.max', 0, 2 ** 31 - 1)),
        ...(metric === 'concurrency' || metric === 'rps' ? { metric } : {}),
        ...opt('target', r.number(scale.target, 'deploy.options.scale.target', 0.01, 1e9)),
        ...opt('utilization', r.number(scale.utilization, 'deploy.options.scale.utilization', 1, 100)),
      },
      resources: { requests, limits },
    },
    bot: {
      ...opt('containerConcurrency', r.int(b.containerConcurrency, 'bot.containerConcurrency', 0, MAX_CONTAINER_CONCURRENCY)),
      ...opt('timeoutSeconds', r.int(b.timeoutSeconds, 'bot.timeoutSeconds', 1, MAX_REVISION_TIMEOUT_SECONDS)),
      ...opt('responseStartTimeoutSeconds', r.int(b.responseStartTimeoutSeconds, 'bot.responseStartTimeoutSeconds', 0, MAX_REVISION_TIMEOUT_SECONDS)),
      ...opt('idleTimeoutSeconds', r.int(b.idleTimeoutSeconds, 'bot.idleTimeoutSeconds', 0, MAX_REVISION_TIMEOUT_SECONDS)),
      ...opt('scaleDownDelay', r.duration(b.scaleDownDelay, 'bot.scaleDownDelay', 3600, true)),
      ...opt('scaleToZeroRetention', r.duration(b.scaleToZeroRetention, 'bot.scaleToZeroRetention', 3600, false)),
      ...opt('initialScale', r.int(b.initialScale, 'bot.initialScale', 1, 2 ** 31 - 1)),
      ...opt('activationScale', r.int(b.activationScale, 'bot.activationScale', 2, 2 ** 31 - 1)),
      websocket: b.websocket === undefined ? false : typeof b.websocket === 'boolean' ? b.websocket : (r.fail('bot.websocket', 'must be true or false'), false),
      ...opt('maxBodyBytes', r.int(b.maxBodyBytes, 'bot.maxBodyBytes', 1, 2 ** 30)),
      config: b.config === undefined ? {} : (r.object(b.config, 'bot.config', Object.keys((b.config as Obj) ?? {})) as Record<string, unknown>),
      channels: readChannels(r, b.channels),
      ...opt('sessions', b.sessions === undefined || b.sessions === null ? undefined : readSessions(r, b.sessions)),
      ...(r.string(b.broker, 'bot.broker', DNS1123_LABEL, "must be a Broker's name, a DNS-1123 label") ? { broker: b.broker as string } : {}),
    },
  };
  checkRelations(r, manifest);
  if (r.problems.length) throw new ManifestValidationError(file, r.problems);
  return manifest;
}

function readChannels(r: Reader, v: unknown): BotManifest['bot']['channels'] {
  const channels = r.object(v, 'bot.channels', Object.keys(CHANNEL_KEYS));
  const out: BotManifest['bot']['channels'] = {};
  for (const [platform, value] of Object.entries(channels)) {
    const keys = r.object(value, `bot.channels.${platform}`, CHANNEL_KEYS[platform] ?? []);
    out[platform] = {};
    for (const [key, source] of Object.entries(keys)) {
      const field = `bot.channels.${platform}.${key}`;
      if (typeof source === 'string') {
        r.fail(field, 'names where the secret is ({env: NAME} or {secretKeyRef: {name, key}}), never the secret itself');
        continue;
      }
      const s = r.object(source, field, ['env', 'secretKeyRef']);
      if (s.env !== undefined) {
        const env = r.string(s.env, `${field}.env`, ENV_NAME, 'must be an environment variable name');
        if (env) out[platform]![key] = { env };
      } else if (s.secretKeyRef !== undefined) {
        const ref = r.object(s.secretKeyRef, `${field}.secretKeyRef`, ['name', 'key']);
        const n = r.string(ref.name, `${field}.secretKeyRef.name`, DNS1035, 'must be a Secret name');
        const k = r.string(ref.key, `${field}.secretKeyRef.key`);
        if (n && k) out[platform]![key] = { secretKeyRef: { name: n, key: k } };
        else if (!n && !k) r.fail(`${field}.secretKeyRef`, 'needs name and key');
      } else r.fail(field, 'needs env or secretKeyRef');
    }
  }
  return out;
}

function readSessions(r: Reader, v: unknown): NonNullable<BotManifest['bot']['sessions']> {
  const s = r.object(v, 'bot.sessions', ['turnPolicy', 'debounceMs']);
  const policy = s.turnPolicy ?? undefined;
  if (policy !== undefined && !TURN_POLICIES.includes(policy as TurnPolicy)) r.fail('bot.sessions.turnPolicy', `must be one of ${TURN_POLICIES.join(', ')}`);
  return {
    ...opt('turnPolicy', TURN_POLICIES.includes(policy as TurnPolicy) ? (policy as TurnPolicy) : undefined),
    ...opt('debounceMs', r.int(s.debounceMs, 'bot.sessions.debounceMs', 1, MAX_DEBOUNCE_MS)),
  };
}

/** Rules between fields: Knative's (min ≤ max, activation within them) and knbot's (target ≤ containerConcurrency). */
function checkRelations(r: Reader, m: BotManifest): void {
  const { min, max, target } = m.deploy.scale;
  if (min !== undefined && max !== undefined && max !== 0 && max < min) r.fail('deploy.options.scale.max', `must be 0 (no limit) or at least min (${min})`);
  const a = m.bot.activationScale;
  if (a !== undefined && min !== undefined && a < min) r.fail('bot.activationScale', `must be at least deploy.options.scale.min (${min})`);
  if (a !== undefined && max !== undefined && max !== 0 && a > max) r.fail('bot.activationScale', `must be at most deploy.options.scale.max (${max})`);
  const cc = m.bot.containerConcurrency;
  if (target !== undefined && cc !== undefined && cc > 0 && target > cc) r.fail('deploy.options.scale.target', `must not exceed bot.containerConcurrency (${cc}): the soft target sits below the hard limit`);
  const t = m.bot.timeoutSeconds;
  for (const k of ['responseStartTimeoutSeconds', 'idleTimeoutSeconds'] as const) {
    const v = m.bot[k];
    if (v !== undefined && t !== undefined && v > t) r.fail(`bot.${k}`, `must not exceed bot.timeoutSeconds (${t})`);
  }
}

function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
