import { existsSync, readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseTokens } from '../gateway/auth.ts';
import { Gateway } from '../gateway/server.ts';
import type { BotEntry } from '../gateway/sessions.ts';
import type { GatewayStore } from '../gateway/store.ts';
import { processRegistry } from '../eventing/metrics.ts';
import { readModelYaml } from '../eventing/model/index.ts';
import { type BotManifest, parseManifest } from '../knative/manifest.ts';
import { UsageError, exitOnSignals, intSetting, parseArgs } from './args.ts';
import { channelsFromManifests } from './channels.ts';

const USAGE = `usage: knbot gateway [<bot-dir>...] --broker URL [--bots NAME,...] [--port N] [--egress-port N]
                     [--namespace NS] [--redis URL] [--host ADDR] [--public-metrics]

The always-on gateway: WebSocket (/v1/ws) and SSE (/v1/stream) chat clients, POST /v1/chat, chat
webhooks (/hooks/<platform>/<bot>) and the chat page, on --port; on --egress-port, the endpoint a
Trigger on dev.knbot.chat.reply.send, .reply.chunk and .typing.start delivers bot output to.

  <bot-dir>        bots (their bot.yaml names them and their channels' secret variables)
  --bots a,b       more bots by name, with no channels
  --broker URL     where messages go: the Broker's ingress (or $K_SINK)
  --port N         public port (default $PORT, else 8080); --egress-port N (default 8081)
  --namespace NS   the bots' namespace (default $POD_NAMESPACE, else default)
  --redis URL      share sessions with other replicas through Redis (default $KNBOT_REDIS_URL)
  --events FILE    Events (YAML) whose canned replies it answers at /v1/replies/<namespace>/<event>,
                   the subscriber of the Triggers compiled for them
  --public-metrics serve GET /metrics on --port as well (or KNBOT_GATEWAY_PUBLIC_METRICS=true); by
                   default only --egress-port, cluster-internal, serves it: the public port faces the
                   internet; with KNBOT_METRICS_TOKEN set, only scrapes bearing it are answered

environment:
  KNBOT_GATEWAY_TOKENS         token=user,... accepted as bearer tokens
  KNBOT_GATEWAY_TICKET_SECRET  HMAC key of short-lived tickets (POST /v1/tickets hands them out)
  One of the two is required: this gateway always asks clients who they are.
  KNBOT_METRICS_TOKEN          GET /metrics (on either port) asks for Authorization: Bearer <it>
  KNBOT_<PLATFORM>_API_URL     a platform's API base URL (tests point it at a fake)`;

function readBot(dir: string): { name: string; manifest: BotManifest } {
  const file = ['bot.yaml', 'func.yaml'].map((f) => join(dir, f)).find((f) => existsSync(f));
  if (!file) throw new UsageError(`${dir} has no bot.yaml (or func.yaml)`, USAGE);
  const manifest = parseManifest(readFileSync(file, 'utf8'), file);
  return { name: manifest.name || basename(resolve(dir)), manifest };
}

export async function gatewayCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(USAGE);
  const { positionals, flags } = parseArgs(argv, ['broker', 'bots', 'port', 'egress-port', 'namespace', 'redis', 'host', 'events'], ['public-metrics'], USAGE);
  const env = process.env;
  const broker = (flags.get('broker') as string | undefined) ?? env.K_SINK;
  if (!broker || !URL.canParse(broker)) throw new UsageError('--broker URL (or K_SINK) is required: where messages go', USAGE);
  const namespace = (flags.get('namespace') as string | undefined) ?? env.POD_NAMESPACE ?? 'default';
  const withManifests = positionals.map((d) => readBot(resolve(d)));
  const named = String(flags.get('bots') ?? '').split(',').map((b) => b.trim()).filter(Boolean);
  const bots: BotEntry[] = [
    ...withManifests.map((b) => ({ name: b.name, namespace, ...(b.manifest.bot.timeoutSeconds ? { timeoutSeconds: b.manifest.bot.timeoutSeconds } : {}) })),
    ...named.map((name) => ({ name, namespace })),
  ];
  if (!bots.length) throw new UsageError('no bots: give bot directories or --bots', USAGE);
  const tokens = parseTokens(env.KNBOT_GATEWAY_TOKENS);
  const ticketSecret = env.KNBOT_GATEWAY_TICKET_SECRET;
  if (!tokens.size && !ticketSecret) throw new UsageError('set KNBOT_GATEWAY_TOKENS or KNBOT_GATEWAY_TICKET_SECRET: the gateway asks every client who it is', USAGE);
  const port = intSetting(flags.get('port'), '--port', 0, 65535, USAGE) ?? intSetting(env.PORT, 'PORT', 0, 65535, USAGE) ?? 8080;
  const egressPort = intSetting(flags.get('egress-port'), '--egress-port', 0, 65535, USAGE) ?? 8081;
  const host = (flags.get('host') as string | undefined) ?? '0.0.0.0';
  const redisUrl = (flags.get('redis') as string | undefined) ?? env.KNBOT_REDIS_URL;
  const publicMetrics = flags.has('public-metrics') || /^(1|true|yes|on)$/i.test(env.KNBOT_GATEWAY_PUBLIC_METRICS ?? '');
  const log = (msg: string, fields?: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', msg, ...fields })}\n`);
  const eventsFile = flags.get('events');
  const canned = new Map<string, { text: string }>();
  if (typeof eventsFile === 'string') {
    const docs = readModelYaml(readFileSync(eventsFile, 'utf8'), eventsFile);
    if (docs.errors.length) throw new UsageError(docs.errors.map((e) => `${e.object}: ${e.field}: ${e.message}`).join('\n'), USAGE);
    for (const e of docs.events) if (e.spec.reply) canned.set(`${e.metadata.namespace ?? namespace}/${e.metadata.name}`, { text: e.spec.reply.text });
  }
  let store: GatewayStore | undefined;
  if (redisUrl) {
    const { RedisGatewayStore } = await import('../gateway/redis-store.ts');
    store = new RedisGatewayStore({ redis: redisUrl, onError: (err) => log('redis error', { error: err.message }) });
  }
  const gateway = new Gateway({
    brokerUrl: broker,
    bots: () => bots,
    auth: { tokens, ...(ticketSecret ? { ticketSecret } : {}) },
    ...(store ? { store } : {}),
    channels: channelsFromManifests(withManifests, env),
    cannedReplies: (ns, event) => canned.get(`${ns}/${event}`),
    namespace,
    env,
    metrics: { registry: processRegistry(), public: publicMetrics, ...(env.KNBOT_METRICS_TOKEN ? { token: env.KNBOT_METRICS_TOKEN } : {}) },
    log,
  });
  const bound = await gateway.start(port, host, egressPort, host);
  log('gateway listening', { port: bound.port, egressPort: bound.egressPort, bots: bots.map((b) => b.name), store: store ? 'redis' : 'memory', metrics: publicMetrics ? 'both ports' : 'egress port' });
  exitOnSignals(() => gateway.close().then(() => store?.close()));
}
