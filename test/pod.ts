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

/** A `knbot` command running as a real process, with everything it wrote so far. */
export interface KnbotProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<unknown[]>;
  /** The fields of the JSON log line it wrote when ready. */
  ready: Record<string, unknown>;
}

/**
 * Starts `knbot <args>` as a real process and waits until it writes the JSON log line `ready` says
 * (`listening`, `gateway listening`…): servers bind port 0 and name their port there, since a port found
 * free here could be taken before they bind it.
 */
export async function startKnbot(
  args: string[],
  o: { ready: string; env?: Record<string, string>; cwd?: string; detached?: boolean; timeoutMs?: number },
): Promise<KnbotProcess> {
  const child = spawn(join(ROOT, 'node_modules', '.bin', 'node'), [join(ROOT, 'cli', 'knbot.js'), ...args], {
    cwd: o.cwd ?? ROOT,
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(o.detached ? { detached: true } : {}),
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = once(child, 'exit');
  const ready = await waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`knbot ${args[0]} exited with ${child.exitCode}:\n${out}`);
      return loggedLine(out, o.ready);
    },
    `knbot ${args[0]} to log "${o.ready}"`,
    o.timeoutMs,
  );
  return { child, output: () => out, exited, ready };
}

/**
 * Starts `knbot serve <dir>` as a real process, the way the container does, on a port it binds itself
 * (PORT=0), and waits for its liveness endpoint (readiness may be gated on a slow init; tests that need
 * it wait for it). The port is read from the pod's `listening` line, so the pod logs at info at least.
 */
export async function startPod(dir: string, env: Record<string, string> = {}, args: string[] = []): Promise<Pod> {
  const { child, output, exited, ready } = await startKnbot(['serve', dir, ...args], { ready: 'listening', env: { KNBOT_LOG_LEVEL: 'info', ...env, PORT: '0' } });
  const port = ready.port as number;
  const url = `http://127.0.0.1:${port}`;
  await waitFor(() => fetch(`${url}/health/liveness`).then((r) => r.ok, () => false), `knbot serve ${dir} to answer its liveness probe`);
  return {
    url,
    port,
    child,
    output,
    logs: () => output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

/**
 * The fields of the first JSON log line with message `msg` in `output`, once the process wrote it whole. A
 * line may follow another process's output that did not end its own line (knbot dev passes its bots'
 * output on), so the object is looked for from each `{` in the line.
 */
export function loggedLine(output: string, msg: string): Record<string, unknown> | undefined {
  const tag = `"msg":${JSON.stringify(msg)}`;
  for (const line of output.split('\n')) {
    const at = line.indexOf(tag);
    if (at < 0) continue;
    for (let from = line.lastIndexOf('{', at); from >= 0; from = line.lastIndexOf('{', from - 1)) {
      try {
        const v: unknown = JSON.parse(line.slice(from));
        if (v && typeof v === 'object') return v as Record<string, unknown>;
      } catch {}
      if (from === 0) break;
    }
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
