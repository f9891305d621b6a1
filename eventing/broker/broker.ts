import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import type { CloudEvent } from '../cloudevent.ts';
import { CloudEventError } from '../errors.ts';
import { decodeHttp } from '../http/decode.ts';
import type { FilterSpec } from '../filters/types.ts';
import type { DeliverySpec } from '../model/types.ts';
import { metricsText } from '../metrics.ts';
import { Router } from '../router/router.ts';
import { MAX_TTL, TTL_ATTRIBUTE, deliveryPolicy, nextTtl } from './delivery.ts';
import { DLS_SUFFIX, Dispatcher, type RouteTarget } from './dispatcher.ts';
import { BrokerMetrics } from './metrics.ts';
import { BrokerStore, type NewDelivery, type PendingDelivery } from './store.ts';

const { createServer } = process.getBuiltinModule('node:http');
const GC_MS = 30_000;

/**
 * A subscription of the local broker: a compiled Trigger with its subscriber resolved to a URL, or,
 * for an Event with a canned reply, the reply the broker answers itself (no bot is woken).
 */
export interface BrokerRoute {
  id: string;
  filters: FilterSpec;
  url?: string;
  reply?: { text: string };
  delivery?: DeliverySpec;
  /** Deliver one conversation's events (same `partitionkey`, else `subject`) one at a time, in order. */
  ordered?: boolean;
  deadLetterUrl?: string;
}

export interface BrokerOptions {
  /** Where the queue lives (a SQLite file in it); what is acknowledged there survives restarts. */
  stateDir: string;
  port: number;
  host?: string;
  routes: BrokerRoute[];
  maxBodyBytes?: number;
  maxTtl?: number;
  /**
   * Where its metrics go, served at `GET /metrics`: the process's registry (`knbot dev` shares the
   * host's); default, one of its own without Node's process metrics, which the process adds.
   */
  registry?: Registry;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

interface Compiled {
  router: Router<BrokerRoute>;
  targets: Map<string, RouteTarget>;
}

/**
 * The local broker (DESIGN §5, §9): ingress answers 202 only once the event is committed to disk,
 * then every matching route gets it independently, with Knative's delivery semantics.
 */
export class LocalBroker {
  readonly #options: BrokerOptions;
  readonly #store: BrokerStore;
  readonly #dispatcher: Dispatcher;
  readonly #server: Server;
  readonly #metrics: BrokerMetrics;
  #routes: Compiled;
  #port = 0;
  #gc: NodeJS.Timeout | undefined;

  constructor(options: BrokerOptions) {
    this.#options = options;
    mkdirSync(options.stateDir, { recursive: true });
    this.#store = new BrokerStore(join(options.stateDir, 'broker.db'));
    this.#routes = compile(options.routes);
    this.#metrics = new BrokerMetrics(options.registry ?? new Registry(), { pending: () => this.pending(), dead: () => this.dead() });
    this.#dispatcher = new Dispatcher(this.#store, {
      target: (id) => this.#routes.targets.get(id),
      routeReply: (reply, ttl) => {
        const next = nextTtl(ttl, this.#maxTtl);
        if (next <= 0) return undefined;
        const event = this.#stamp(reply, next);
        return { event, deliveries: this.#deliveries(event) };
      },
      ingressUrl: () => `http://127.0.0.1:${this.#port}/`,
      onOutcome: (route, result) => {
        this.#metrics.delivered(route, result);
        options.log?.('delivery', { route, result });
      },
    });
    this.#server = createServer((req, res) => this.#onRequest(req, res));
  }

  get #maxTtl(): number {
    return this.#options.maxTtl ?? MAX_TTL;
  }

  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.port, this.#options.host ?? '127.0.0.1', () => resolve());
    });
    this.#port = (this.#server.address() as { port: number }).port;
    // Events whose deliveries are all done leave the store now and then.
    this.#gc = setInterval(() => this.#store.collect(), GC_MS).unref();
    // Whatever was acknowledged before a restart is delivered now.
    this.#dispatcher.kick();
    return this.#port;
  }

  /** Replaces the routes (bindings changed); deliveries already queued keep their route ids. */
  setRoutes(routes: BrokerRoute[]): void {
    this.#routes = compile(routes);
    this.#dispatcher.kick();
  }

  pending(): number {
    return this.#store.count('pending');
  }

  dead(): number {
    return this.#store.count('dead');
  }

  async close(): Promise<void> {
    clearInterval(this.#gc);
    this.#dispatcher.close();
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    this.#store.close();
  }

  #stamp(event: CloudEvent, ttl: number): CloudEvent {
    return { ...event, [TTL_ATTRIBUTE]: ttl, knativearrivaltime: new Date().toISOString() };
  }

  #deliveries(event: CloudEvent): NewDelivery[] {
    const partition = typeof event.partitionkey === 'string' ? event.partitionkey : (event.subject ?? null);
    return this.#routes.router.match(event).map((r) => ({ route: r.id, partition: r.target.ordered ? partition : null, ordered: !!r.target.ordered }));
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (req.method === 'GET' && (req.url === '/health' || req.url === '/healthz')) return void res.writeHead(200, { 'content-length': '2' }).end('ok');
    if (req.method === 'GET' && req.url === '/metrics') {
      return void metricsText(this.#metrics.registry).then(({ status, headers, body }) => res.writeHead(status, headers).end(body));
    }
    if (req.method !== 'POST') return problem(res, 405, 'method_not_allowed', 'POST CloudEvents to the broker');
    const started = performance.now();
    res.once('close', () => this.#metrics.ingress(res.statusCode, (performance.now() - started) / 1000));
    const limit = this.#options.maxBodyBytes ?? 1 << 20;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (size > limit) return problem(res, 413, 'body_too_large', `the body exceeds ${limit} bytes`, true);
      let events: CloudEvent[];
      try {
        events = decodeHttp(req.headers, Buffer.concat(chunks, size)).events;
      } catch (e) {
        if (e instanceof CloudEventError) return problem(res, e.status, e.code, e.message);
        throw e;
      }
      // A batch is taken whole or not at all: check every TTL before storing anything.
      const ttls = events.map((e) => nextTtl(e[TTL_ATTRIBUTE], this.#maxTtl));
      if (ttls.some((t) => t <= 0)) return problem(res, 400, 'ttl_exhausted', `${TTL_ATTRIBUTE} is spent: the event has looped too often`);
      const stored: Promise<PendingDelivery[]>[] = [];
      for (const [i, e] of events.entries()) {
        const event = this.#stamp(e, ttls[i]!);
        const deliveries = this.#deliveries(event);
        if (!deliveries.length) continue;
        let reserved: PendingDelivery[] = [];
        stored.push(
          this.#store
            .append(event, deliveries, (committed) => this.#dispatcher.reserve((reserved = committed)))
            .catch((err: Error) => {
              // Committed but not synced: the store holds it, so its scan delivers it; nothing is lost.
              this.#dispatcher.release(reserved);
              throw err;
            }),
        );
      }
      Promise.all(stored).then(
        (pending) => {
          res.writeHead(202, { 'content-length': '0' }).end();
          for (const p of pending) this.#dispatcher.offer(p);
        },
        (err: Error) => problem(res, 500, 'store_failed', `the event could not be stored: ${err.message}`),
      );
    });
  }
}

function compile(routes: BrokerRoute[]): Compiled {
  const targets = new Map<string, RouteTarget>();
  for (const r of routes) {
    if (r.id.endsWith(DLS_SUFFIX)) throw new Error(`route id ${r.id} may not end in ${DLS_SUFFIX}`);
    if ((r.url === undefined) === (r.reply === undefined)) throw new Error(`route ${r.id} needs a url or a reply, not both`);
    targets.set(r.id, {
      url: r.url ?? `reply:${r.id}`,
      policy: deliveryPolicy(r.delivery),
      ordered: !!r.ordered,
      ...(r.reply ? { reply: r.reply } : {}),
      ...(r.deadLetterUrl ? { deadLetterUrl: r.deadLetterUrl } : {}),
    });
  }
  return { router: new Router(routes.map((r) => ({ id: r.id, filters: r.filters, target: r }))), targets };
}

function problem(res: ServerResponse, status: number, code: string, detail: string, close = false): void {
  const body = JSON.stringify({ type: `urn:knbot:problem:${code}`, title: code.replace(/_/g, ' '), status, detail });
  const headers: Record<string, string> = { 'content-type': 'application/problem+json', 'content-length': String(Buffer.byteLength(body)) };
  if (close) headers.connection = 'close';
  res.writeHead(status, headers).end(body);
}
