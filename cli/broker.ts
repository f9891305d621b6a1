import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type BrokerRoute, LocalBroker } from '../eventing/broker/index.ts';
import { validateFilters } from '../eventing/filters/index.ts';
import { processRegistry } from '../eventing/metrics.ts';
import { UsageError, exitOnSignals, intSetting, parseArgs } from './args.ts';

const USAGE = `usage: knbot broker --state-dir DIR --routes FILE [--port N] [--host ADDR] [--max-ttl N]

Runs the local broker on its own: CloudEvents POSTed to it are answered 202 once stored in DIR, then
delivered to every matching route with Knative's retry, backoff and dead-letter rules. GET /metrics
on the same port: ingress requests, deliveries by route and result, pending and dead deliveries.

  --routes FILE   JSON list of routes: [{id, filters, url | reply: {text}, delivery?, ordered?, deadLetterUrl?}]
                  (filters: a Trigger's spec.filters array, or {attributes: {...}}; reply: a canned
                  answer the broker gives itself)
  --port N        port to listen on (default $PORT, else 8090)
  --max-ttl N     knativebrokerttl given to new events (default 255)`;

function readRoutes(file: string): BrokerRoute[] {
  let routes: unknown;
  try {
    routes = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`--routes ${file}: ${(e as Error).message}`, USAGE);
  }
  if (!Array.isArray(routes)) throw new UsageError(`--routes ${file}: must be a JSON list of routes`, USAGE);
  routes.forEach((r: Record<string, unknown>, i) => {
    const where = `--routes ${file}: [${i}]`;
    if (typeof r?.id !== 'string' || r.id === '') throw new UsageError(`${where}.id: must be a non-empty string`, USAGE);
    const reply = r.reply as { text?: unknown } | undefined;
    if ((r.url === undefined) === (reply === undefined)) throw new UsageError(`${where}: needs a url or a reply {text}, not both`, USAGE);
    if (r.url !== undefined && (typeof r.url !== 'string' || !URL.canParse(r.url))) throw new UsageError(`${where}.url: must be an absolute URL`, USAGE);
    if (reply !== undefined && (typeof reply?.text !== 'string' || reply.text === '')) throw new UsageError(`${where}.reply.text: must be a non-empty string`, USAGE);
    const errors = validateFilters(r.filters ?? []);
    if (errors.length) throw new UsageError(`${where}.filters${errors[0]!.field}: ${errors[0]!.message}`, USAGE);
  });
  return routes as BrokerRoute[];
}

export async function brokerCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(USAGE);
  const { positionals, flags } = parseArgs(argv, ['state-dir', 'routes', 'port', 'host', 'max-ttl'], [], USAGE);
  if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`, USAGE);
  const stateDir = flags.get('state-dir');
  const routesFile = flags.get('routes');
  if (typeof stateDir !== 'string') throw new UsageError('--state-dir is required', USAGE);
  if (typeof routesFile !== 'string') throw new UsageError('--routes is required', USAGE);
  const port = intSetting(flags.get('port'), '--port', 0, 65535, USAGE) ?? intSetting(process.env.PORT, 'PORT', 0, 65535, USAGE) ?? 8090;
  const maxTtl = intSetting(flags.get('max-ttl'), '--max-ttl', 1, 255, USAGE);
  const host = flags.get('host');
  const broker = new LocalBroker({
    stateDir: resolve(stateDir),
    port,
    ...(typeof host === 'string' ? { host } : {}),
    routes: readRoutes(routesFile),
    ...(maxTtl !== undefined ? { maxTtl } : {}),
    registry: processRegistry(),
    log: (msg, fields) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', msg, ...fields })}\n`),
  });
  const bound = await broker.start();
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', msg: 'broker listening', port: bound, pending: broker.pending() })}\n`);
  exitOnSignals(() => broker.close());
}
