// npm run bench:broker — durable ingress of the local broker (202 only after the commit) against a
// bare node:http server that accepts the same POSTs and stores nothing, in one run; then the rate at
// which the broker delivers to a local subscriber. Servers run pinned to CPU 0, the load on CPU 1.
//   node bench/broker.ts [--seconds S] [--connections N] [--min-ratio X]
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const autocannon = createRequire(import.meta.url)('autocannon') as (opts: object) => Promise<{ requests: { average: number; total: number }; latency: { p50: number; p99: number }; non2xx: number; errors: number }>;
const root = dirname(dirname(fileURLToPath(import.meta.url)));
const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(args[i + 1]);
};
const seconds = opt('seconds', 8);
const connections = opt('connections', 50);
const minRatio = opt('min-ratio', 0);

let pinned = false;
if (cpus().length >= 2) {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' });
    pinned = true;
  } catch {
    /* unpinned, said below */
  }
}
const node = process.execPath;
const onCpu0 = (argv: string[]): [string, string[]] => (pinned ? ['taskset', ['-c', '0', ...argv]] : [argv[0]!, argv.slice(1)]);

const BARE = `require('node:http').createServer((q, s) => { q.resume(); q.on('end', () => s.writeHead(202, { 'content-length': '0' }).end()); }).listen(Number(process.argv[1]), '127.0.0.1');`;

async function ready(url: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await fetch(url).then(() => true, () => false)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${url} did not come up`);
}

function start(argv: string[]): ChildProcess {
  const [bin, a] = onCpu0(argv);
  return spawn(bin, a, { stdio: 'ignore' });
}

const headers = { 'ce-specversion': '1.0', 'ce-source': '/bench', 'ce-type': 'dev.knbot.chat.message.received', 'ce-chatbot': 'echo', 'content-type': 'application/json' };
const body = JSON.stringify({ text: 'hello from the broker benchmark, a chat message of about the length people type' });
let seq = 0;
const load = (url: string) =>
  autocannon({
    url,
    method: 'POST',
    connections,
    duration: seconds,
    requests: [{ setupRequest: (r: { headers: Record<string, string> }) => ({ ...r, headers: { ...headers, 'ce-id': `b-${seq++}` }, body }) }],
  });

// A subscriber that takes every delivery (202), counting them.
let delivered = 0;
const sub = createServer((q, s) => {
  q.resume();
  q.on('end', () => {
    delivered++;
    s.writeHead(202, { 'content-length': '0' }).end();
  });
}).listen(0, '127.0.0.1');
await new Promise((r) => sub.once('listening', r));
const subUrl = `http://127.0.0.1:${(sub.address() as { port: number }).port}/`;

const state = mkdtempSync(join(tmpdir(), 'knbot-bench-broker-'));
const routes = join(state, 'routes.json');
writeFileSync(routes, JSON.stringify([{ id: 'echo', filters: [{ exact: { chatbot: 'echo' } }], url: subUrl, delivery: { retry: 3 } }]));
const bare = start([node, '-e', BARE, '18501']);
const broker = start([node, join(root, 'cli', 'knbot.js'), 'broker', '--state-dir', state, '--routes', routes, '--port', '18502']);
try {
  await ready('http://127.0.0.1:18501/');
  await ready('http://127.0.0.1:18502/health');
  const warm = async (url: string) => void (await autocannon({ url, method: 'POST', connections, duration: 1, headers: { ...headers, 'ce-id': 'warm' }, body }));
  await warm('http://127.0.0.1:18501/');
  await warm('http://127.0.0.1:18502/');
  // Let the warm-up's deliveries finish before counting.
  for (let last = -1; last !== delivered; ) {
    last = delivered;
    await new Promise((r) => setTimeout(r, 500));
  }
  const d0 = delivered;
  const t0 = Date.now();
  const b = await load('http://127.0.0.1:18502/');
  const ingressMs = Date.now() - t0;
  const acked = b.requests.total;
  // Deliveries go on after the load ends: wait for the queue to drain.
  while (delivered - d0 < acked && Date.now() - t0 < ingressMs + 120_000) await new Promise((r) => setTimeout(r, 50));
  const drainMs = Date.now() - t0;
  const r = await load('http://127.0.0.1:18501/');
  const ratio = b.requests.average / r.requests.average;
  console.log(`broker bench: ${seconds} s at ${connections} connections, Node ${process.versions.node}; ${pinned ? 'servers on CPU 0, load on CPU 1' : 'NOT pinned'}`);
  console.log('target                      req/s   p50 ms   p99 ms   non-2xx');
  console.log(`durable broker ingress ${b.requests.average.toFixed(0).padStart(9)} ${String(b.latency.p50).padStart(8)} ${String(b.latency.p99).padStart(8)} ${String(b.non2xx + b.errors).padStart(9)}`);
  console.log(`bare node:http         ${r.requests.average.toFixed(0).padStart(9)} ${String(r.latency.p50).padStart(8)} ${String(r.latency.p99).padStart(8)} ${String(r.non2xx + r.errors).padStart(9)}`);
  console.log(`durable ingress ÷ bare: ${ratio.toFixed(2)}x`);
  console.log(`end to end: ${delivered - d0} of ${acked} acknowledged events delivered in ${(drainMs / 1000).toFixed(1)} s (${(((delivered - d0) / drainMs) * 1000).toFixed(0)} deliveries/s while ingress ran for ${(ingressMs / 1000).toFixed(1)} s)`);
  if (minRatio && ratio < minRatio) {
    console.log(`gate min-ratio: ${ratio.toFixed(2)} < ${minRatio} FAIL`);
    process.exitCode = 1;
  }
} finally {
  bare.kill();
  broker.kill();
  sub.close();
}
