import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, exitOnSignals, intSetting, parseArgs } from './args.ts';
import { DevHost } from './dev/host.ts';
import { FakeLlm } from './fake-llm/server.ts';

const USAGE = `usage: knbot dev [dir] [--port N] [--host ADDR] [--state-dir DIR] [--no-watch]

Runs the whole system on this machine: the web chat page, the gateway, the local broker and every bot
under dir/functions (default: the current directory), each bot started on demand and scaled like a
Knative Service.

  --port N          the one port people use (default $PORT, else 8080): chat page /, /v1/ws, /v1/chat,
                    /v1/stream, /v1/events, /hooks/<platform>/<bot>, /dashboard, /metrics
  --host ADDR       address to bind (default 127.0.0.1; no token is asked unless KNBOT_GATEWAY_TOKENS is set)
  --state-dir DIR   where the broker keeps acknowledged events (default .knbot/ under dir)
  --no-watch        do not roll a bot's instances when its files change

environment:
  KNBOT_DEV_SCALE_DOWN_DELAY   idle time before an instance stops (e.g. 5s; default: the bot's, else 30s)
  KNBOT_DEV_MAX_INSTANCES      most instances of any one bot (default 4)
  KNBOT_GATEWAY_TOKENS         token=user,... : ask clients for a token
  KNBOT_GATEWAY_TICKET_SECRET  sign short-lived tickets (POST /v1/tickets)
  OPENAI_BASE_URL, OPENAI_API_KEY   the bots' language model; with neither set, a fake one (knbot fake-llm)
                               is started on a free port and the bots get its URL as OPENAI_BASE_URL`;

const KNBOT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export async function devCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(USAGE);
  const { positionals, flags } = parseArgs(argv, ['port', 'host', 'state-dir'], ['no-watch'], USAGE);
  if (positionals.length > 1) throw new UsageError(`unexpected argument ${positionals[1]}`, USAGE);
  const root = resolve(positionals[0] ?? '.');
  if (!existsSync(root)) throw new UsageError(`${root} does not exist`, USAGE);
  const port = intSetting(flags.get('port'), '--port', 0, 65535, USAGE) ?? intSetting(process.env.PORT, 'PORT', 0, 65535, USAGE) ?? 8080;
  const host = flags.get('host');
  const stateDir = resolve(typeof flags.get('state-dir') === 'string' ? (flags.get('state-dir') as string) : join(root, '.knbot'));
  const log = (msg: string, fields?: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', msg, ...fields })}\n`);
  // No model configured: the bots talk to a fake one, so that the LLM bot works with no key.
  const fakeLlm = process.env.OPENAI_BASE_URL || process.env.OPENAI_API_KEY ? undefined : new FakeLlm();
  const env = fakeLlm ? { ...process.env, OPENAI_BASE_URL: await fakeLlm.start(0, '127.0.0.1') } : process.env;
  const host_ = new DevHost({ root, knbotRoot: KNBOT_ROOT, port, ...(typeof host === 'string' ? { host } : {}), stateDir, env, watch: !flags.has('no-watch'), log, botOutput: (chunk) => process.stdout.write(chunk) });
  let urls;
  try {
    urls = await host_.start();
  } catch (err) {
    await host_.close().catch(() => {});
    await fakeLlm?.close();
    process.stderr.write(`knbot dev: ${(err as Error).message}\n`);
    process.exit(1);
  }
  const bots = host_.project.bots.map((b) => b.name).join(', ');
  const model = fakeLlm ? `  model      ${fakeLlm.url} (fake: set OPENAI_BASE_URL and OPENAI_API_KEY for a real one)\n` : '';
  process.stderr.write(`\nknbot dev: ${bots}\n  chat       ${urls.url}/\n  dashboard  ${urls.url}/dashboard\n  events     POST ${urls.url}/v1/events\n  state      ${stateDir}\n${model}\n`);
  log('dev host ready', { url: urls.url, bots: host_.project.bots.map((b) => b.name), stateDir, ...(fakeLlm ? { fakeLlm: fakeLlm.url } : {}) });
  exitOnSignals(() => host_.close().then(() => fakeLlm?.close()));
}
