// npm run bench:gateway — the WebSocket gateway in a process of its own: (a) its RSS and heap holding
// 10,000 idle sockets; (b) message round trips gateway → broker → echo bot → gateway at 1,000 active
// clients, side by side in the same run with a bare `ws` echo server (the ceiling): same clients, same
// duration. Servers run pinned to CPU 0, the clients (this process) on CPU 1.
//   node bench/gateway.ts [--idle N] [--active N] [--warmup S] [--seconds S] [--rounds R] [--only idle|rtt]
//                         [--no-pin] [--cpu-prof DIR] [--min-ratio X] [--max-rss-mb M] [--gateway-flags 'FLAGS']
// The same file is the gateway's and the bare server's process (`--role gateway|bare`), driven over an
// IPC channel: the gateway's memory is read inside it after a forced GC (it runs with --expose-gc).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import WebSocket, { WebSocketServer } from 'ws';

const self = fileURLToPath(import.meta.url);
const root = dirname(dirname(self));
const args = process.argv.slice(2);
const str = (name: string, dflt = '') => {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? dflt : (args[i + 1] ?? dflt);
};
const num = (name: string, dflt: number) => Number(str(name, String(dflt)));

const NOFILE = 65_536;
/**
 * The gateway's defaults (10 messages/s per client, 100/s per IP) would refuse most of what 1,000
 * clients on one loopback address send: the bench lifts both out of the way and says so.
 */
const BENCH_LIMITS = { clientRate: 1e6, clientBurst: 1e6, ipRate: 1e6, ipBurst: 1e6 };
const TEXT = 'hello from the gateway benchmark, a chat message of about the length people type';

type Memory = { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number };
type FromChild = { ready: true; port: number; egressPort?: number } | { memory: Memory; sockets: number; nofile: number };

const nofileLimit = () => Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 0);

// ---------- the child processes ----------

async function gatewayRole(): Promise<void> {
  const { Gateway } = await import('../gateway/server.ts');
  const gateway = new Gateway({
    brokerUrl: str('broker'),
    bots: () => [{ name: 'echo', namespace: 'default' }],
    auth: { open: true },
    limits: BENCH_LIMITS,
    log: (msg, fields) => process.stderr.write(`gateway: ${msg} ${JSON.stringify(fields ?? {})}\n`),
  });
  const bound = await gateway.start(num('port', 0), '127.0.0.1', num('egress-port', 0));
  const gc = (globalThis as { gc?: () => void }).gc;
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'memory') {
      gc?.();
      gc?.();
      process.send!({ memory: process.memoryUsage(), sockets: gateway.sockets, nofile: nofileLimit() } satisfies FromChild);
    } else if (m.cmd === 'close') {
      void gateway.close().then(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
  process.send!({ ready: true, ...bound } satisfies FromChild);
}

function bareRole(): void {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: num('port', 0), perMessageDeflate: false, clientTracking: false });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  wss.on('listening', () => process.send!({ ready: true, port: (wss.address() as { port: number }).port } satisfies FromChild));
  process.on('disconnect', () => process.exit(0));
}

// ---------- the launcher ----------

let pinned = false;
function pinSelf(): void {
  if (cpus().length < 2 || args.includes('--no-pin')) return;
  // `-a` walks every thread: one that ends meanwhile makes it fail, so it is tried again.
  for (let i = 0; i < 5 && !pinned; i++) {
    try {
      execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
      pinned = true;
    } catch {
      /* unpinned after five tries, said in the output */
    }
  }
}

/** This process's own limit: the clients hold one descriptor per socket. */
function raiseOwnLimit(): string {
  const before = nofileLimit();
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${NOFILE}:${NOFILE}`], { stdio: 'ignore' });
  } catch {
    // Without CAP_SYS_RESOURCE only the soft limit can move, up to the hard one.
    const hard = /Max open files\s+\d+\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
    if (hard && hard !== 'unlimited') execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${hard}:${hard}`], { stdio: 'ignore' });
  }
  const after = nofileLimit();
  if (after >= NOFILE) return `raised from ${before} to ${after} with prlimit`;
  return `${after} (${after > before ? `raised from ${before}, ` : ''}the hard limit: raising it further needs CAP_SYS_RESOURCE, which this machine does not give)`;
}

/** Starts `argv` on CPU 0 under `ulimit -n NOFILE` (exec'd, so the pid is the server's). */
function launch(argv: string[], stdio: ('ignore' | 'inherit' | 'ipc')[], env: Record<string, string> = {}): ChildProcess {
  const sh = ['sh', '-c', `ulimit -n ${NOFILE} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$@"`, 'sh', ...argv];
  const cmd = pinned ? ['taskset', '-c', '0', ...sh] : sh;
  return spawn(cmd[0]!, cmd.slice(1), { stdio, env: { ...process.env, ...env } });
}

function fromChild<T extends FromChild>(child: ChildProcess, pick: (m: FromChild) => m is T, timeoutMs = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`child ${child.pid} did not answer in ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (m: FromChild) => {
      if (pick(m)) done(undefined, m);
    };
    const onExit = (code: number | null) => done(new Error(`child ${child.pid} exited with ${code}`));
    const done = (err?: Error, m?: T) => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m!);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}
const isReady = (m: FromChild): m is Extract<FromChild, { ready: true }> => 'ready' in m;
const isMemory = (m: FromChild): m is Extract<FromChild, { memory: Memory }> => 'memory' in m;

async function memoryOf(child: ChildProcess): Promise<Extract<FromChild, { memory: Memory }>> {
  child.send({ cmd: 'memory' });
  return fromChild(child, isMemory);
}

async function stop(child: ChildProcess, how: () => void, timeoutMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  how();
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().on('error', reject).listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function ready(url: string, timeoutMs = 20_000): Promise<void> {
  for (const until = Date.now() + timeoutMs; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
    if (await fetch(url).then((r) => r.ok, () => false)) return;
  }
  throw new Error(`${url} did not come up`);
}

/** /proc counts CPU time in USER_HZ ticks: 100 a second on Linux. */
const TICKS = 100;
/** CPU seconds a process has used (user + system). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}
/** Busy CPU seconds of each CPU, from /proc/stat (to tell how much of it other processes took). */
function cpuBusy(): number[] {
  return readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((l) => /^cpu\d+ /.test(l))
    .map((l) => {
      // user nice system idle iowait irq softirq steal
      const t = l.split(/\s+/).slice(1).map(Number);
      return [0, 1, 2, 5, 6, 7].reduce((sum, i) => sum + (t[i] ?? 0), 0) / TICKS;
    });
}
const ownCpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Opens `n` sockets, `concurrency` handshakes at a time; with `greeting`, each is ready once its first frame (`session`) came. */
async function connectAll(url: string, n: number, greeting: boolean, concurrency = 200): Promise<WebSocket[]> {
  const sockets: WebSocket[] = [];
  let next = 0;
  const one = () =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false });
      ws.once('error', reject);
      ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
      if (greeting) ws.once('message', () => resolve(ws));
      else ws.once('open', () => resolve(ws));
    });
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        sockets.push(await one());
      }
    }),
  );
  return sockets;
}

async function closeAll(sockets: WebSocket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === ws.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.terminate();
        }),
    ),
  );
}

/** What one target did in a measured window, CPU in seconds. */
interface Window {
  latencies: number[];
  seconds: number;
  errors: number;
  unanswered: number;
  cpu: Record<string, number>;
  busy: number[];
}

/**
 * Drives the sockets for `leadS + seconds`: each sends a message, waits for its answer (`reply` from the
 * gateway, the message itself from the bare echo), sends the next. Only the round trips completed in the
 * last `seconds` count (the lead-in fills the pipeline); then it waits for the answers on their way.
 */
async function drive(sockets: WebSocket[], leadS: number, seconds: number, servers: Record<string, number>): Promise<Window> {
  let phase: 'lead' | 'measure' | 'stop' = 'lead';
  const latencies: number[] = [];
  let errors = 0;
  let outstanding = 0;
  let drained: () => void = () => {};
  sockets.forEach((ws, i) => {
    let id = '';
    let sentAt = 0;
    const conversation = `bench-${i}`;
    const send = () => {
      id = `c${i}-${sent++}`; // unique across windows: the gateway acknowledges a repeated id without sending it on
      sentAt = performance.now();
      outstanding++;
      ws.send(JSON.stringify({ v: 1, type: 'message', id, bot: 'echo', conversation, text: TEXT }));
    };
    ws.on('message', (data) => {
      const f = JSON.parse(String(data)) as { type: string; id?: string };
      if (f.type === 'error') {
        if (errors++ < 5) console.error(`error frame: ${String(data)}`);
        return;
      }
      if (f.id !== id || (f.type !== 'reply' && f.type !== 'message')) return;
      outstanding--;
      if (phase === 'measure') latencies.push(performance.now() - sentAt);
      if (phase !== 'stop') send();
      else if (outstanding === 0) drained();
    });
    send();
  });
  await sleep(leadS * 1000);
  const cpu0 = Object.fromEntries(Object.entries(servers).map(([name, pid]) => [name, cpuSeconds(pid)]));
  const own0 = ownCpuSeconds();
  const busy0 = cpuBusy();
  const t0 = performance.now();
  phase = 'measure';
  await sleep(seconds * 1000);
  phase = 'stop';
  const elapsed = (performance.now() - t0) / 1000;
  const cpu: Record<string, number> = Object.fromEntries(Object.entries(servers).map(([name, pid]) => [name, cpuSeconds(pid) - cpu0[name]!]));
  cpu.clients = ownCpuSeconds() - own0;
  const busy = cpuBusy().map((b, i) => b - busy0[i]!);
  if (outstanding > 0) await Promise.race([new Promise<void>((r) => (drained = r)), sleep(15_000)]);
  for (const ws of sockets) ws.removeAllListeners('message');
  return { latencies, seconds: elapsed, errors, unanswered: outstanding, cpu, busy };
}
let sent = 0;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

interface RoundTrips {
  rate: number;
  p50: number;
  p99: number;
  completed: number;
  errors: number;
  unanswered: number;
  seconds: number;
  /** Share of one core, per process. */
  cpu: Record<string, number>;
  /** Server CPU per round trip (the clients not counted), µs. */
  serverUsPerMsg: number;
  /** How busy each CPU was, whoever used it. */
  busy: number[];
}

function summary(windows: Window[]): RoundTrips {
  const latencies = windows.flatMap((w) => w.latencies).sort((a, b) => a - b);
  const seconds = windows.reduce((t, w) => t + w.seconds, 0);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))] ?? NaN;
  const cpu: Record<string, number> = {};
  for (const w of windows) for (const [k, v] of Object.entries(w.cpu)) cpu[k] = (cpu[k] ?? 0) + v;
  const serverCpu = Object.entries(cpu).reduce((t, [k, v]) => (k === 'clients' ? t : t + v), 0);
  return {
    rate: latencies.length / seconds,
    p50: at(0.5),
    p99: at(0.99),
    completed: latencies.length,
    errors: windows.reduce((t, w) => t + w.errors, 0),
    unanswered: windows.reduce((t, w) => t + w.unanswered, 0),
    seconds,
    cpu: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / seconds])),
    serverUsPerMsg: (serverCpu / latencies.length) * 1e6,
    busy: windows[0]!.busy.map((_, i) => windows.reduce((t, w) => t + w.busy[i]!, 0) / seconds),
  };
}

/** V8 flags for the gateway's process alone (`--gateway-flags '--max-semi-space-size=4'`), as its Deployment sets in NODE_OPTIONS. */
const GATEWAY_FLAGS = str('gateway-flags').split(/\s+/).filter(Boolean);

async function startGateway(extra: string[], execArgv: string[]): Promise<{ child: ChildProcess; port: number; egressPort: number }> {
  if (GATEWAY_FLAGS.length) console.log(`gateway flags: ${GATEWAY_FLAGS.join(' ')}`);
  const child = launch([process.execPath, ...GATEWAY_FLAGS, ...execArgv, self, '--role', 'gateway', ...extra], ['ignore', 'inherit', 'inherit', 'ipc']);
  const m = await fromChild(child, isReady);
  return { child, port: m.port, egressPort: m.egressPort! };
}

const MB = 1024 * 1024;

async function idleBench(n: number) {
  const gw = await startGateway(['--broker', 'http://127.0.0.1:9/'], ['--expose-gc']);
  try {
    await new Promise((r) => setTimeout(r, 500));
    const base = await memoryOf(gw.child);
    const t0 = performance.now();
    const sockets = await connectAll(`ws://127.0.0.1:${gw.port}/v1/ws`, n, true);
    const connectS = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 2000));
    const held = await memoryOf(gw.child);
    await closeAll(sockets);
    const perSocket = (k: keyof Memory) => (held.memory[k] - base.memory[k]) / n / 1024;
    return {
      sockets: held.sockets,
      connectSeconds: connectS,
      gatewayNofile: held.nofile,
      baseRssMB: base.memory.rss / MB,
      rssMB: held.memory.rss / MB,
      rssPerSocketKB: perSocket('rss'),
      baseHeapUsedMB: base.memory.heapUsed / MB,
      heapUsedMB: held.memory.heapUsed / MB,
      heapPerSocketKB: perSocket('heapUsed'),
      heapTotalMB: held.memory.heapTotal / MB,
      externalMB: held.memory.external / MB,
    };
  } finally {
    await stop(gw.child, () => gw.child.send({ cmd: 'close' }));
  }
}

/**
 * Both targets stay up; after a warm-up each, they take turns for `rounds` rounds of `seconds / rounds`,
 * so that what other processes do to this shared machine meanwhile falls on both alike.
 */
async function rttBench(n: number, warmupS: number, seconds: number, roundsN: number, profDir: string | undefined) {
  const prof = (name: string) => (profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir, '--cpu-prof-name', `${name}.cpuprofile`] : []);
  const state = mkdtempSync(join(tmpdir(), 'knbot-bench-gateway-'));
  const [brokerPort, botPort] = [await freePort(), await freePort()];
  const brokerUrl = `http://127.0.0.1:${brokerPort}/`;
  const stops: (() => Promise<void>)[] = [];
  try {
    const gw = await startGateway(['--broker', brokerUrl], ['--expose-gc', ...prof('gateway')]);
    stops.push(() => stop(gw.child, () => gw.child.send({ cmd: 'close' })));
    // The routes `knbot dev` makes: messages to the bot by name, bot output to the gateway's egress in conversation order.
    const routes = [
      { id: 'bot-echo', url: `http://127.0.0.1:${botPort}/`, filters: [{ exact: { chatbot: 'echo' } }, { exact: { type: 'dev.knbot.chat.message.received' } }] },
      { id: 'gateway', url: `http://127.0.0.1:${gw.egressPort}/`, ordered: true, filters: [{ any: ['dev.knbot.chat.reply.send', 'dev.knbot.chat.reply.chunk', 'dev.knbot.chat.typing.start'].map((type) => ({ exact: { type } })) }] },
    ];
    writeFileSync(join(state, 'routes.json'), JSON.stringify(routes));
    const knbot = join(root, 'cli', 'knbot.js');
    const broker = launch([process.execPath, ...prof('broker'), knbot, 'broker', '--state-dir', join(state, 'broker'), '--routes', join(state, 'routes.json'), '--port', String(brokerPort)], ['ignore', 'ignore', 'inherit']);
    stops.unshift(() => stop(broker, () => broker.kill('SIGTERM')));
    const bot = launch([process.execPath, ...prof('bot'), knbot, 'serve', join(root, 'functions', 'echo')], ['ignore', 'ignore', 'inherit'], { PORT: String(botPort), K_SINK: brokerUrl, NODE_ENV: 'production' });
    stops.unshift(() => stop(bot, () => bot.kill('SIGTERM')));
    const echo = launch([process.execPath, self, '--role', 'bare'], ['ignore', 'inherit', 'inherit', 'ipc']);
    stops.push(() => stop(echo, () => echo.kill('SIGTERM')));
    const { port } = await fromChild(echo, isReady);
    await ready(`${brokerUrl}health`);
    await ready(`http://127.0.0.1:${botPort}/health/readiness`);

    const clients = await connectAll(`ws://127.0.0.1:${gw.port}/v1/ws`, n, true);
    const peers = await connectAll(`ws://127.0.0.1:${port}/`, n, false);
    const systemPids = { gateway: gw.child.pid!, broker: broker.pid!, bot: bot.pid! };
    const barePids = { bare: echo.pid! };
    await drive(clients, 0, warmupS, systemPids);
    await drive(peers, 0, warmupS, barePids);
    const systemWindows: Window[] = [];
    const bareWindows: Window[] = [];
    // The gateway path needs about a second (its latency at this load) to fill up again after a pause.
    for (let r = 0; r < roundsN; r++) {
      systemWindows.push(await drive(clients, 2, seconds / roundsN, systemPids));
      bareWindows.push(await drive(peers, 1, seconds / roundsN, barePids));
    }
    const after = (await memoryOf(gw.child)).memory;
    await closeAll(clients);
    await closeAll(peers);
    const system = summary(systemWindows);
    const bare = summary(bareWindows);
    return {
      system,
      bare,
      ratio: system.rate / bare.rate,
      cpuRatio: bare.serverUsPerMsg / system.serverUsPerMsg,
      gatewayAfter: { rssMB: after.rss / MB, heapUsedMB: after.heapUsed / MB, heapTotalMB: after.heapTotal / MB, externalMB: after.external / MB },
    };
  } finally {
    for (const s of stops) await s();
    rmSync(state, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const idleN = num('idle', 10_000);
  const activeN = num('active', 1_000);
  const warmupS = num('warmup', 3);
  const seconds = num('seconds', 15);
  const roundsN = num('rounds', 3);
  const only = str('only');
  const profDir = str('cpu-prof') || undefined;
  const minRatio = num('min-ratio', 0);
  const maxRss = num('max-rss-mb', 0);
  pinSelf();
  const fds = raiseOwnLimit();
  const cpuModel = cpus()[0]?.model.trim() ?? 'unknown CPU';
  console.log(`gateway bench: Node ${process.versions.node}, ${cpus().length} × ${cpuModel}; ${pinned ? 'servers on CPU 0, clients on CPU 1' : 'NOT pinned'}`);
  console.log(`file descriptors: this process (the clients) ${fds}; servers started under \`ulimit -n ${NOFILE}\`, else under their hard limit`);
  if (nofileLimit() < idleN + 100) throw new Error(`${idleN} sockets need more descriptors than the ${nofileLimit()} this process may open`);
  console.log(`gateway limits lifted for the bench: ${BENCH_LIMITS.clientRate} messages/s per client and per IP (defaults 10/s per client, 100/s per IP would throttle ${activeN} clients on one address)`);

  const out: Record<string, unknown> = { bench: 'gateway', node: process.versions.node, cpus: cpus().length, pinned };
  let failed = false;
  if (only !== 'rtt') {
    const idle = await idleBench(idleN);
    out.idle = idle;
    console.log(`\n(a) ${idleN.toLocaleString('en')} idle WebSocket sockets on one gateway process (its limit: ${idle.gatewayNofile} descriptors), connected in ${idle.connectSeconds.toFixed(1)} s; the gateway counts ${idle.sockets}`);
    console.log(`  RSS        ${idle.baseRssMB.toFixed(1)} MB before connecting, ${idle.rssMB.toFixed(1)} MB with the sockets (target ≤ 300 MB): ${idle.rssPerSocketKB.toFixed(1)} KB per socket`);
    console.log(`  heap used  ${idle.baseHeapUsedMB.toFixed(1)} MB before, ${idle.heapUsedMB.toFixed(1)} MB after a forced GC with the sockets: ${idle.heapPerSocketKB.toFixed(1)} KB per socket (heap total ${idle.heapTotalMB.toFixed(0)} MB, external ${idle.externalMB.toFixed(1)} MB)`);
    if (maxRss && idle.rssMB > maxRss) {
      console.log(`gate max-rss-mb: ${idle.rssMB.toFixed(0)} > ${maxRss} FAIL`);
      failed = true;
    }
  }
  if (only !== 'idle') {
    const r = await rttBench(activeN, warmupS, seconds, roundsN, profDir);
    out.rtt = { clients: activeN, warmupSeconds: warmupS, rounds: roundsN, ...r };
    const row = (name: string, x: RoundTrips) =>
      `${name.padEnd(30)}${x.rate.toFixed(0).padStart(8)}${x.p50.toFixed(1).padStart(9)}${x.p99.toFixed(1).padStart(9)}${String(x.errors).padStart(8)}${String(x.unanswered).padStart(12)}`;
    const cpu = (x: RoundTrips) =>
      Object.entries(x.cpu)
        .map(([k, v]) => `${k} ${(v * 100).toFixed(0)}% (${((v / x.rate) * 1e6).toFixed(0)} µs/msg)`)
        .join(', ') + `; CPUs busy in all, whoever used them: ${x.busy.map((b) => `${(b * 100).toFixed(0)}%`).join(', ')}`;
    console.log(`\n(b) round trips at ${activeN.toLocaleString('en')} active clients, each waiting for its answer before the next message; ${warmupS} s warm-up each, then ${roundsN} rounds taking turns, ${r.system.seconds.toFixed(1)} s measured per target`);
    console.log(`${'target'.padEnd(30)}   msg/s   p50 ms   p99 ms  errors  unanswered`);
    console.log(row('gateway → broker → echo bot', r.system));
    console.log(row('bare ws echo', r.bare));
    console.log(`gateway ÷ bare: ${r.ratio.toFixed(2)}× the messages per second (target ≥ 0.5×)`);
    console.log(`CPU, share of one core (per message): gateway path: ${cpu(r.system)}`);
    console.log(`                                       bare: ${cpu(r.bare)}`);
    console.log(`server CPU per round trip: gateway path ${r.system.serverUsPerMsg.toFixed(0)} µs, bare ${r.bare.serverUsPerMsg.toFixed(0)} µs: ${r.cpuRatio.toFixed(3)}× the round trips per core-second (not moved by what other processes take)`);
    console.log(`gateway after ${r.system.completed.toLocaleString('en')}+ messages, sockets still open: RSS ${r.gatewayAfter.rssMB.toFixed(0)} MB, heap used after GC ${r.gatewayAfter.heapUsedMB.toFixed(0)} MB of ${r.gatewayAfter.heapTotalMB.toFixed(0)} MB, external ${r.gatewayAfter.externalMB.toFixed(0)} MB`);
    if (profDir) console.log(`CPU profiles of the gateway, the broker and the bot in ${profDir}`);
    if (minRatio && r.ratio < minRatio) {
      console.log(`gate min-ratio: ${r.ratio.toFixed(2)} < ${minRatio} FAIL`);
      failed = true;
    }
  }
  console.log(JSON.stringify(out, (_k, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toFixed(3)) : v)));
  if (failed) process.exitCode = 1;
}

const role = str('role');
if (role === 'gateway') await gatewayRole();
else if (role === 'bare') bareRole();
else await main();
