import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What a bot's code may do with metrics: its own counters, gauges and histograms on the pod's registry. */
export interface BotMetrics {
  readonly registry: Registry;
  counter(name: string, help: string, labelNames?: string[]): Counter<string>;
  gauge(name: string, help: string, labelNames?: string[]): Gauge<string>;
  histogram(name: string, help: string, labelNames?: string[], buckets?: number[]): Histogram<string>;
}

const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The pod's metrics (DESIGN §8), labelled with the bot's name, plus Node's process metrics. */
export class PodMetrics implements BotMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'code'>;
  readonly duration: Histogram<'route'>;
  readonly inflight: Gauge;
  readonly coldStart: Gauge;
  readonly initDuration: Gauge;
  readonly delivered: Counter<'result'>;
  readonly #routes = new Map<string, { timer: { observe(v: number): void }; codes: Map<number, { inc(): void }> }>();

  constructor(bot: string) {
    this.registry.setDefaultLabels({ bot });
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.requests = new Counter({ name: 'knbot_requests_total', help: 'Requests answered, by route and status code.', labelNames: ['route', 'code'], registers });
    this.duration = new Histogram({
      name: 'knbot_request_duration_seconds',
      help: 'Time from request to the end of the response, by route.',
      labelNames: ['route'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.inflight = new Gauge({ name: 'knbot_inflight_requests', help: 'Requests being handled now (health and metrics excluded).', registers });
    this.coldStart = new Gauge({ name: 'knbot_cold_start_seconds', help: 'Seconds from process start until ready.', registers });
    this.initDuration = new Gauge({ name: 'knbot_init_duration_seconds', help: "Seconds the bot's init took.", registers });
    this.delivered = new Counter({ name: 'knbot_events_delivered_total', help: 'Events sent to K_SINK, by result.', labelNames: ['result'], registers });
  }

  /** Counts one answered request; label children are made once, the hot path only increments. */
  observe(route: string, code: number, seconds: number): void {
    let r = this.#routes.get(route);
    if (!r) this.#routes.set(route, (r = { timer: this.duration.labels(route), codes: new Map() }));
    let counter = r.codes.get(code);
    if (!counter) r.codes.set(code, (counter = this.requests.labels(route, String(code))));
    counter.inc();
    r.timer.observe(seconds);
  }

  counter(name: string, help: string, labelNames: string[] = []): Counter<string> {
    return (this.registry.getSingleMetric(name) as Counter<string>) ?? new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  gauge(name: string, help: string, labelNames: string[] = []): Gauge<string> {
    return (this.registry.getSingleMetric(name) as Gauge<string>) ?? new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  histogram(name: string, help: string, labelNames: string[] = [], buckets = DURATION_BUCKETS): Histogram<string> {
    return (this.registry.getSingleMetric(name) as Histogram<string>) ?? new Histogram({ name, help, labelNames, buckets, registers: [this.registry] });
  }
}
