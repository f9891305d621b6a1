import { Gauge, Histogram, type Registry } from 'prom-client';
import { processRegistry } from '../../eventing/metrics.ts';
import { COLD_START_BUCKETS, INIT_BUCKETS } from '../../runtime/metrics.ts';
import type { BotSnapshot } from './scaler.ts';

/**
 * The local host's Prometheus metrics (DESIGN §8), and the recent figures the dashboard shows. The
 * host's process has one registry: the gateway and the broker, running in it, record on it too (the
 * requests by route, the deliveries by route and result, the store's pending and dead deliveries),
 * and the gateway serves it at `/metrics`.
 */
export class DevMetrics {
  readonly registry: Registry = processRegistry();
  readonly #coldStart = new Histogram({
    name: 'knbot_cold_start_seconds',
    help: 'Time from starting a bot instance to its readiness',
    labelNames: ['bot'],
    buckets: COLD_START_BUCKETS,
    registers: [this.registry],
  });
  readonly #initDuration = new Histogram({
    name: 'knbot_init_duration_seconds',
    help: "Time a bot instance's init took (from its listening to its ready log line)",
    labelNames: ['bot'],
    buckets: INIT_BUCKETS,
    registers: [this.registry],
  });
  readonly #recentColdStarts = new Map<string, { at: string; ms: number }[]>();
  readonly #deliveries = new Map<string, Record<string, number>>();

  /** `bots` is read at scrape time, for the gauges of instances and requests. */
  constructor(bots: () => BotSnapshot[]) {
    const registers = [this.registry];
    const perBot = (name: string, help: string, value: (s: BotSnapshot) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['bot'],
        registers,
        collect() {
          for (const s of bots()) this.set({ bot: s.name }, value(s));
        },
      });
    new Gauge({
      name: 'knbot_instances',
      help: 'Bot instances by state',
      labelNames: ['bot', 'state'],
      registers,
      collect() {
        for (const s of bots()) for (const state of ['starting', 'ready', 'draining']) this.set({ bot: s.name, state }, s.instances.filter((i) => i.state === state).length);
      },
    });
    perBot('knbot_inflight_requests', 'Requests in flight at bot instances', (s) => s.inFlight);
    perBot('knbot_activator_waiting_requests', 'Requests waiting for an instance to start or free up', (s) => s.held);
  }

  coldStart(bot: string, ms: number): void {
    this.#coldStart.observe({ bot }, ms / 1000);
    const list = this.#recentColdStarts.get(bot) ?? [];
    list.push({ at: new Date().toISOString(), ms: Math.round(ms) });
    this.#recentColdStarts.set(bot, list.slice(-50));
  }

  initDuration(bot: string, ms: number): void {
    this.#initDuration.observe({ bot }, ms / 1000);
  }

  coldStarts(bot: string): { at: string; ms: number }[] {
    return this.#recentColdStarts.get(bot) ?? [];
  }

  /** A broker delivery, for the dashboard (the broker counts it in `knbot_events_delivered_total` itself). */
  delivered(route: string, result: string): void {
    const counts = this.#deliveries.get(route) ?? {};
    counts[result] = (counts[result] ?? 0) + 1;
    this.#deliveries.set(route, counts);
  }

  deliveries(): Record<string, Record<string, number>> {
    return Object.fromEntries(this.#deliveries);
  }
}
