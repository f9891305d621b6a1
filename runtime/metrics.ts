import { createRequire } from 'node:module';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DURATION_BUCKETS, RequestMetrics } from './request-metrics.ts';

/** Buckets of knbot_cold_start_seconds, in pods and in `knbot dev`. */
export const COLD_START_BUCKETS = [0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30];
/** Buckets of knbot_init_duration_seconds, in pods and in `knbot dev`. */
export const INIT_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30];

// The pod's metrics (DESIGN §8) on a prom-client registry. prom-client is loaded off the start-up path:
// when the bot or a scrape first needs it, or once the pod is ready and idle. Requests are recorded in
// RequestMetrics, which needs no prom-client, and events delivered are counted until it loads.

type Prom = typeof import('prom-client');
const require = createRequire(import.meta.url);
/** prom-client, loaded on first use (its CommonJS build, synchronously). */
const prom = (): Prom => require('prom-client') as Prom;

/** What a bot's code may do with metrics: its own counters, gauges and histograms on the pod's registry. */
export interface BotMetrics {
  readonly registry: Registry;
  counter(name: string, help: string, labelNames?: string[]): Counter<string>;
  gauge(name: string, help: string, labelNames?: string[]): Gauge<string>;
  histogram(name: string, help: string, labelNames?: string[], buckets?: number[]): Histogram<string>;
}

interface Loaded {
  registry: Registry;
  delivered: Counter<'result'>;
}

export class PodMetrics implements BotMetrics {
  readonly #bot: string;
  readonly #inflight: () => number;
  readonly #requests = new RequestMetrics();
  #loaded: Loaded | undefined;
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
    this.#requests.observe(route, code, seconds);
  }

  /** Counts one event sent to K_SINK. */
  delivered(result: 'ok' | 'error'): void {
    if (this.#loaded) this.#loaded.delivered.labels(result).inc();
    else this.#pendingDelivered[result]++;
  }

  /** Loads prom-client and makes the registry (once); what was counted before is counted in. */
  load(): Loaded {
    if (this.#loaded) return this.#loaded;
    const p = prom();
    const registry = new p.Registry();
    registry.setDefaultLabels({ bot: this.#bot });
    p.collectDefaultMetrics({ register: registry });
    const registers = [registry];
    const self = this;
    for (const metric of this.#requests.metrics()) registry.registerMetric(metric as never);
    const m: Loaded = {
      registry,
      delivered: new p.Counter({ name: 'knbot_events_delivered_total', help: 'Events sent to K_SINK, by result.', labelNames: ['result'], registers }),
    };
    new p.Gauge({
      name: 'knbot_inflight_requests',
      help: 'Requests being handled now (health and metrics excluded).',
      registers,
      collect() {
        this.set(self.#inflight());
      },
    });
    // One observation per process, as histograms: summed over a bot's pods they are the distribution of
    // its cold starts, as `knbot dev` reports them for its instances.
    const once = (name: string, help: string, buckets: number[], read: () => number | undefined) => {
      let observed = false;
      new p.Histogram({
        name,
        help,
        buckets,
        registers,
        collect() {
          const v = read();
          if (observed || v === undefined) return;
          this.observe(v);
          observed = true;
        },
      });
    };
    once('knbot_cold_start_seconds', 'Seconds from process start until ready.', COLD_START_BUCKETS, () => this.#coldStart);
    once('knbot_init_duration_seconds', "Seconds the bot's init took.", INIT_BUCKETS, () => this.#initDuration);
    this.#loaded = m;
    if (this.#pendingDelivered.ok) m.delivered.labels('ok').inc(this.#pendingDelivered.ok);
    if (this.#pendingDelivered.error) m.delivered.labels('error').inc(this.#pendingDelivered.error);
    return m;
  }

  counter(name: string, help: string, labelNames: string[] = []): Counter<string> {
    const { registry } = this.load();
    return (registry.getSingleMetric(name) as Counter<string>) ?? new (prom().Counter)({ name, help, labelNames, registers: [registry] });
  }

  gauge(name: string, help: string, labelNames: string[] = []): Gauge<string> {
    const { registry } = this.load();
    return (registry.getSingleMetric(name) as Gauge<string>) ?? new (prom().Gauge)({ name, help, labelNames, registers: [registry] });
  }

  histogram(name: string, help: string, labelNames: string[] = [], buckets = DURATION_BUCKETS): Histogram<string> {
    const { registry } = this.load();
    return (registry.getSingleMetric(name) as Histogram<string>) ?? new (prom().Histogram)({ name, help, labelNames, buckets, registers: [registry] });
  }
}
