import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { EventBindingResource, EventResource, ModelError } from '../../eventing/model/index.ts';
import { readModelYaml } from '../../eventing/model/index.ts';
import { parseGoDuration } from '../../knative/go-duration.ts';
import { type BotManifest, MAX_CONTAINER_CONCURRENCY, parseManifest } from '../../knative/manifest.ts';

/** How a bot scales locally: Knative's autoscaling settings, read from its manifest. */
export interface ScaleSettings {
  minScale: number;
  /** 0: no bound but the host's own (`maxInstances`). */
  maxScale: number;
  /** In-flight requests per instance the scaler aims at. */
  target: number;
  /** In-flight requests an instance takes before the rest wait (0: no limit). */
  containerConcurrency: number;
  /** How long an instance stays idle before it is stopped. */
  scaleDownDelayMs: number;
  /** Instances started when the bot first starts (Knative's initial-scale; at least minScale). */
  initialScale: number;
  timeoutMs: number;
}

export interface DevBot {
  name: string;
  dir: string;
  manifest: BotManifest;
  scale: ScaleSettings;
}

export interface DevProject {
  bots: DevBot[];
  events: EventResource[];
  bindings: EventBindingResource[];
  errors: ModelError[];
}

/** Knative's defaults where a manifest is silent (container-concurrency-target-percentage 70). */
const TARGET_PERCENT = 0.7;
const DEFAULT_TARGET = 100;

/** Local defaults and their environment overrides, for tests and impatient people. */
export interface DevScaleOverrides {
  /** `KNBOT_DEV_SCALE_DOWN_DELAY`: e.g. `2s`. Default: the manifest's, else 30 s (Knative's scale-to-zero grace period). */
  scaleDownDelayMs?: number;
  /** `KNBOT_DEV_MAX_INSTANCES`: the host's bound on any bot's instances. */
  maxInstances: number;
}

export function scaleOverridesFromEnv(env: NodeJS.ProcessEnv): DevScaleOverrides {
  const out: DevScaleOverrides = { maxInstances: 4 };
  if (env.KNBOT_DEV_SCALE_DOWN_DELAY) {
    const s = parseGoDuration(env.KNBOT_DEV_SCALE_DOWN_DELAY);
    if (s === undefined) throw new Error(`KNBOT_DEV_SCALE_DOWN_DELAY: not a duration: ${env.KNBOT_DEV_SCALE_DOWN_DELAY}`);
    out.scaleDownDelayMs = s * 1000;
  }
  if (env.KNBOT_DEV_MAX_INSTANCES) {
    const n = Number(env.KNBOT_DEV_MAX_INSTANCES);
    if (!Number.isInteger(n) || n < 1 || n > 64) throw new Error(`KNBOT_DEV_MAX_INSTANCES: an integer from 1 to 64, got ${env.KNBOT_DEV_MAX_INSTANCES}`);
    out.maxInstances = n;
  }
  return out;
}

export function scaleOf(m: BotManifest, overrides: DevScaleOverrides): ScaleSettings {
  const cc = m.bot.containerConcurrency ?? 0;
  const target = m.deploy.scale.target ?? (cc > 0 ? Math.max(1, cc * TARGET_PERCENT) : DEFAULT_TARGET * TARGET_PERCENT);
  const minScale = m.deploy.scale.min ?? 0;
  const maxScale = m.deploy.scale.max ?? 0;
  const delay = overrides.scaleDownDelayMs ?? (m.bot.scaleDownDelay !== undefined ? (parseGoDuration(m.bot.scaleDownDelay) ?? 30) * 1000 : 30_000);
  return {
    minScale,
    maxScale,
    target: cc > 0 ? Math.min(target, cc) : target,
    containerConcurrency: Math.min(cc, MAX_CONTAINER_CONCURRENCY),
    scaleDownDelayMs: delay,
    initialScale: Math.max(minScale, m.bot.initialScale ?? 0),
    timeoutMs: (m.bot.timeoutSeconds ?? 300) * 1000,
  };
}

/**
 * Reads a project: every `functions/<bot>/` (or `<dir>/<bot>/`) with a bot.yaml or func.yaml, and the
 * Events and EventBindings in any other YAML file beside them or at the top of `dir`.
 */
export function readProject(root: string, overrides: DevScaleOverrides): DevProject {
  const project: DevProject = { bots: [], events: [], bindings: [], errors: [] };
  const { bots, files } = projectLayout(root);
  for (const { dir, file } of bots) {
    const manifest = parseManifest(readFileSync(file, 'utf8'), file);
    project.bots.push({ name: manifest.name || basename(dir), dir, manifest, scale: scaleOf(manifest, overrides) });
  }
  const model = readModelFiles(files);
  project.events.push(...model.events);
  project.bindings.push(...model.bindings);
  project.errors.push(...model.errors);
  return project;
}

/**
 * A project's bot directories (`functions/<bot>/`, or `<root>/<bot>/` without a functions folder), each
 * with its bot.yaml or func.yaml, and every YAML file that may hold its Events and EventBindings: at the
 * top, beside the bots, and in each bot's directory.
 */
export function projectLayout(root: string): { bots: { dir: string; file: string }[]; files: string[] } {
  const base = existsSync(join(root, 'functions')) ? join(root, 'functions') : root;
  const files = [...new Set([root, base])].flatMap((d) => modelFiles(d));
  const bots: { dir: string; file: string }[] = [];
  for (const entry of readdirSync(base).sort()) {
    const dir = join(base, entry);
    if (!statSync(dir).isDirectory()) continue;
    const file = ['bot.yaml', 'func.yaml'].map((f) => join(dir, f)).find((f) => existsSync(f));
    if (!file) continue;
    bots.push({ dir, file });
    files.push(...modelFiles(dir));
  }
  return { bots, files };
}

/**
 * The YAML files knbot dev would read Events and EventBindings from for the bot in `botDir`: its
 * project's (`projectLayout`) when it is `<project>/functions/<bot>`, the conventional layout; else
 * the bot directory's own, since its parent may be any folder.
 */
export function botModelFiles(botDir: string): string[] {
  const base = dirname(botDir);
  return basename(base) === 'functions' ? projectLayout(dirname(base)).files : modelFiles(botDir);
}

/** The YAML files in `dir` that may hold Events and EventBindings: all but bot.yaml and func.yaml. */
export function modelFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f) && !/^(bot|func)\.ya?ml$/.test(f))
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile());
}

/** The Events and EventBindings of `files`, and what was wrong with any. */
export function readModelFiles(files: string[]): { events: EventResource[]; bindings: EventBindingResource[]; errors: ModelError[] } {
  const model = { events: [] as EventResource[], bindings: [] as EventBindingResource[], errors: [] as ModelError[] };
  for (const file of files) {
    const docs = readModelYaml(readFileSync(file, 'utf8'), file);
    model.events.push(...docs.events);
    model.bindings.push(...docs.bindings);
    model.errors.push(...docs.errors);
  }
  return model;
}
