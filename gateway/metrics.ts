import { Counter, Gauge, type Registry } from 'prom-client';
import { type RequestObserver, deliveredCounter, requestObserver } from '../eventing/metrics.ts';
import type { ChatPlatform } from './platforms/types.ts';

/**
 * What became of one bot output event at the egress port: handed to its socket or stream
 * (`delivered`), or to its chat platform; no session of this gateway asked for it (`no_session`); not
 * for anyone here (`ignored`); failed so the broker retries (`failed`), or for good (`rejected`).
 */
export type EgressResult = 'delivered' | 'no_session' | 'ignored' | 'failed' | 'rejected';

/** Where an output event went, as a label: a bounded set, whatever the event says. */
export type EgressRoute = 'ws' | ChatPlatform | 'other';

/** One HTTP attempt at a platform's API, by its answer. */
export type PlatformResult = 'ok' | 'rate_limited' | 'client_error' | 'server_error' | 'network_error';

export interface GatewayMetricsOptions {
  /** Open WebSockets, read at scrape time. */
  sockets: () => number;
  /** Sessions the store holds, when it can count them cheaply (the memory store; not Redis). */
  sessions?: () => number;
  /** Report `knbot_inflight_requests` (default); `knbot dev` reports its own, per bot. */
  inflight?: boolean;
}

/**
 * The gateway's metrics (DESIGN §8): its HTTP routes by template, in-flight requests, open client
 * connections by transport, bot output handed on by the egress port, and platform API calls.
 * Nothing is labelled with a value a client chooses: routes are templates, platforms a fixed set.
 */
export class GatewayMetrics {
  readonly registry: Registry;
  readonly #requests: RequestObserver;
  readonly #delivered: Counter<'route' | 'result'>;
  readonly #platform: Counter<'platform' | 'result'>;
  #inflight = 0;
  #streams = 0;

  constructor(registry: Registry, options: GatewayMetricsOptions) {
    this.registry = registry;
    this.#requests = requestObserver(registry);
    this.#delivered = deliveredCounter(registry);
    const registers = [registry];
    this.#platform = new Counter({ name: 'knbot_platform_requests_total', help: "Calls to chat platforms' APIs (each attempt), by platform and answer.", labelNames: ['platform', 'result'], registers });
    const self = this;
    if (options.inflight ?? true) {
      new Gauge({
        name: 'knbot_inflight_requests',
        help: 'HTTP requests being answered now (open SSE streams included; health and metrics not).',
        registers,
        collect() {
          this.set(self.#inflight);
        },
      });
    }
    new Gauge({
      name: 'knbot_gateway_connections',
      help: 'Open client connections, by transport (ws, sse).',
      labelNames: ['transport'],
      registers,
      collect() {
        this.set({ transport: 'ws' }, options.sockets());
        this.set({ transport: 'sse' }, self.#streams);
      },
    });
    const sessions = options.sessions;
    if (sessions) {
      new Gauge({
        name: 'knbot_gateway_sessions',
        help: 'Client sessions this gateway holds (live, or expired and not yet swept).',
        registers,
        collect() {
          this.set(sessions());
        },
      });
    }
  }

  /** A request has come in; `done` counts it answered under `route` (a template, never the raw path). */
  started(): (route: string, code: number) => void {
    const t0 = performance.now();
    this.#inflight++;
    return (route, code) => {
      this.#inflight--;
      this.#requests(route, code, (performance.now() - t0) / 1000);
    };
  }

  /** An SSE stream opened; the function closes it. */
  streamOpened(): () => void {
    this.#streams++;
    let open = true;
    return () => {
      if (open) this.#streams--;
      open = false;
    };
  }

  delivered(route: EgressRoute, result: EgressResult): void {
    this.#delivered.inc({ route, result });
  }

  platformRequest(platform: ChatPlatform, result: PlatformResult): void {
    this.#platform.inc({ platform, result });
  }

  /** A `fetch` that counts each call to `platform`'s API by its answer. */
  countingFetch(platform: ChatPlatform, inner: typeof fetch): typeof fetch {
    return async (input, init) => {
      let res: Response;
      try {
        res = await inner(input, init);
      } catch (err) {
        this.platformRequest(platform, 'network_error');
        throw err;
      }
      const s = res.status;
      this.platformRequest(platform, s < 400 ? 'ok' : s === 429 ? 'rate_limited' : s < 500 ? 'client_error' : 'server_error');
      return res;
    };
  }
}
