import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BotSnapshot } from './scaler.ts';

/** The local host's Prometheus metrics (DESIGN §8), and the recent figures the dashboard shows. */
export class DevMetrics {
  readonly #registry = new Registry();
  readonly #coldStart = new Histogram({
    name: 'knbot_cold_start_seconds',
    help: 'Time from starting a bot instance to its readiness',
    labelNames: ['bot'],
    buckets: [0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10, 30],
    registers: [this.#registry],
  });
  readonly #instances = new Gauge({ name: 'knbot_instances', help: 'Bot instances by state', labelNames: ['bot', 'state'], registers: [this.#registry] });
  readonly #inFlight = new Gauge({ name: 'knbot_inflight_requests', help: 'Requests in flight at bot instances', labelNames: ['bot'], registers: [this.#registry] });
  readonly #held = new Gauge({ name: 'knbot_activator_waiting_requests', help: 'Requests waiting for an instance to start or free up', labelNames: ['bot'], registers: [this.#registry] });
  readonly #delivered = new Counter({ name: 'knbot_events_delivered_total', help: 'Broker deliveries by route and result', labelNames: ['route', 'result'], registers: [this.#registry] });
  readonly #recentColdStarts = new Map<string, { at: string; ms: number }[]>();
  readonly #deliveries = new Map<string, Record<string, number>>();

  constructor() {
    collectDefaultMetrics({ register: this.#registry });
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  coldStart(bot: string, ms: number): void {
    this.#coldStart.observe({ bot }, ms / 1000);
    const list = this.#recentColdStarts.get(bot) ?? [];
    list.push({ at: new Date().toISOString(), ms: Math.round(ms) });
    this.#recentColdStarts.set(bot, list.slice(-50));
  }

  coldStarts(bot: string): { at: string; ms: number }[] {
    return this.#recentColdStarts.get(bot) ?? [];
  }

  delivered(route: string, result: string): void {
    this.#delivered.inc({ route, result });
    const counts = this.#deliveries.get(route) ?? {};
    counts[result] = (counts[result] ?? 0) + 1;
    this.#deliveries.set(route, counts);
  }

  deliveries(): Record<string, Record<string, number>> {
    return Object.fromEntries(this.#deliveries);
  }

  observe(s: BotSnapshot): void {
    for (const state of ['starting', 'ready', 'draining']) this.#instances.set({ bot: s.name, state }, s.instances.filter((i) => i.state === state).length);
    this.#inFlight.set({ bot: s.name }, s.inFlight);
    this.#held.set({ bot: s.name }, s.held);
  }

  text(): Promise<string> {
    return this.#registry.metrics();
  }
}
