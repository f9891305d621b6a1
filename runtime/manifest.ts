import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CORE_SCHEMA, load } from 'js-yaml';
import { MAX_DEBOUNCE_MS, TURN_POLICIES, type TurnPolicy } from './config.ts';

/**
 * What the pod server reads from a bot's `bot.yaml` (func.yaml field names; knbot's own under `bot:`).
 * The full schema, for rendering and deploying, is knative/'s; this reads the part a running pod needs.
 */
export interface PodManifest {
  name: string;
  envs: { name: string; value: string }[];
  containerConcurrency?: number;
  timeoutSeconds?: number;
  maxBodyBytes?: number;
  /** `bot.websocket`: the pod takes direct WebSocket clients on `GET /v1/ws`. */
  websocket?: boolean;
  /** `bot.sessions`, checked as knative/manifest.ts checks it. */
  sessions: { turnPolicy?: TurnPolicy; debounceMs?: number };
  config: Record<string, unknown>;
}

export class ManifestError extends Error {
  readonly code = 'invalid_manifest';
  readonly file: string;
  readonly field: string;

  constructor(file: string, field: string, message: string) {
    super(`${file}: ${field}: ${message}`);
    this.name = 'ManifestError';
    this.file = file;
    this.field = field;
  }
}

const DNS1035 = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Reads `bot.yaml` (or a func project's `func.yaml`) from `dir`; a bot with neither is named after its folder. */
export async function readPodManifest(dir: string, fallbackName: string): Promise<PodManifest> {
  for (const file of ['bot.yaml', 'func.yaml']) {
    let text: string;
    try {
      text = await readFile(join(dir, file), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    return parsePodManifest(text, join(dir, file));
  }
  return { name: fallbackName, envs: [], sessions: {}, config: {} };
}

export function parsePodManifest(text: string, file: string): PodManifest {
  let doc: unknown;
  try {
    doc = load(text, { schema: CORE_SCHEMA, filename: file });
  } catch (e) {
    throw new ManifestError(file, '(document)', `not valid YAML: ${(e as Error).message}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new ManifestError(file, '(document)', 'must be a mapping');
  const m = doc as Record<string, unknown>;
  if (typeof m.name !== 'string' || !DNS1035.test(m.name)) {
    throw new ManifestError(file, 'name', 'must be a DNS-1035 label: lower-case letters, digits and -, starting with a letter, at most 63');
  }
  const envs: PodManifest['envs'] = [];
  const run = objectAt(m.run, file, 'run');
  const list = run.envs ?? [];
  if (!Array.isArray(list)) throw new ManifestError(file, 'run.envs', 'must be a list of {name, value}');
  list.forEach((e: unknown, i) => {
    const env = objectAt(e, file, `run.envs[${i}]`);
    if (typeof env.name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(env.name)) throw new ManifestError(file, `run.envs[${i}].name`, 'must be an environment variable name');
    if (env.value !== undefined && typeof env.value !== 'string') throw new ManifestError(file, `run.envs[${i}].value`, 'must be a string');
    envs.push({ name: env.name, value: (env.value as string | undefined) ?? '' });
  });
  const bot = objectAt(m.bot, file, 'bot');
  const config = objectAt(bot.config, file, 'bot.config');
  const sessions = objectAt(bot.sessions, file, 'bot.sessions');
  const turnPolicy = sessions.turnPolicy ?? undefined;
  if (turnPolicy !== undefined && !TURN_POLICIES.includes(turnPolicy as TurnPolicy)) {
    throw new ManifestError(file, 'bot.sessions.turnPolicy', `must be one of ${TURN_POLICIES.join(', ')}`);
  }
  const debounceMs = intAt(sessions.debounceMs, file, 'bot.sessions.debounceMs', 1, MAX_DEBOUNCE_MS);
  if (bot.websocket !== undefined && typeof bot.websocket !== 'boolean') throw new ManifestError(file, 'bot.websocket', 'must be true or false');
  return {
    name: m.name,
    envs,
    containerConcurrency: intAt(bot.containerConcurrency, file, 'bot.containerConcurrency', 0, 1000),
    timeoutSeconds: intAt(bot.timeoutSeconds, file, 'bot.timeoutSeconds', 1, 3600),
    maxBodyBytes: intAt(bot.maxBodyBytes, file, 'bot.maxBodyBytes', 1, 1 << 30),
    ...(typeof bot.websocket === 'boolean' ? { websocket: bot.websocket } : {}),
    sessions: {
      ...(turnPolicy === undefined ? {} : { turnPolicy: turnPolicy as TurnPolicy }),
      ...(debounceMs === undefined ? {} : { debounceMs }),
    },
    config,
  };
}

function objectAt(value: unknown, file: string, field: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new ManifestError(file, field, 'must be a mapping');
  return value as Record<string, unknown>;
}

function intAt(value: unknown, file: string, field: string, min: number, max: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ManifestError(file, field, `must be an integer from ${min} to ${max}`);
  }
  return value;
}
