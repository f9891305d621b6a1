import { readFileSync } from 'node:fs';
import { UsageError } from './args.ts';

const HELP = `usage: knbot <command> [options]

commands:
  serve <bot-dir>   run one bot as a Knative pod would: POST / (CloudEvents), POST /v1/chat,
                    /health/readiness, /health/liveness, /metrics on one port
  dev [dir]         the whole system locally: chat page, gateway, broker, every bot scaled on demand
  gateway           run the gateway: WebSocket/SSE chat clients, POST /v1/chat, chat webhooks
  broker            run the local broker: durable ingress, Knative delivery semantics
  render <bot-dir>  print the bot's Knative Service, checked against Knative's rules, and its Triggers (YAML)
  deploy <bot-dir>  apply them to the cluster and wait until the Service is Ready
  status <bot>      the Service's conditions, URL, revisions and traffic
  traffic <bot>     split traffic for a canary (--tag canary=20) or --promote the latest
  delete <bot>      delete the Service and the Triggers deploy applied
  operator          reconcile Bot and EventBinding resources into Knative Services and Triggers
  fake-llm          a deterministic OpenAI-compatible model server (streaming, failures on demand)
  help              this text
  version           knbot's version

knbot serve --help lists its options.`;

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      // Each command loads only its own code: `serve` starts a pod, and its start-up time counts.
      case 'serve':
        return await (await import('./serve.ts')).serveCommand(rest);
      case 'dev':
        return await (await import('./dev.ts')).devCommand(rest);
      case 'gateway':
        return await (await import('./gateway.ts')).gatewayCommand(rest);
      case 'broker':
        return await (await import('./broker.ts')).brokerCommand(rest);
      case 'render':
        return await (await import('./render.ts')).renderCommand(rest);
      case 'deploy':
      case 'status':
      case 'traffic':
      case 'delete':
        return await (await import('./deploy.ts')).deployCommand(command, rest);
      case 'operator':
        return await (await import('./operator.ts')).operatorCommand(rest);
      case 'fake-llm':
        return await (await import('./fake-llm.ts')).fakeLlmCommand(rest);
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
