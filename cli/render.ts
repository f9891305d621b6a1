import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { dump } from 'js-yaml';
import { ManifestValidationError, parseManifest } from '../knative/manifest.ts';
import { RenderError, renderService } from '../knative/render/service.ts';
import { validateService } from '../knative/validate.ts';
import { UsageError, parseArgs } from './args.ts';

const USAGE = `usage: knbot render <bot-dir> [--image IMAGE] [--namespace NS] [--output yaml|json]

Prints the Knative Service a bot deploys as, checked against Knative's webhook rules.`;

export async function renderCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(USAGE);
  const { positionals, flags } = parseArgs(argv, ['image', 'namespace', 'output'], [], USAGE);
  if (positionals.length !== 1) throw new UsageError(positionals.length ? 'render takes one bot directory' : 'render needs a bot directory', USAGE);
  const output = flags.get('output') ?? 'yaml';
  if (output !== 'yaml' && output !== 'json') throw new UsageError('--output is yaml or json', USAGE);
  const dir = resolve(positionals[0]!);
  const file = ['bot.yaml', 'func.yaml'].map((f) => join(dir, f)).find((f) => existsSync(f));
  if (!file) throw new UsageError(`${positionals[0]} has no bot.yaml (or func.yaml)`, USAGE);
  try {
    const manifest = parseManifest(readFileSync(file, 'utf8'), file);
    const image = flags.get('image');
    const namespace = flags.get('namespace');
    const service = renderService(manifest, { ...(typeof image === 'string' ? { image } : {}), ...(typeof namespace === 'string' ? { namespace } : {}) });
    const problems = validateService(service);
    if (problems.length) {
      process.stderr.write(problems.map((p) => `knbot render: ${p.path}: ${p.message}\n`).join(''));
      process.exit(1);
    }
    process.stdout.write(output === 'json' ? `${JSON.stringify(service, null, 2)}\n` : dump(service, { noRefs: true, lineWidth: -1 }));
  } catch (e) {
    if (e instanceof ManifestValidationError || e instanceof RenderError) {
      process.stderr.write(`knbot render: ${e.message.split('\n').join('\nknbot render: ')}\n`);
      process.exit(2);
    }
    throw e;
  }
}
