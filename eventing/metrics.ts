// Metrics that several of knbot's servers record (DESIGN §8), on a prom-client registry. It sits here,
// at the bottom of the dependency arrows, so the broker, the gateway, the operator and the dev host
// can all use it. Servers that share a process (`knbot dev`: the host, the gateway and the broker)
// share its one registry, and prom-client refuses a second metric of one name: a shared family is
// looked up before it is made, so each server records into the same series.
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The pod's request duration buckets (runtime/request-metrics.ts), so every process's histogram compares. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * A process's one registry, with Node's process metrics (CPU, memory, event loop lag, GC) on it: made
 * once, by the command that owns the process, and handed to its servers.
 */
export function processRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

type MetricClass = typeof Counter | typeof Histogram;

/** The metric `name` on `registry`, made by `make` if it is not there yet. */
function shared<T>(registry: Registry, kind: MetricClass, name: string, labelNames: readonly string[], make: () => T): T {
  const found = registry.getSingleMetric(name);
  if (!found) return make();
  const labels = (found as unknown as { labelNames?: readonly string[] }).labelNames ?? [];
  // Two servers disagreeing on a family's shape is a bug in one of them, not bad input.
  if (!(found instanceof kind) || labels.join() !== labelNames.join()) throw new Error(`metric ${name} is already registered with another type or labels (${labels.join(', ')})`);
  return found as T;
}

export function sharedCounter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  return shared(registry, Counter, name, labelNames, () => new Counter({ name, help, labelNames, registers: [registry] }));
}

export function sharedHistogram<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], buckets: number[] = DURATION_BUCKETS): Histogram<L> {
  return shared(registry, Histogram, name, labelNames, () => new Histogram({ name, help, labelNames, buckets, registers: [registry] }));
}

/** Records one answered request, as `knbot_requests_total{route,code}` and `knbot_request_duration_seconds{route}`. */
export type RequestObserver = (route: string, code: number, seconds: number) => void;

/**
 * The request families of a bot pod, by the same names and labels: `route` is a route's template or a
 * listener's name, never a raw path, so its values are bounded.
 */
export function requestObserver(registry: Registry): RequestObserver {
  const total = sharedCounter(registry, 'knbot_requests_total', 'Requests answered, by route and status code.', ['route', 'code']);
  const duration = sharedHistogram(registry, 'knbot_request_duration_seconds', 'Time from request to the end of the response, by route.', ['route']);
  return (route, code, seconds) => {
    total.inc({ route, code: String(code) });
    duration.observe({ route }, seconds);
  };
}

/**
 * `knbot_events_delivered_total{route,result}`: the broker counts each delivery attempt's outcome by
 * route (a Trigger), the gateway each bot output event it hands on by where it went (`ws` or a chat
 * platform).
 */
export function deliveredCounter(registry: Registry): Counter<'route' | 'result'> {
  return sharedCounter(registry, 'knbot_events_delivered_total', 'Events delivered, by route and result.', ['route', 'result']);
}

/** The registry's text, answered as Prometheus scrapes it; a failure to collect is a 500. */
export async function metricsText(registry: Registry): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  try {
    const body = await registry.metrics();
    return { status: 200, headers: { 'content-type': registry.contentType, 'content-length': String(Buffer.byteLength(body)) }, body };
  } catch (err) {
    const body = `could not collect metrics: ${(err as Error).message}\n`;
    return { status: 500, headers: { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) }, body };
  }
}
