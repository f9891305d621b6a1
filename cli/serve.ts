import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { DEFAULTS, MAX_DEBOUNCE_MS, type ServeConfig, TURN_POLICIES, type TurnPolicy } from '../runtime/config.ts';
import { BotLoadError } from '../runtime/load.ts';
import { parseLevel } from '../runtime/log.ts';
import { ManifestError, readPodManifest } from '../runtime/manifest.ts';
import { startPod } from '../runtime/serve.ts';
import { parseCeOverrides } from '../runtime/sink.ts';
import { UsageError, intSetting, parseArgs } from './args.ts';

const USAGE = `usage: knbot serve [<bot-dir>] [options]

Serves one bot the way its Knative pod runs it.

options:
  --port N          port to listen on (default $PORT, else ${DEFAULTS.port})
  --host ADDR       address to bind (default: all)
  --concurrency N   requests in flight before 503 (default bot.containerConcurrency, else ${DEFAULTS.containerConcurrency}; 0: no limit)

environment:
  PORT, K_SINK, K_CE_OVERRIDES, K_REVISION as Knative sets them (K_REVISION: a field of every log line)
  KNBOT_BOT_DIR                             the bot directory when none is given (container images)
  KNBOT_CONTAINER_CONCURRENCY, KNBOT_TIMEOUT_SECONDS, KNBOT_MAX_BODY_BYTES, KNBOT_BODY_TIMEOUT_MS,
  KNBOT_DRAIN_TIMEOUT_MS, KNBOT_LOG_LEVEL (debug|info|warn|error), KNBOT_LOG_REDACT (off shows text and secrets)
  KNBOT_TURN_POLICY (queue|debounce|interrupt|reject), KNBOT_DEBOUNCE_MS   override bot.sessions in bot.yaml
  KNBOT_REDIS_URL                           keep conversation state in Redis (redis://host:6379/0), shared by pods`;

/** Reads flags, environment and bot.yaml into one ServeConfig: the only place serve looks at either. */
async function readConfig(argv: string[], env: NodeJS.ProcessEnv): Promise<{ dir: string; config: ServeConfig }> {
  const { positionals, flags } = parseArgs(argv, ['port', 'host', 'concurrency'], [], USAGE);
  if (positionals.length > 1) throw new UsageError('serve takes one bot directory', USAGE);
  // A container image names its bot once, in KNBOT_BOT_DIR, and runs `knbot serve`.
  const given = positionals[0] ?? env.KNBOT_BOT_DIR;
  if (given === undefined) throw new UsageError('serve needs a bot directory (or KNBOT_BOT_DIR)', USAGE);
  const dir = resolve(given);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`${given} is not a directory`, USAGE);
  const manifest = await readPodManifest(dir, basename(dir));
  // func's run.envs: what the container would have been given, unless the environment already says.
  for (const e of manifest.envs) if (env[e.name] === undefined) env[e.name] = e.value;
  const setting = (flag: string | undefined, name: string, min: number, max: number) =>
    intSetting(flag === undefined ? undefined : flags.get(flag), `--${flag}`, min, max, USAGE) ?? intSetting(env[name], name, min, max, USAGE);
  const timeoutSeconds = setting(undefined, 'KNBOT_TIMEOUT_SECONDS', 1, 3600) ?? manifest.timeoutSeconds ?? DEFAULTS.timeoutSeconds;
  const turnPolicy = env.KNBOT_TURN_POLICY || manifest.sessions.turnPolicy || 'queue';
  if (!TURN_POLICIES.includes(turnPolicy as TurnPolicy)) throw new UsageError(`KNBOT_TURN_POLICY must be one of ${TURN_POLICIES.join(', ')}, got ${turnPolicy}`, USAGE);
  let ceOverrides: Record<string, string>;
  try {
    ceOverrides = parseCeOverrides(env.K_CE_OVERRIDES);
  } catch (e) {
    throw new UsageError((e as Error).message, USAGE);
  }
  return {
    dir,
    config: {
      name: manifest.name,
      port: setting('port', 'PORT', 0, 65535) ?? DEFAULTS.port,
      host: typeof flags.get('host') === 'string' ? (flags.get('host') as string) : undefined,
      containerConcurrency: setting('concurrency', 'KNBOT_CONTAINER_CONCURRENCY', 0, 100_000) ?? manifest.containerConcurrency ?? DEFAULTS.containerConcurrency,
      timeoutMs: timeoutSeconds * 1000,
      maxBodyBytes: setting(undefined, 'KNBOT_MAX_BODY_BYTES', 1, 1 << 30) ?? manifest.maxBodyBytes ?? DEFAULTS.maxBodyBytes,
      bodyTimeoutMs: setting(undefined, 'KNBOT_BODY_TIMEOUT_MS', 1, 3_600_000) ?? DEFAULTS.bodyTimeoutMs,
      drainTimeoutMs: setting(undefined, 'KNBOT_DRAIN_TIMEOUT_MS', 0, 3_600_000) ?? timeoutSeconds * 1000,
      sink: env.K_SINK || undefined,
      ceOverrides,
      source: `/bots/${manifest.name}`,
      revision: env.K_REVISION || undefined,
      config: manifest.config,
      websocket: manifest.websocket ?? false,
      log: { level: parseLevel(env.KNBOT_LOG_LEVEL), redact: env.KNBOT_LOG_REDACT !== 'off' },
      sessions: {
        turnPolicy: turnPolicy as TurnPolicy,
        debounceMs: setting(undefined, 'KNBOT_DEBOUNCE_MS', 1, MAX_DEBOUNCE_MS) ?? manifest.sessions.debounceMs ?? DEFAULTS.debounceMs,
        redisUrl: env.KNBOT_REDIS_URL || undefined,
      },
    },
  };
}

export async function serveCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  let dir: string;
  let config: ServeConfig;
  try {
    ({ dir, config } = await readConfig(argv, process.env));
  } catch (err) {
    if (err instanceof ManifestError) {
      process.stderr.write(`knbot serve: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  let pod;
  try {
    pod = await startPod(dir, config);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = err instanceof BotLoadError ? e.message : e.code === 'EADDRINUSE' ? `port ${config.port} is in use` : `cannot start: ${e.stack ?? e.message}`;
    process.stderr.write(`knbot serve: ${why}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      if (signal === 'SIGINT') process.exit(130);
      return;
    }
    stopping = true;
    pod.server.drain().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`knbot serve: drain failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('unhandledRejection', (reason) => process.stderr.write(`knbot serve: unhandled rejection in the bot: ${(reason as Error)?.message ?? String(reason)}\n`));
  // A bot whose init failed will never be ready: exit so the platform restarts it.
  pod.initialized.catch(() => process.exit(1));
}
