import { Gauge, type Registry } from 'prom-client';
import { type RequestObserver, deliveredCounter, requestObserver } from '../metrics.ts';

export type DeliveryResult = 'delivered' | 'retry' | 'dead' | 'dead-lettered';

/**
 * The broker's metrics (DESIGN §8): ingress requests (`route="ingress"`), each delivery's outcome by
 * route, and what the store holds, read from it at scrape time.
 */
export class BrokerMetrics {
  readonly registry: Registry;
  readonly #requests: RequestObserver;
  readonly #delivered;

  constructor(registry: Registry, store: { pending(): number; dead(): number }) {
    this.registry = registry;
    this.#requests = requestObserver(registry);
    this.#delivered = deliveredCounter(registry);
    const registers = [registry];
    new Gauge({
      name: 'knbot_broker_pending_deliveries',
      help: 'Deliveries waiting in the store: due, being attempted, or waiting for a retry.',
      registers,
      collect() {
        this.set(store.pending());
      },
    });
    new Gauge({
      name: 'knbot_broker_dead_deliveries',
      help: 'Deliveries that failed for good and reached no dead-letter sink, kept in the store.',
      registers,
      collect() {
        this.set(store.dead());
      },
    });
  }

  ingress(code: number, seconds: number): void {
    this.#requests('ingress', code, seconds);
  }

  delivered(route: string, result: DeliveryResult): void {
    this.#delivered.inc({ route, result });
  }
}
