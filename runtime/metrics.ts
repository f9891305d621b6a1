import { createRequire } from 'node:module';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';

// The pod's metrics (DESIGN §8) on a prom-client registry. prom-client is loaded off the start-up path:
// when the bot or a scrape first needs it, or once the pod is ready and idle. Requests answered before
// that are kept as a count per (route, code) and a list of durations, and counted in when it loads.

type Prom = typeof import('prom-client');
const require = createRequire(import.meta.url);

/** What a bot's code may do with metrics: its own counters, gauges and histograms on the pod's registry. */
export interface BotMetrics {
  readonly registry: Registry;
  counter(name: string, help: string, labelNames?: string[]): Counter<string>;
  gauge(name: string, help: string, labelNames?: string[]): Gauge<string>;
  histogram(name: string, help: string, labelNames?: string[], buckets?: number[]): Histogram<string>;
}

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Durations kept while prom-client is not loaded; past this many it loads at once. */
const MAX_PENDING = 4096;

interface Loaded {
  registry: Registry;
  requests: Counter<'route' | 'code'>;
  duration: Histogram<'route'>;
  delivered: Counter<'result'>;
  routes: Map<string, { timer: { observe(v: number): void }; codes: Map<number, { inc(): void }> }>;
}

export class PodMetrics implements BotMetrics {
  readonly #bot: string;
  readonly #inflight: () => number;
  #loaded: Loaded | undefined;
  #pending: { route: string; code: number; seconds: number }[] = [];
  #pendingDelivered = { ok: 0, error: 0 };
  #coldStart: number | undefined;
  #initDuration: number | undefined;

  /** `inflight` is read at scrape time: nothing is counted up and down per request. */
  constructor(bot: string, inflight: () => number) {
    this.#bot = bot;
    this.#inflight = inflight;
  }

  get loaded(): boolean {
    return this.#loaded !== undefined;
  }

  get registry(): Registry {
    return this.load().registry;
  }

  set coldStartSeconds(v: number) {
    this.#coldStart = v;
  }

  set initDurationSeconds(v: number) {
    this.#initDuration = v;
  }

  /** Counts one answered request. */
  observe(route: string, code: number, seconds: number): void {
    const m = this.#loaded;
    if (!m) {
      this.#pending.push({ route, code, seconds });
      if (this.#pending.length >= MAX_PENDING) this.load();
      return;
    }
    let r = m.routes.get(route);
    if (!r) m.routes.set(route, (r = { timer: m.duration.labels(route), codes: new Map() }));
    let counter = r.codes.get(code);
    if (!counter) r.codes.set(code, (counter = m.requests.labels(route, String(code))));
    counter.inc();
    r.timer.observe(seconds);
  }

  /** Counts one event sent to K_SINK. */
  delivered(result: 'ok' | 'error'): void {
    if (this.#loaded) this.#loaded.delivered.labels(result).inc();
    else this.#pendingDelivered[result]++;
  }

  /** Loads prom-client and makes the registry (once); what was counted before is counted in. */
  load(): Loaded {
    if (this.#loaded) return this.#loaded;
    const prom = require('prom-client') as Prom;
    const registry = new prom.Registry();
    registry.setDefaultLabels({ bot: this.#bot });
    prom.collectDefaultMetrics({ register: registry });
    const registers = [registry];
    const self = this;
    const m: Loaded = {
      registry,
      requests: new prom.Counter({ name: 'knbot_requests_total', help: 'Requests answered, by route and status code.', labelNames: ['route', 'code'], registers }),
      duration: new prom.Histogram({
        name: 'knbot_request_duration_seconds',
        help: 'Time from request to the end of the response, by route.',
        labelNames: ['route'],
        buckets: DURATION_BUCKETS,
        registers,
      }),
      delivered: new prom.Counter({ name: 'knbot_events_delivered_total', help: 'Events sent to K_SINK, by result.', labelNames: ['result'], registers }),
      routes: new Map(),
    };
    new prom.Gauge({
      name: 'knbot_inflight_requests',
      help: 'Requests being handled now (health and metrics excluded).',
      registers,
      collect() {
        this.set(self.#inflight());
      },
    });
    const settable = (name: string, help: string, read: () => number | undefined) =>
      new prom.Gauge({
        name,
        help,
        registers,
        collect() {
          const v = read();
          if (v !== undefined) this.set(v);
        },
      });
    settable('knbot_cold_start_seconds', 'Seconds from process start until ready.', () => this.#coldStart);
    settable('knbot_init_duration_seconds', "Seconds the bot's init took.", () => this.#initDuration);
    this.#loaded = m;
    for (const p of this.#pending) this.observe(p.route, p.code, p.seconds);
    this.#pending = [];
    if (this.#pendingDelivered.ok) m.delivered.labels('ok').inc(this.#pendingDelivered.ok);
    if (this.#pendingDelivered.error) m.delivered.labels('error').inc(this.#pendingDelivered.error);
    return m;
  }

  counter(name: string, help: string, labelNames: string[] = []): Counter<string> {
    const { registry } = this.load();
    const prom = require('prom-client') as Prom;
    return (registry.getSingleMetric(name) as Counter<string>) ?? new prom.Counter({ name, help, labelNames, registers: [registry] });
  }

  gauge(name: string, help: string, labelNames: string[] = []): Gauge<string> {
    const { registry } = this.load();
    const prom = require('prom-client') as Prom;
    return (registry.getSingleMetric(name) as Gauge<string>) ?? new prom.Gauge({ name, help, labelNames, registers: [registry] });
  }

  histogram(name: string, help: string, labelNames: string[] = [], buckets = DURATION_BUCKETS): Histogram<string> {
    const { registry } = this.load();
    const prom = require('prom-client') as Prom;
    return (registry.getSingleMetric(name) as Histogram<string>) ?? new prom.Histogram({ name, help, labelNames, buckets, registers: [registry] });
  }
}
