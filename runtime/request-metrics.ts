// knbot_requests_total and knbot_request_duration_seconds, kept in plain arrays: recording one request
// is a bucket search and three increments. They reach a prom-client registry as metrics it can
// render (name, help, type and get(), as its own metric classes provide), at scrape time.

export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

interface RouteStats {
  /** Per bucket, requests that took at most its bound (and more than the previous one); last: +Inf. */
  buckets: Float64Array;
  sum: number;
  count: number;
  codes: Map<number, number>;
}

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

export interface RegistryMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  get(): Promise<{ name: string; help: string; type: string; values: MetricValue[]; aggregator: 'sum' }>;
  reset(): void;
}

export class RequestMetrics {
  readonly #routes = new Map<string, RouteStats>();
  readonly #bounds: readonly number[];

  constructor(bounds: readonly number[] = DURATION_BUCKETS) {
    this.#bounds = bounds;
  }

  observe(route: string, code: number, seconds: number): void {
    let r = this.#routes.get(route);
    if (!r) this.#routes.set(route, (r = { buckets: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0, codes: new Map() }));
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    r.buckets[i]!++;
    r.sum += seconds;
    r.count++;
    r.codes.set(code, (r.codes.get(code) ?? 0) + 1);
  }

  /** The two metrics, for `registry.registerMetric`. */
  metrics(): RegistryMetric[] {
    const requests = {
      name: 'knbot_requests_total',
      help: 'Requests answered, by route and status code.',
      type: 'counter' as const,
      values: () => [...this.#routes].flatMap(([route, r]) => [...r.codes].map(([code, value]) => ({ labels: { route, code: String(code) }, value }))),
    };
    const duration = {
      name: 'knbot_request_duration_seconds',
      help: 'Time from request to the end of the response, by route.',
      type: 'histogram' as const,
      values: () =>
        [...this.#routes].flatMap(([route, r]) => {
          const out: MetricValue[] = [];
          let cumulative = 0;
          this.#bounds.forEach((le, i) => {
            cumulative += r.buckets[i]!;
            out.push({ metricName: `${duration.name}_bucket`, labels: { le, route }, value: cumulative });
          });
          out.push({ metricName: `${duration.name}_bucket`, labels: { le: '+Inf', route }, value: r.count });
          out.push({ metricName: `${duration.name}_sum`, labels: { route }, value: r.sum });
          out.push({ metricName: `${duration.name}_count`, labels: { route }, value: r.count });
          return out;
        }),
    };
    return [requests, duration].map((m) => ({
      name: m.name,
      help: m.help,
      type: m.type,
      aggregator: 'sum' as const,
      get: async () => ({ name: m.name, help: m.help, type: m.type, values: m.values(), aggregator: 'sum' as const }),
      reset: () => this.#routes.clear(),
    }));
  }
}
