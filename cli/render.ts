import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { dump } from 'js-yaml';
import type { EventBindingResource, EventResource, Trigger } from '../eventing/model/types.ts';
import { type BotManifest, ManifestValidationError, parseManifest } from '../knative/manifest.ts';
import { type KnativeService, RenderError, botImage, placeholderImage, renderService } from '../knative/render/service.ts';
import { renderTriggers } from '../knative/render/triggers.ts';
import { validateService } from '../knative/validate.ts';
import { UsageError, parseArgs } from './args.ts';
import { botModelFiles, readModelFiles } from './dev/project.ts';

const USAGE = `usage: knbot render <bot-dir> [--image IMAGE | --registry REGISTRY] [--namespace NS] [--broker NAME]
                    [--events FILE]... [--no-triggers] [--output yaml|json]

Prints what the bot deploys as: its Knative Service, checked against Knative's webhook rules, then its
Knative Triggers on the Broker (--broker, else bot.yaml's bot.broker, else "default"), as a YAML stream
(--output json: a List).
The Triggers are compiled from the Events and EventBindings that knbot dev reads for the bot (for
<project>/functions/<bot>: the YAML files at the project's top, in functions/ and in every bot's
directory; for a bot directory anywhere else, its own) and in each --events FILE, as the operator and
knbot dev compile them; a bot with no EventBinding gets its default Trigger (events whose chatbot is
its name, but not bot output).

The image is --image, else bot.yaml's image, else <registry>/<name>:latest from --registry,
$KNBOT_REGISTRY or bot.yaml's registry. With none, render shows a placeholder that cannot be pulled
and says so on stderr; knbot deploy refuses.`;

/** Flags of every command that renders a bot directory (render, deploy). */
export const BOT_FLAGS = ['image', 'registry', 'namespace', 'broker', 'events'] as const;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** How to render a bot directory: flags and environment, read once at the edge. */
export interface BotSettings {
  image?: string;
  registry?: string;
  namespace?: string;
  /** --broker; absent: bot.yaml's `bot.broker`, else `default`. */
  broker?: string;
  /** More files of Events and EventBindings (`--events`, repeatable). */
  eventFiles: string[];
  /** False with --no-triggers: the Service only. */
  triggers: boolean;
}

export interface RenderedBot {
  manifest: BotManifest;
  service: KnativeService;
  triggers: Trigger[];
  /** For stderr: things that render but are probably not what was meant. */
  warnings: string[];
  /** True when no image was given and the Service shows {@link placeholderImage}. */
  placeholder: boolean;
}

/** Every value of a flag that may repeat (parseArgs keeps only the last). */
export function repeated(argv: string[], name: string): string[] {
  const out: string[] = [];
  argv.forEach((a, i) => {
    if (a === `--${name}` && argv[i + 1] !== undefined) out.push(argv[i + 1]!);
    else if (a.startsWith(`--${name}=`)) out.push(a.slice(name.length + 3));
  });
  return out;
}

/** The settings of `argv`'s bot flags (parsed by parseArgs with {@link BOT_FLAGS}) and the environment. */
export function botSettings(argv: string[], flags: Map<string, string | true>, env: NodeJS.ProcessEnv, usage: string): BotSettings {
  const text = (name: string) => {
    const v = flags.get(name);
    return typeof v === 'string' ? v : undefined;
  };
  const broker = text('broker');
  if (broker !== undefined && !DNS1123_LABEL.test(broker)) throw new UsageError(`--broker ${broker}: a Broker's name is a DNS-1123 label (lower-case letters, digits and -)`, usage);
  const image = text('image');
  const registry = text('registry') ?? (env.KNBOT_REGISTRY || undefined);
  const namespace = text('namespace');
  return {
    ...(image ? { image } : {}),
    ...(registry ? { registry } : {}),
    ...(namespace ? { namespace } : {}),
    ...(broker ? { broker } : {}),
    eventFiles: repeated(argv, 'events'),
    triggers: !flags.has('no-triggers'),
  };
}

/**
 * Reads and renders a bot directory: its bot.yaml (or func.yaml), and the Events and EventBindings of
 * its project (as knbot dev reads them: `botModelFiles`) and of the --events files. With no image and
 * `placeholder`, the Service runs {@link placeholderImage}; without, that is a RenderError. Throws
 * UsageError, ManifestValidationError and RenderError for bad input.
 */
export function renderBotDir(dirArg: string, settings: BotSettings, usage: string, placeholder: boolean): RenderedBot {
  const dir = resolve(dirArg);
  const file = ['bot.yaml', 'func.yaml'].map((f) => join(dir, f)).find((f) => existsSync(f));
  if (!file) throw new UsageError(`${dirArg} has no bot.yaml (or func.yaml)`, usage);
  const manifest = parseManifest(readFileSync(file, 'utf8'), file);
  const chosen = { ...(settings.image ? { image: settings.image } : {}), ...(settings.registry ? { registry: settings.registry } : {}) };
  const given = botImage(manifest, chosen);
  const shown = !given && placeholder ? placeholderImage(manifest.name) : undefined;
  const image = given ?? shown;
  const howToSet = `give --image or --registry (or set $KNBOT_REGISTRY), or set image or registry in ${file}`;
  if (!image) throw new RenderError(`${manifest.name} has no image: ${howToSet}`);
  const service = renderService(manifest, { ...chosen, ...(image ? { image } : {}), ...(settings.namespace ? { namespace: settings.namespace } : {}) });
  const warnings: string[] = [];
  if (shown) {
    warnings.push(`${manifest.name} has no image, so the Service shows ${shown}, which cannot be pulled: ${howToSet}`);
  }
  let triggers: Trigger[] = [];
  if (settings.triggers) {
    const model = readModel([...botModelFiles(dir), ...settings.eventFiles], usage);
    const rendered = renderTriggers(manifest.name, { namespace: service.metadata.namespace, broker: settings.broker ?? manifest.bot.broker ?? 'default', ...model });
    triggers = rendered.triggers;
    warnings.push(...rendered.warnings);
  }
  return { manifest, service, triggers, warnings, placeholder: shown !== undefined };
}

/** The Events and EventBindings of the bot's project (as `knbot dev` reads them) and of each `--events` file. */
function readModel(files: string[], usage: string): { events: EventResource[]; bindings: EventBindingResource[] } {
  for (const file of files) if (!existsSync(file) || !statSync(file).isFile()) throw new UsageError(`--events ${file}: no such file`, usage);
  const { events, bindings, errors } = readModelFiles(files);
  if (errors.length) throw new RenderError(errors.map((e) => `${e.object}: ${e.field}: ${e.message}`).join('\n'));
  return { events, bindings };
}

/** Objects as a YAML stream (`---` between documents), or as a JSON List, the way kubectl prints several. */
export function formatObjects(objects: unknown[], output: 'yaml' | 'json'): string {
  if (output === 'json') return `${JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }, null, 2)}\n`;
  return objects.map((o) => dump(o, { noRefs: true, lineWidth: -1 })).join('---\n');
}

/** Writes a bad-input error, one `knbot <command>:` line per line, and exits 2. */
export function exitOnBadInput(command: string, e: unknown): never {
  if (e instanceof ManifestValidationError || e instanceof RenderError) {
    process.stderr.write(`knbot ${command}: ${e.message.split('\n').join(`\nknbot ${command}: `)}\n`);
    process.exit(2);
  }
  throw e;
}

export async function renderCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(USAGE);
  const { positionals, flags } = parseArgs(argv, [...BOT_FLAGS, 'output'], ['no-triggers'], USAGE);
  if (positionals.length !== 1) throw new UsageError(positionals.length ? 'render takes one bot directory' : 'render needs a bot directory', USAGE);
  const output = flags.get('output') ?? 'yaml';
  if (output !== 'yaml' && output !== 'json') throw new UsageError('--output is yaml or json', USAGE);
  let bot: RenderedBot;
  try {
    bot = renderBotDir(positionals[0]!, botSettings(argv, flags, process.env, USAGE), USAGE, true);
  } catch (e) {
    exitOnBadInput('render', e);
  }
  const problems = validateService(bot.service);
  if (problems.length) {
    process.stderr.write(problems.map((p) => `knbot render: ${p.path}: ${p.message}\n`).join(''));
    process.exit(1);
  }
  process.stderr.write(bot.warnings.map((w) => `knbot render: warning: ${w}\n`).join(''));
  process.stdout.write(formatObjects([bot.service, ...bot.triggers], output));
}
