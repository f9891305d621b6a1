import { readFileSync } from 'node:fs';
import { serveCommand } from './serve.ts';
import { UsageError } from './args.ts';

const HELP = `usage: knbot <command> [options]

commands:
  serve <bot-dir>   run one bot as a Knative pod would: POST / (CloudEvents), POST /v1/chat,
                    /health/readiness, /health/liveness, /metrics on one port
  help              this text
  version           knbot's version

knbot serve --help lists its options.`;

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await serveCommand(rest);
      case 'version':
      case '--version':
        console.log(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);
        return;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(HELP);
        return;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`, HELP);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`knbot: ${err.message}\n\n${err.usage}\n`);
      process.exit(2);
    }
    throw err;
  }
}
