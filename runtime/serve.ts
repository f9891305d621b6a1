import type { ServeConfig } from './config.ts';
import { type LoadedModule, loadBotModule } from './load.ts';
import { createLogger } from './log.ts';
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
export async function startPod(dir: string, config: ServeConfig, sessions: SessionStore = new MemorySessionStore()): Promise<RunningPod> {
  const log = createLogger(config.log, { bot: config.name });
  const module = await loadBotModule(dir);
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
