import type { IncomingMessage, ServerResponse } from 'node:http';
import { Instance } from './instance.ts';
import type { DevBot } from './project.ts';

const http = process.getBuiltinModule('node:http');

export interface ScalerOptions {
  root: string;
  /** Environment every instance gets (K_SINK and the like). */
  env: Record<string, string>;
  /** The host's bound on one bot's instances. */
  maxInstances: number;
  onColdStart?: (bot: string, ms: number) => void;
  /** How long an instance's init took, when its log says so (at log level info or debug). */
  onInitDuration?: (bot: string, ms: number) => void;
  /** Each instance's output, as it comes. */
  onOutput?: (chunk: Buffer) => void;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}

/** A request waiting for an instance, as Knative's activator holds one while a revision scales from zero. */
interface Held {
  req: IncomingMessage;
  res: ServerResponse;
  deadline: number;
}

export interface BotSnapshot {
  name: string;
  revision: string;
  instances: { pid: number | undefined; state: string; inFlight: number; revision: string; coldStartMs: number | undefined }[];
  inFlight: number;
  held: number;
  lastError: string | undefined;
  scale: DevBot['scale'];
}

const MAX_BACKOFF_MS = 30_000;

/**
 * One bot's instances, scaled as Knative's autoscaler and activator would (DESIGN §9): requests go to
 * the ready instance with the fewest in flight, never past `containerConcurrency`; with no room they
 * wait while instances start (from zero too), up to the bot's timeout; instances are added when in-flight
 * requests per instance pass `target`, up to `maxScale`; `minScale` are kept warm; an instance idle for
 * `scaleDownDelay` is drained. An instance that dies is replaced; one that cannot start backs off.
 */
export class BotScaler {
  readonly #o: ScalerOptions;
  #bot: DevBot;
  #revision = 1;
  #instances: Instance[] = [];
  #held: Held[] = [];
  #failures = 0;
  #retryAt = 0;
  #lastError: string | undefined;
  #stopping = false;
  readonly #stop = new AbortController();

  constructor(bot: DevBot, options: ScalerOptions) {
    this.#bot = bot;
    this.#o = options;
  }

  get name(): string {
    return this.#bot.name;
  }

  get #revisionName(): string {
    return `${this.#bot.name}-${String(this.#revision).padStart(5, '0')}`;
  }

  get #maxScale(): number {
    const max = this.#bot.scale.maxScale;
    return max === 0 ? this.#o.maxInstances : Math.min(max, this.#o.maxInstances);
  }

  /** Starts the warm pool (`minScale`, or `initialScale`). */
  start(): void {
    for (let i = 0; i < Math.max(this.#bot.scale.minScale, this.#bot.scale.initialScale); i++) this.#launch();
  }

  /** A request for the bot (from the broker): forwarded at once, or held until an instance has room. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    if (this.#stopping) return void res.writeHead(503, { 'retry-after': '1', 'content-length': '0' }).end();
    const target = this.#pick();
    if (target) return this.#forward(target, req, res);
    this.#held.push({ req, res, deadline: performance.now() + this.#bot.scale.timeoutMs });
    res.on('close', () => {
      const i = this.#held.findIndex((h) => h.res === res);
      if (i >= 0) this.#held.splice(i, 1);
    });
    this.#scale();
  }

  /** Runs every few hundred ms: scale-down, expired waits, replacements. */
  tick(): void {
    const now = performance.now();
    for (const h of this.#held.filter((h) => h.deadline <= now)) {
      this.#held.splice(this.#held.indexOf(h), 1);
      const body = JSON.stringify({ type: 'urn:knbot:problem:no_instance', status: 503, detail: `no instance of ${this.name} became ready in time${this.#lastError ? `: ${this.#lastError}` : ''}` });
      h.res.writeHead(503, { 'content-type': 'application/problem+json', 'retry-after': '1', 'content-length': String(Buffer.byteLength(body)) }).end(body);
    }
    this.#scale();
    const ready = this.#instances.filter((i) => i.state === 'ready');
    const idle = ready.filter((i) => i.inFlight === 0 && now - i.idleSince >= this.#bot.scale.scaleDownDelayMs);
    // One at a time, never under the warm pool, and not while requests wait.
    if (idle.length && this.#held.length === 0 && this.#live().length > this.#bot.scale.minScale) void this.#retire(idle[0]!);
  }

  /** A new revision (the bot's files changed): new instances up, then the old ones drained. */
  async roll(bot: DevBot): Promise<void> {
    this.#bot = bot;
    const old = this.#instances.filter((i) => i.state === 'ready' || i.state === 'starting');
    this.#revision++;
    this.#failures = 0;
    this.#retryAt = 0;
    const want = Math.max(old.length ? 1 : 0, Math.min(old.length, this.#maxScale), this.#bot.scale.minScale);
    const fresh = Array.from({ length: want }, () => this.#launch()).filter((i): i is Instance => i !== undefined);
    // The old revision keeps serving until the new one is up; if the new one cannot start, it stays.
    const started = await Promise.all(fresh.map(waitReady));
    if (fresh.length && !started.some(Boolean)) {
      this.#o.log('new revision did not start; keeping the old one', { bot: this.name, revision: this.#revisionName, error: this.#lastError });
      return;
    }
    await Promise.all(old.map((i) => this.#retire(i)));
  }

  snapshot(): BotSnapshot {
    return {
      name: this.name,
      revision: this.#revisionName,
      instances: this.#instances.map((i) => ({ pid: i.pid, state: i.state, inFlight: i.inFlight, revision: i.revision, coldStartMs: i.coldStartMs })),
      inFlight: this.#instances.reduce((n, i) => n + i.inFlight, 0),
      held: this.#held.length,
      lastError: this.#lastError,
      scale: this.#bot.scale,
    };
  }

  /** Drains every instance; waiting requests get 503 (the broker retries them after a restart). */
  async close(): Promise<void> {
    this.#stopping = true;
    this.#stop.abort();
    for (const h of this.#held.splice(0)) h.res.writeHead(503, { 'retry-after': '1', 'content-length': '0' }).end();
    await Promise.all(this.#instances.map((i) => i.drain()));
  }

  #live(): Instance[] {
    return this.#instances.filter((i) => (i.state === 'ready' || i.state === 'starting') && i.revision === this.#revisionName);
  }

  #pick(): Instance | undefined {
    const cc = this.#bot.scale.containerConcurrency;
    let best: Instance | undefined;
    for (const i of this.#instances) {
      if (i.state !== 'ready' || i.revision !== this.#revisionName || (cc > 0 && i.inFlight >= cc)) continue;
      if (!best || i.inFlight < best.inFlight) best = i;
    }
    return best;
  }

  /** Adds instances while demand per instance is over target (the KPA's desired count, without windows). */
  #scale(): void {
    if (this.#stopping) return;
    const live = this.#live();
    const demand = live.reduce((n, i) => n + i.inFlight, 0) + this.#held.length;
    const desired = Math.min(this.#maxScale, Math.max(this.#bot.scale.minScale, Math.ceil(demand / this.#bot.scale.target)));
    for (let n = live.length; n < desired; n++) if (!this.#launch()) break;
  }

  #launch(): Instance | undefined {
    if (this.#stopping || performance.now() < this.#retryAt) return undefined;
    const onInit = this.#o.onInitDuration;
    const inst = new Instance({
      bot: this.name,
      dir: this.#bot.dir,
      revision: this.#revisionName,
      root: this.#o.root,
      env: this.#o.env,
      ...(this.#o.onOutput ? { onOutput: this.#o.onOutput } : {}),
      ...(onInit ? { onInitDuration: (ms: number) => onInit(this.name, ms) } : {}),
    });
    this.#instances.push(inst);
    inst.start(this.#stop.signal).then(
      () => {
        this.#failures = 0;
        this.#lastError = undefined;
        this.#o.onColdStart?.(this.name, inst.coldStartMs!);
        this.#o.log('instance ready', { bot: this.name, revision: inst.revision, pid: inst.pid, coldStartMs: Math.round(inst.coldStartMs!) });
        this.#drainHeld();
      },
      (err: Error) => {
        this.#remove(inst);
        if (this.#stopping) return;
        this.#failures++;
        this.#lastError = err.message;
        const wait = Math.min(MAX_BACKOFF_MS, 500 * 2 ** (this.#failures - 1));
        this.#retryAt = performance.now() + wait;
        this.#o.log('instance failed to start', { bot: this.name, error: err.message, retryInMs: wait });
      },
    );
    inst.exited.then(({ code, signal }) => {
      // The exit already made its state `stopped`: whether the host asked for it tells a drain from a crash.
      if (inst.stopRequested || this.#stopping || !this.#instances.includes(inst)) return this.#remove(inst);
      if (inst.coldStartMs === undefined) return;
      this.#lastError = `instance ${inst.pid} exited (${signal ?? code}) while serving`;
      this.#o.log('instance died', { bot: this.name, pid: inst.pid, code, signal });
      this.#remove(inst);
      this.#scale();
    });
    return inst;
  }

  async #retire(inst: Instance): Promise<void> {
    if (inst.state === 'draining' || inst.state === 'stopped') return;
    this.#o.log('draining instance', { bot: this.name, pid: inst.pid, revision: inst.revision });
    await inst.drain();
    this.#remove(inst);
  }

  #remove(inst: Instance): void {
    const i = this.#instances.indexOf(inst);
    if (i >= 0) this.#instances.splice(i, 1);
    agents.get(inst.port)?.destroy();
    agents.delete(inst.port);
  }

  #drainHeld(): void {
    while (this.#held.length) {
      const target = this.#pick();
      if (!target) return;
      const h = this.#held.shift()!;
      this.#forward(target, h.req, h.res);
    }
  }

  /** Proxies one request to an instance; an instance that breaks off answers 502, which the broker retries. */
  #forward(inst: Instance, req: IncomingMessage, res: ServerResponse): void {
    inst.inFlight++;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      if (--inst.inFlight === 0) inst.idleSince = performance.now();
      this.#drainHeld();
    };
    const out = http.request({ host: '127.0.0.1', port: inst.port, method: req.method, path: req.url, headers: req.headers, agent: agentFor(inst.port) }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
      answer.pipe(res);
      answer.on('end', finish);
      answer.on('error', finish);
    });
    out.on('error', (err) => {
      finish();
      if (!res.headersSent) {
        const body = JSON.stringify({ type: 'urn:knbot:problem:instance_failed', status: 502, detail: `the instance broke off: ${err.message}` });
        res.writeHead(502, { 'content-type': 'application/problem+json', 'content-length': String(Buffer.byteLength(body)) }).end(body);
      } else res.destroy();
    });
    res.on('close', finish);
    req.pipe(out);
  }
}

const agents = new Map<number, InstanceType<typeof http.Agent>>();

function agentFor(port: number): InstanceType<typeof http.Agent> {
  let agent = agents.get(port);
  if (!agent) agents.set(port, (agent = new http.Agent({ keepAlive: true, maxSockets: 256 })));
  return agent;
}

function waitReady(inst: Instance): Promise<boolean> {
  return new Promise((resolve) => {
    const check = setInterval(() => {
      if (inst.state === 'ready' || inst.state === 'stopped') {
        clearInterval(check);
        resolve(inst.state === 'ready');
      }
    }, 20);
  });
}
