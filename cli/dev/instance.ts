import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

const http = process.getBuiltinModule('node:http');

export type InstanceState = 'starting' | 'ready' | 'draining' | 'stopped';

export interface InstanceOptions {
  bot: string;
  dir: string;
  revision: string;
  /** The project root: where node_modules/.bin/node and cli/knbot.js are. */
  root: string;
  /** The whole environment of the process (the host's, with K_SINK and the like). */
  env: Record<string, string>;
  /** How often readiness is asked while starting (Knative's queue-proxy polls every 50 ms). */
  probeMs?: number;
  /** Where the instance's output goes as it comes (its JSON log lines carry the bot's name). */
  onOutput?: (chunk: Buffer) => void;
  /** How long its init took: from its `listening` to its `ready` log line, by the times they carry. */
  onInitDuration?: (ms: number) => void;
}

/**
 * One bot instance: `knbot serve <dir>` as a child process on its own loopback port, what a pod is on
 * a cluster. Ready when its readiness endpoint says so (polled like queue-proxy does); stopped with
 * SIGTERM, so it drains as on Knative.
 */
export class Instance {
  readonly bot: string;
  readonly revision: string;
  readonly startedAt = performance.now();
  state: InstanceState = 'starting';
  port = 0;
  inFlight = 0;
  /** When it last had nothing in flight (for scale-down). */
  idleSince = performance.now();
  /** ms from spawn to ready. */
  coldStartMs: number | undefined;
  /** The host stopped it (drain or kill): its exit is no crash. */
  stopRequested = false;
  readonly #o: InstanceOptions;
  #child: ChildProcess | undefined;
  #output = '';
  readonly #exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #exited!: (how: { code: number | null; signal: NodeJS.Signals | null }) => void;

  constructor(options: InstanceOptions) {
    this.#o = options;
    this.bot = options.bot;
    this.revision = options.revision;
    this.#exit = new Promise((resolve) => (this.#exited = resolve));
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** The last lines it wrote, for a start-up failure's explanation. */
  get output(): string {
    return this.#output;
  }

  /** Resolves when the process exited (or never started). */
  get exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    return this.#exit;
  }

  /** Spawns the process and resolves once it is ready; rejects when it exits first. */
  async start(signal: AbortSignal): Promise<void> {
    // PORT=0: the pod binds a port the kernel picks and names it in its `listening` line. A port found
    // free here and handed over could be taken (by any outgoing connection) before the pod binds it.
    this.port = 0;
    const child = spawn(join(this.#o.root, 'node_modules', '.bin', 'node'), [join(this.#o.root, 'cli', 'knbot.js'), 'serve', this.#o.dir, '--host', '127.0.0.1'], {
      cwd: this.#o.dir,
      env: { ...this.#o.env, PORT: '0', K_SERVICE: this.bot, K_REVISION: this.revision, K_CONFIGURATION: this.bot },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child = child;
    // The pod logs `ready` the moment its init finished (at info, the level the host gives it): probe then
    // rather than at the next poll. Only a hint: the probe decides, and without the line polling finds it.
    let readyLogged = false;
    let wake: (() => void) | undefined;
    let partial = '';
    let listeningAt: number | undefined;
    const keep = (d: Buffer) => {
      this.#output = (this.#output + d.toString('utf8')).slice(-4000);
      this.#o.onOutput?.(d);
    };
    child.stdout!.on('data', (d: Buffer) => {
      keep(d);
      const lines = (partial + d.toString('utf8')).split('\n');
      partial = lines.pop()!.slice(-200);
      for (const line of lines) {
        if (line.includes('"msg":"listening"')) {
          const logged = parseLine(line);
          listeningAt = timeOf(logged);
          if (typeof logged?.port === 'number') this.port = logged.port;
          wake?.();
        }
        else if (line.includes('"msg":"ready"') && !readyLogged) {
          readyLogged = true;
          wake?.();
          const readyAt = timeOf(parseLine(line));
          if (listeningAt !== undefined && readyAt !== undefined && readyAt >= listeningAt) this.#o.onInitDuration?.(readyAt - listeningAt);
        }
      }
    });
    child.stderr!.on('data', keep);
    child.once('exit', (code, sig) => {
      this.state = 'stopped';
      this.#exited({ code, signal: sig });
    });
    const probeMs = this.#o.probeMs ?? 50;
    for (;;) {
      if (this.state === 'stopped') throw new Error(`exited while starting: ${lastLines(this.#output)}`);
      if (signal.aborted) {
        this.kill();
        throw new Error('start abandoned');
      }
      const loggedBefore = readyLogged;
      if (this.port !== 0 && (await probe(this.port))) break;
      // The line came while that probe was on its way: ask again now.
      if (readyLogged && !loggedBefore) continue;
      await new Promise<void>((r) => {
        const timer = setTimeout(r, probeMs);
        wake = () => {
          clearTimeout(timer);
          r();
        };
      });
      wake = undefined;
    }
    this.coldStartMs = performance.now() - this.startedAt;
    this.state = 'ready';
    this.idleSince = performance.now();
  }

  /** SIGTERM: the instance finishes what it has in flight (DESIGN §4.1) and exits. */
  async drain(): Promise<void> {
    if (this.state === 'stopped') return;
    this.stopRequested = true;
    this.state = 'draining';
    this.#child?.kill('SIGTERM');
    await this.exited;
  }

  kill(): void {
    this.stopRequested = true;
    if (this.#child && this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGKILL');
  }
}

function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/health/readiness', timeout: 100, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** What a failed start said: its error line when there is one, else its last lines. */
/** The `time` of a JSON log line, in ms since the epoch. */
function parseLine(line: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(line);
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function timeOf(line: Record<string, unknown> | undefined): number | undefined {
  const t = typeof line?.time === 'string' ? Date.parse(line.time) : Number.NaN;
  return Number.isNaN(t) ? undefined : t;
}

function lastLines(text: string): string {
  const lines = text.trim().split('\n');
  const error = lines.find((l) => /^\w*(Error|Exception)\b|"level":"error"/.test(l));
  return (error ?? lines.slice(-5).join('\n')) || '(no output)';
}

