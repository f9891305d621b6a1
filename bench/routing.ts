// npm run bench:routing — events routed per second and p99 per event with 10 … 10,000 bindings,
// the indexed router against evaluating every binding's filters one by one, in the same run.
//   node bench/routing.ts [--seconds S] [--min-speedup X]   (X: indexed ÷ naive at 1,000 bindings)
import { performance } from 'node:perf_hooks';
import { compileFilters, type EventMatcher, type SubscriptionsApiFilter } from '../eventing/filters/index.ts';
import { Router } from '../eventing/router/index.ts';

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(args[i + 1]);
};
const seconds = opt('seconds', 1);
const minSpeedup = opt('min-speedup', 0);

const TYPES = ['dev.knbot.chat.message.received', 'dev.knbot.chat.action.invoked', 'dev.knbot.slack.event.app_mention'];
const PLATFORMS = ['slack', 'telegram', 'discord', 'line', 'whatsapp', 'ws'];

/** A binding as the compiler makes them: the bot's name, then any of its Events' filters. */
function binding(i: number): SubscriptionsApiFilter[] {
  const events: SubscriptionsApiFilter[] = [
    { all: [{ exact: { chatplatform: PLATFORMS[i % PLATFORMS.length]! } }, { exact: { type: TYPES[0]! } }] },
    { exact: { type: TYPES[1 + (i % 2)]! } },
    { cesql: `subject LIKE 'ops/%' AND chatuser <> 'bot-${i}'` },
  ];
  return [{ exact: { chatbot: `bot-${i}` } }, { any: events }];
}

/** `count` events spread evenly over the first `n` bots. */
function events(n: number, count: number): Record<string, unknown>[] {
  return Array.from({ length: count }, (_, k) => ({
    specversion: '1.0',
    id: `e${k}`,
    source: '/slack/T1/A1',
    type: TYPES[k % TYPES.length],
    subject: k % 5 === 0 ? 'ops/incident' : `C${k}`,
    chatbot: `bot-${(k * 7919) % n}`,
    chatplatform: PLATFORMS[k % PLATFORMS.length],
    chatuser: `u${k}`,
  }));
}

function measure(route: (e: Record<string, unknown>) => number, evs: Record<string, unknown>[]): { rate: number; p99us: number } {
  const lat: number[] = [];
  let n = 0;
  let sink = 0;
  const until = performance.now() + seconds * 1000;
  const t0 = performance.now();
  while (performance.now() < until) {
    for (let i = 0; i < 64; i++) {
      const e = evs[n++ % evs.length]!;
      const s = performance.now();
      sink += route(e);
      lat.push(performance.now() - s);
    }
  }
  const elapsed = performance.now() - t0;
  if (sink < 0) console.log(sink);
  lat.sort((a, b) => a - b);
  return { rate: (n / elapsed) * 1000, p99us: lat[Math.floor(lat.length * 0.99)]! * 1000 };
}

type Figures = { rate: number; p99us: number };
const rows: { n: number; naive: Figures; indexed: Figures; hot: Figures }[] = [];
for (const n of [10, 100, 1000, 10000]) {
  const specs = Array.from({ length: n }, (_, i) => binding(i));
  const matchers: EventMatcher[] = specs.map((s) => compileFilters(s));
  const router = new Router(specs.map((filters, i) => ({ id: `b${i}`, filters, target: i })));
  const evs = events(n, 4096);
  for (const e of evs) {
    const want = matchers.filter((m) => m(e)).length;
    if (router.match(e).length !== want) throw new Error('router and naive evaluation disagree');
  }
  const naive = measure((e) => {
    let hits = 0;
    for (const m of matchers) if (m(e)) hits++;
    return hits;
  }, evs);
  const indexed = measure((e) => router.match(e).length, evs);
  // The same router when traffic comes from 100 active bots (a working set that stays in the CPU's caches).
  const hot = measure((e) => router.match(e).length, events(Math.min(n, 100), 4096));
  rows.push({ n, naive, indexed, hot });
}

const f = (x: number, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
console.log(`routing: ${seconds} s per measurement, Node ${process.versions.node}`);
console.log('events spread over every bound bot; last column: the indexed router with 100 active bots');
console.log('bindings   naive ev/s  naive p99 µs   indexed ev/s  indexed p99 µs   speedup   indexed@100 ev/s');
for (const r of rows) {
  console.log(
    `${String(r.n).padStart(8)} ${f(r.naive.rate).padStart(12)} ${f(r.naive.p99us, 1).padStart(12)} ${f(r.indexed.rate).padStart(14)} ${f(r.indexed.p99us, 1).padStart(15)} ${f(r.indexed.rate / r.naive.rate, 1).padStart(9)}x ${f(r.hot.rate).padStart(18)}`,
  );
}
const at = (n: number) => rows.find((r) => r.n === n)!;
const speedup = at(1000).indexed.rate / at(1000).naive.rate;
const growth = at(100).indexed.rate / at(10000).indexed.rate;
const hotGrowth = at(100).hot.rate / at(10000).hot.rate;
console.log(`indexed ÷ naive at 1,000 bindings: ${f(speedup, 1)}x`);
console.log(`indexed cost per event, 10,000 ÷ 100 bindings: ${f(growth, 2)}x spread over every bot, ${f(hotGrowth, 2)}x with 100 active bots`);
if (minSpeedup && speedup < minSpeedup) {
  console.log(`gate min-speedup: ${f(speedup, 1)} < ${minSpeedup} FAIL`);
  process.exit(1);
}
