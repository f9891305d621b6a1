// npm run bench:dev — `knbot dev`'s cold start: the echo bot from zero instances to its first reply,
// POST /v1/chat through gateway → broker → activator → a new `knbot serve` process and back, median of
// --runs, side by side in one run with faas-js-runtime's spawn→ready as ../shared/bench/compare.mjs
// measures it (that script is called, in turns with the cold starts); then the warm round trip p50/p99.
// The host and its instances run pinned to CPU 0, this process (the client) on CPU 1, as compare.mjs
// pins its servers and its prober.
//   node bench/dev.ts [--runs N] [--rounds R] [--warm N] [--max-ratio X] [--json FILE] [--no-peer] [--no-pin]
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, release, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const http = process.getBuiltinModule('node:http');

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
const str = (name: string, dflt = '') => {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? dflt : (args[i + 1] ?? dflt);
};
const num = (name: string, dflt: number) => Number(str(name, String(dflt)));
const runs = num('runs', 10);
const rounds = Math.max(1, Math.min(runs, num('rounds', 2)));
const warmCount = num('warm', 1000);
const maxRatio = num('max-ratio', 0);
const COMPARE = join(root, '..', 'shared', 'bench', 'compare.mjs');
const withPeer = !args.includes('--no-peer') && existsSync(COMPARE);
const node = join(root, 'node_modules', '.bin', 'node');

let pinned = false;
if (cpus().length >= 2 && !args.includes('--no-pin')) {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
    pinned = true;
  } catch {
    /* unpinned, said below */
  }
}
const onCpu0 = (argv: string[]): [string, string[]] => (pinned ? ['taskset', ['-c', '0', ...argv]] : [argv[0]!, argv.slice(1)]);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');
const log = (s: string) => process.stderr.write(`${s}\n`);

// ---------- the dev host: a project holding only the echo bot, at zero instances ----------
const work = mkdtempSync(join(tmpdir(), 'knbot-bench-dev-'));
const project = join(work, 'project');
cpSync(join(root, 'functions', 'echo'), join(project, 'functions', 'echo'), { recursive: true });
const port = await new Promise<number>((resolve, reject) => {
  const s = createServer().on('error', reject).listen(0, '127.0.0.1', () => {
    const { port } = s.address() as { port: number };
    s.close(() => resolve(port));
  });
});
const [bin, argv] = onCpu0([node, join(root, 'cli', 'knbot.js'), 'dev', project, '--port', String(port), '--state-dir', join(work, 'state'), '--no-watch']);
const host: ChildProcess = spawn(bin, argv, {
  cwd: root,
  // NODE_ENV as compare.mjs gives its servers; a short scale-down so each run starts from zero again.
  env: { ...process.env, NODE_ENV: 'production', KNBOT_DEV_SCALE_DOWN_DELAY: '1s' },
  stdio: ['ignore', 'pipe', 'pipe'],
  detached: true,
});
let hostOut = '';
/** When (this process's clock) the host said an echo instance was ready, and the spawn→ready it measured. */
const readyLines: { at: number; coldStartMs: number }[] = [];
let partial = '';
host.stdout!.on('data', (d: Buffer) => {
  const at = performance.now();
  hostOut = (hostOut + d.toString()).slice(-20_000);
  const lines = (partial + d.toString()).split('\n');
  partial = lines.pop()!;
  for (const line of lines) {
    if (!line.includes('"msg":"instance ready"')) continue;
    const ms = Number(/"coldStartMs":(\d+(?:\.\d+)?)/.exec(line)?.[1]);
    if (Number.isFinite(ms)) readyLines.push({ at, coldStartMs: ms });
  }
});
host.stderr!.on('data', (d: Buffer) => (hostOut = (hostOut + d.toString()).slice(-20_000)));
const stopHost = () => {
  try {
    process.kill(-host.pid!, 'SIGKILL');
  } catch {}
};
process.on('exit', () => {
  stopHost();
  rmSync(work, { recursive: true, force: true });
});

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function post(path: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
async function echoInstances(): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/dashboard/state`);
  const state = (await res.json()) as { bots: { name: string; instances: unknown[] }[] };
  return state.bots.find((b) => b.name === 'echo')!.instances.length;
}

let seq = 0;
const TEXT = 'hello from the knbot dev benchmark';
async function chat(): Promise<number> {
  const t0 = performance.now();
  const r = await post('/v1/chat', { 'content-type': 'application/json' }, JSON.stringify({ bot: 'echo', conversation: `bench-${seq++}`, text: TEXT }));
  const ms = performance.now() - t0;
  if (r.status !== 200 || (JSON.parse(r.body) as { text?: string }).text !== TEXT) throw new Error(`/v1/chat answered ${r.status}: ${r.body.slice(0, 200)}`);
  return ms;
}

interface ColdRun {
  /** POST sent → reply received, at the client. */
  totalMs: number;
  /** The host's spawn→ready of the instance (from its `instance ready` line). */
  spawnReadyMs: number;
  /** POST sent → instance spawned: gateway, broker ingress (stored, fsynced), delivery to the activator. */
  beforeSpawnMs: number;
  /** Instance ready → reply at the client: the held request forwarded, the bot's answer, the reply event stored and routed to the gateway. */
  afterReadyMs: number;
}

/** One cold start: wait for zero instances, send, and split the time with the host's own `instance ready` line. */
async function coldStart(): Promise<ColdRun> {
  while ((await echoInstances()) > 0) await sleep(50);
  const lines = readyLines.length;
  const t0 = performance.now();
  const totalMs = await chat();
  const t1 = t0 + totalMs;
  // The line is written before the held request is forwarded; allow the pipe a moment.
  for (let i = 0; i < 100 && readyLines.length === lines; i++) await sleep(5);
  const ready = readyLines[lines];
  if (!ready) throw new Error(`no instance was started for the request:\n${hostOut.slice(-2000)}`);
  const spawnedAt = ready.at - ready.coldStartMs;
  return { totalMs, spawnReadyMs: ready.coldStartMs, beforeSpawnMs: spawnedAt - t0, afterReadyMs: t1 - ready.at };
}

interface PeerRound {
  faas: number[];
  knbotServe: number[];
  nodeStartMs: number;
}

/** compare.mjs's spawn→ready (knbot serve functions/echo and faas-js-runtime), with the shortest load it allows. */
async function compareSpawn(spawnRuns: number): Promise<PeerRound> {
  const json = join(work, `compare-${Date.now()}.json`);
  const child = spawn(node, [COMPARE, '--peers', 'faas-js-runtime', '--spawn-runs', String(spawnRuns), '--rounds', '1', '--duration', '0.2', '--warmup', '0.1', '--c1-duration', '0.1', '--json', json], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`compare.mjs exited with ${code}`);
  const r = JSON.parse(readFileSync(json, 'utf8')) as { targets: Record<string, { spawnMs: number[]; missing?: string }>; nodeStartMs: number };
  if (r.targets['faas-js-runtime']?.missing) throw new Error(`faas-js-runtime missing: ${r.targets['faas-js-runtime'].missing}`);
  return { faas: r.targets['faas-js-runtime']!.spawnMs, knbotServe: r.targets.knbot?.spawnMs ?? [], nodeStartMs: r.nodeStartMs };
}

try {
  const t0 = performance.now();
  while (!hostOut.includes('"dev host ready"')) {
    if (host.exitCode !== null) throw new Error(`knbot dev exited:\n${hostOut}`);
    if (performance.now() - t0 > 30_000) throw new Error(`knbot dev did not start:\n${hostOut}`);
    await sleep(20);
  }
  log(`knbot dev up on :${port}; one unmeasured cold start (file and compile caches)`);
  await coldStart();

  const cold: ColdRun[] = [];
  const peer: PeerRound[] = [];
  for (let r = 0; r < rounds; r++) {
    const n = Math.floor(runs / rounds) + (r < runs % rounds ? 1 : 0);
    if (withPeer) {
      log(`round ${r + 1}/${rounds}: compare.mjs spawn→ready x${n} (knbot serve, faas-js-runtime)`);
      peer.push(await compareSpawn(n));
    }
    log(`round ${r + 1}/${rounds}: knbot dev cold start x${n}`);
    for (let i = 0; i < n; i++) cold.push(await coldStart());
  }

  // Warm: the instance of the last cold start stays while requests keep coming.
  for (let i = 0; i < 100; i++) await chat();
  const warm: number[] = [];
  for (let i = 0; i < warmCount; i++) warm.push(await chat());
  // The first leg alone: POST /v1/events, answered once the broker has stored (and fsynced) the event
  // (routed to echo, which takes it without a reply: a broker stores only what some route matches).
  const ingress: number[] = [];
  const event = { 'ce-specversion': '1.0', 'ce-source': '/bench', 'ce-type': 'bench.event', 'ce-chatbot': 'echo', 'content-type': 'application/json' };
  for (let i = 0; i < 200; i++) {
    const t = performance.now();
    const r = await post('/v1/events', { ...event, 'ce-id': `ingress-${i}` }, '{}');
    if (r.status !== 202) throw new Error(`/v1/events answered ${r.status}: ${r.body}`);
    ingress.push(performance.now() - t);
  }

  const m = (k: keyof ColdRun) => median(cold.map((c) => c[k]));
  const faas = median(peer.flatMap((p) => p.faas));
  const serve = median(peer.flatMap((p) => p.knbotServe));
  const nodeStart = median(peer.map((p) => p.nodeStartMs));
  const ratio = m('totalMs') / faas;
  const cpu = cpus()[0]?.model?.trim();
  console.log(`\nknbot dev bench: ${cpus().length} CPUs (${cpu}), Linux ${release()}, Node ${process.versions.node}; ${pinned ? 'the host and its instances on CPU 0, this client on CPU 1' : 'NOT pinned'}`);
  console.log(`cold start of the echo bot, zero instances → first reply of POST /v1/chat, median of ${cold.length} (min–max):`);
  const row = (label: string, ms: number, extra = '') => console.log(`  ${label.padEnd(72)} ${f(ms, 1).padStart(7)} ms${extra}`);
  row('total', m('totalMs'), `   (${f(Math.min(...cold.map((c) => c.totalMs)))}–${f(Math.max(...cold.map((c) => c.totalMs)))})`);
  row('· before the spawn: gateway, broker ingress, delivery to the activator', m('beforeSpawnMs'));
  row('· instance spawn → ready, as the host measures it', m('spawnReadyMs'));
  row('· ready → reply: forward, bot, reply stored and routed to the gateway', m('afterReadyMs'));
  if (withPeer) {
    console.log(`  for scale: knbot serve functions/echo alone, spawn → ready ${f(serve, 1)} ms; node -e 0 ${f(nodeStart, 1)} ms (compare.mjs, same run)`);
    console.log(`faas-js-runtime spawn → ready (compare.mjs, median of ${peer.flatMap((p) => p.faas).length}): ${f(faas, 1)} ms`);
    console.log(`knbot dev cold start to first reply ÷ faas-js-runtime spawn → ready: ${f(ratio, 2)}x (target ≤ 0.6x)`);
  } else console.log('faas-js-runtime: not measured (--no-peer, or ../shared/bench/compare.mjs is missing)');
  console.log(`warm round trip, POST /v1/chat one at a time (n=${warm.length}): p50 ${f(percentile(warm, 50), 2)} ms, p99 ${f(percentile(warm, 99), 2)} ms`);
  console.log(`  the first leg alone, POST /v1/events → 202 (gateway → broker, stored and fsynced; n=${ingress.length}): p50 ${f(percentile(ingress, 50), 2)} ms, p99 ${f(percentile(ingress, 99), 2)} ms`);
  if (str('json')) {
    writeFileSync(str('json'), `${JSON.stringify({ when: new Date().toISOString(), machine: { cpus: cpus().length, model: cpu, kernel: release(), pinned }, node: process.versions.node, cold, peer, warm: { p50: percentile(warm, 50), p99: percentile(warm, 99), n: warm.length }, ingress: { p50: percentile(ingress, 50), p99: percentile(ingress, 99) }, ratio }, null, 2)}\n`);
  }
  if (maxRatio && withPeer && !(ratio <= maxRatio)) {
    console.log(`gate max-ratio: ${f(ratio, 2)} > ${maxRatio} FAIL`);
    process.exitCode = 1;
  }
} catch (err) {
  console.error(`bench:dev: ${(err as Error).message}${host.exitCode !== null || host.signalCode !== null ? `\nknbot dev exited (${host.signalCode ?? host.exitCode}):\n${hostOut.slice(-3000)}` : ''}`);
  process.exitCode = 1;
} finally {
  stopHost();
}
