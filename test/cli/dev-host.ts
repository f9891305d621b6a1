import type { ChildProcess } from 'node:child_process';
import { startKnbot } from '../pod.ts';

export interface DevProcess {
  url: string;
  child: ChildProcess;
  output(): string;
  state(): Promise<DevState>;
  chat(bot: string, text: string, conversation?: string): Promise<{ status: number; body: Record<string, unknown> }>;
  /** SIGKILL to the host and every instance it started (one process group). */
  killAll(): Promise<void>;
  stop(): Promise<void>;
}

export interface DevState {
  bots: { name: string; revision: string; instances: { pid: number; state: string; revision: string }[]; inFlight: number; held: number; coldStarts: { ms: number }[]; lastError?: string }[];
  pending: number;
  deadLetters: number;
}

/**
 * `knbot dev <project>` as a real process tree, in its own process group. Without `port` it binds one
 * the kernel picks (a port found free here could be taken before the host binds it) and the URL is
 * read from its ready line.
 */
export async function startDev(project: string, stateDir: string, env: Record<string, string> = {}, port = 0): Promise<DevProcess> {
  const { child, output, exited, ready } = await startKnbot(['dev', project, '--port', String(port), '--state-dir', stateDir], {
    ready: 'dev host ready',
    env: { KNBOT_DEV_SCALE_DOWN_DELAY: '1s', ...env },
    detached: true,
    timeoutMs: 30_000,
  });
  const url = String(ready.url);
  const killAll = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
  };
  return {
    url,
    child,
    output,
    state: async () => (await (await fetch(`${url}/dashboard/state`)).json()) as DevState,
    chat: async (bot, text, conversation = 'c') => {
      const res = await fetch(`${url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ bot, conversation, text }) });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    killAll,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => void killAll(), 10_000);
      await exited;
      clearTimeout(timer);
      // Whatever is left of the group (nothing, when the host drained its instances).
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {}
    },
  };
}
