import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort, waitFor } from './pod.ts';

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** SIGTERM, then waits for the process to exit. Nothing is kept: the server runs without persistence. */
  stop(): Promise<void>;
  /** Stops the server and starts a new, empty one on the same port (a Redis restart that lost its data). */
  restart(): Promise<void>;
}

/**
 * Debian's `redis-server`, or undefined when it is not installed. Under CI=true its absence is an
 * error: `.ci/run` installs it, and skipped Redis tests would pass silently.
 */
export function redisServerPath(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/sbin', '/usr/local/bin'];
  for (const dir of dirs) {
    const path = join(dir, 'redis-server');
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {}
  }
  if (process.env.CI === 'true') throw new Error('redis-server is not installed; CI needs it for the Redis store tests (apt-get install redis-server)');
  console.warn('skipping: redis-server is not installed, so the Redis store tests cannot run (apt-get install redis-server)');
  return undefined;
}

/** Starts a throwaway `redis-server` on a free loopback port and waits until it answers PING. */
export async function startRedis(bin = redisServerPath()): Promise<RedisServer> {
  if (!bin) throw new Error('redis-server is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'knbot-redis-'));
  // A free port can be taken between finding it and binding it: try another.
  let port = 0;
  let child: ChildProcess | undefined;
  for (let attempt = 1; !child; attempt++) {
    port = await freePort();
    try {
      child = await launch(bin, port, dir);
    } catch (err) {
      if (attempt === 3) throw err;
    }
  }
  const stop = async () => {
    if (!child) return;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
  };
  return {
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    stop: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    restart: async () => {
      await stop();
      child = await launch(bin, port, dir);
    },
  };
}

async function launch(bin: string, port: number, dir: string): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', dir, '--loglevel', 'warning'];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  try {
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}:\n${out}`);
        return ping(port);
      },
      `redis-server on port ${port} to answer PING`,
    );
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return child;
}

/** One inline PING on a fresh connection: true on `+PONG`. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d;
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}
