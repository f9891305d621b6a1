import type { ServeConfig } from './config.ts';
import { type LoadedModule, loadBotModule } from './load.ts';
import { type Logger, createLogger } from './log.ts';
import { PodMetrics } from './metrics.ts';
import { PodServer } from './server.ts';
import { MemorySessionStore, type SessionStore } from './session-store.ts';

export interface RunningPod {
  server: PodServer;
  port: number;
  module: LoadedModule;
  /** Resolves when `init` has finished and readiness says 200; rejects when `init` failed. */
  initialized: Promise<void>;
}

/** Loads the bot in `dir` and serves it: listening first, `init` after, readiness gated on it. */
export async function startPod(dir: string, config: ServeConfig, store?: SessionStore): Promise<RunningPod> {
  const log = createLogger(config.log, config.revision ? { bot: config.name, revision: config.revision } : { bot: config.name });
  const [module, sessions] = await Promise.all([loadBotModule(dir), store ?? openSessionStore(config, log)]);
  // Read at scrape time, after the server exists.
  const metrics: PodMetrics = new PodMetrics(config.name, (): number => server.inflight);
  const server: PodServer = new PodServer(config, module, { log, metrics, sessions });
  const port = await server.start();
  log.info('listening', { port, module: module.kind, concurrency: config.containerConcurrency });
  const initialized = server.init();
  initialized.then(
    () => log.info('ready'),
    (err: unknown) => log.error('init failed', { err }),
  );
  return { server, port, module, initialized };
}

/**
 * In memory, unless KNBOT_REDIS_URL names a Redis shared by the bot's pods. ioredis is imported only
 * then: a pod without Redis does not load it at start-up.
 */
async function openSessionStore(config: ServeConfig, log: Logger): Promise<SessionStore> {
  const url = config.sessions.redisUrl;
  if (url === undefined) return new MemorySessionStore();
  const { RedisSessionStore } = await import('./redis-session-store.ts');
  return new RedisSessionStore({ redis: url, prefix: `knbot:session:${config.name}:`, holdPrefix: `knbot:turn:${config.name}:`, onError: (err) => log.warn('session store connection', { err }) });
}
