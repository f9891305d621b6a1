import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ROOT } from './shared.ts';

export interface Pod {
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** The JSON log lines so far. */
  logs(): Record<string, unknown>[];
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().on('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Waits until `check` holds, polling; fails with `what` after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Starts `knbot serve <dir>` as a real process, the way the container does, on a port it binds itself
 * (PORT=0; a port found free here could be taken before the pod binds it), and waits for its liveness
 * endpoint (readiness may be gated on a slow init; tests that need it wait for it). The port is read
 * from the pod's `listening` line, so the pod logs at info at least.
 */
export async function startPod(dir: string, env: Record<string, string> = {}, args: string[] = []): Promise<Pod> {
  const child = spawn(join(ROOT, 'node_modules', '.bin', 'node'), [join(ROOT, 'cli', 'knbot.js'), 'serve', dir, ...args], {
    cwd: ROOT,
    env: { ...process.env, KNBOT_LOG_LEVEL: 'info', ...env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = once(child, 'exit');
  const port = await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`knbot serve exited with ${child.exitCode}:\n${out}`);
      return loggedPort(out, 'listening');
    },
    `knbot serve ${dir} to listen`,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(() => fetch(`${url}/health/liveness`).then((r) => r.ok, () => false), `knbot serve ${dir} to answer its liveness probe`);
  return {
    url,
    port,
    child,
    output: () => out,
    logs: () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/** The port a JSON log line with message `msg` names, once the process wrote it. */
export function loggedPort(output: string, msg: string, field = 'port'): number | undefined {
  for (const line of output.split('\n')) {
    if (!line.startsWith('{') || !line.includes(`"msg":"${msg}"`)) continue;
    try {
      const v = (JSON.parse(line) as Record<string, unknown>)[field];
      if (typeof v === 'number') return v;
    } catch {}
  }
  return undefined;
}

export const fixture = (name: string) => join(ROOT, 'test', 'fixtures', 'bots', name);
export const ECHO = join(ROOT, 'functions', 'echo');

export const chatHeaders = (id = 'm1', extra: Record<string, string> = {}) => ({
  'ce-specversion': '1.0',
  'ce-id': id,
  'ce-source': '/test/T1/A1',
  'ce-type': 'dev.knbot.chat.message.received',
  'content-type': 'application/json',
  ...extra,
});

/** A response's JSON, typed loosely for assertions. */
export const jsonOf = (res: Response): Promise<any> => res.json();
