import type { CloudEvent } from '../cloudevent.ts';
import { CloudEventError } from '../errors.ts';
import { decodeHttp, hasCloudEventHeaders } from '../http/decode.ts';
import { encodeBinary } from '../http/encode.ts';
import { TTL_ATTRIBUTE, backoffMs, classify, deadLetterEvent, type DeliveryPolicy } from './delivery.ts';
import type { BrokerStore, NewDelivery, PendingDelivery } from './store.ts';

/** Where a route delivers, resolved. */
export interface RouteTarget {
  url: string;
  policy: DeliveryPolicy;
  ordered: boolean;
  deadLetterUrl?: string;
}

/** What the dispatcher needs from its broker. */
export interface DispatchHost {
  target(route: string): RouteTarget | undefined;
  /** Routes a reply the way ingress routes an event; undefined when its TTL is spent. */
  routeReply(reply: CloudEvent, ttl: unknown): { event: CloudEvent; deliveries: NewDelivery[] } | undefined;
  /** The URL replies are sent back to (for knativeerrordest when a reply cannot be taken). */
  ingressUrl(): string;
  onOutcome?(route: string, result: 'delivered' | 'retry' | 'dead' | 'dead-lettered'): void;
}

/** Dead-letter copies travel on a route of their own, named after the route that failed. */
export const DLS_SUFFIX = '#dls';

const MAX_INFLIGHT = 128;

/**
 * Delivers what the store holds (DESIGN §5, Knative's delivery semantics): each (event, route)
 * independently, POSTed in binary mode with `Prefer: reply`, retried per the route's policy, dead-
 * lettered when retries run out, a 200 carrying a CloudEvent taken back in as a new event.
 */
export class Dispatcher {
  readonly #store: BrokerStore;
  readonly #host: DispatchHost;
  readonly #inflight = new Set<string>();
  readonly #busyPartitions = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #pumping = false;
  #closed = false;

  constructor(store: BrokerStore, host: DispatchHost) {
    this.#store = store;
    this.#host = host;
  }

  /** Looks for due work now. */
  kick(): void {
    if (this.#closed || this.#pumping) return;
    this.#pumping = true;
    setImmediate(() => {
      this.#pumping = false;
      this.#pump();
    });
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #pump(): void {
    if (this.#closed) return;
    const room = MAX_INFLIGHT - this.#inflight.size;
    if (room > 0) {
      for (const d of this.#store.due(Date.now(), room + this.#inflight.size)) {
        const key = `${d.seq}\u0000${d.route}`;
        const partition = d.ordered ? `${d.route}\u0000${d.partition}` : undefined;
        if (this.#inflight.has(key) || (partition && this.#busyPartitions.has(partition))) continue;
        if (this.#inflight.size >= MAX_INFLIGHT) break;
        this.#inflight.add(key);
        if (partition) this.#busyPartitions.add(partition);
        void this.#deliver(d).finally(() => {
          this.#inflight.delete(key);
          if (partition) this.#busyPartitions.delete(partition);
          this.kick();
        });
      }
    }
    clearTimeout(this.#timer);
    const next = this.#store.nextDueAt();
    if (next !== undefined) this.#timer = setTimeout(() => this.kick(), Math.max(0, Math.min(next - Date.now(), 60_000)));
  }

  async #deliver(d: PendingDelivery): Promise<void> {
    const dls = d.route.endsWith(DLS_SUFFIX);
    const target = this.#host.target(dls ? d.route.slice(0, -DLS_SUFFIX.length) : d.route);
    if (!target) {
      this.#store.settle(d.seq, d.route, 'dead');
      return this.#host.onOutcome?.(d.route, 'dead');
    }
    const url = dls ? target.deadLetterUrl! : target.url;
    const { [TTL_ATTRIBUTE]: ttl, ...outgoing } = d.event;
    // The dead-letter sink gets the message as the broker holds it, TTL included (Knative's behaviour).
    const res = await send(url, dls ? d.event : (outgoing as CloudEvent), target.policy.timeoutMs, !dls);
    const verdict = classify(res.status);
    if (verdict === 'success') {
      if (dls) return this.#settled(d, 'delivered', undefined, 'delivered');
      let reply: CloudEvent[] = [];
      try {
        reply = res.status === 202 ? [] : replyEvents(res);
      } catch {
        reply = [];
      }
      if (reply.length === 0) return this.#settled(d, 'delivered', undefined, 'delivered');
      const routed = this.#host.routeReply(reply[0]!, ttl);
      if (routed) return this.#settled(d, 'delivered', routed, 'delivered');
      // The reply's TTL is spent: as in Knative, the reply is refused and the original dead-lettered.
      return this.#exhausted(d, target, this.#host.ingressUrl(), 400, new Uint8Array(Buffer.from('TTL exhausted')));
    }
    if (verdict === 'retry' && d.attempt < target.policy.retry) {
      this.#store.retryLater(d.seq, d.route, d.attempt + 1, Date.now() + backoffMs(target.policy, d.attempt));
      return this.#host.onOutcome?.(d.route, 'retry');
    }
    return this.#exhausted(d, target, url, res.status, res.body);
  }

  #exhausted(d: PendingDelivery, target: RouteTarget, destination: string, status: number | undefined, body: Uint8Array): void {
    if (d.route.endsWith(DLS_SUFFIX) || !target.deadLetterUrl) return this.#settled(d, 'dead', undefined, 'dead');
    const copy = deadLetterEvent(d.event, destination, status, body);
    this.#settled(d, 'delivered', { event: copy, deliveries: [{ route: d.route + DLS_SUFFIX, partition: null, ordered: false }] }, 'dead-lettered');
  }

  #settled(d: PendingDelivery, outcome: 'delivered' | 'dead', produced: Parameters<BrokerStore['settle']>[3], report: 'delivered' | 'dead' | 'dead-lettered'): void {
    this.#store.settle(d.seq, d.route, outcome, produced);
    this.#host.onOutcome?.(d.route, report);
    if (produced) this.kick();
  }
}

interface SendResult {
  status: number | undefined;
  headers: Record<string, string>;
  body: Uint8Array;
}

async function send(url: string, event: CloudEvent, timeoutMs: number, preferReply: boolean): Promise<SendResult> {
  const msg = encodeBinary(event);
  if (preferReply) msg.headers.prefer = 'reply';
  try {
    const res = await fetch(url, { method: 'POST', headers: msg.headers, body: msg.body, signal: AbortSignal.timeout(timeoutMs) });
    const body = new Uint8Array(await res.arrayBuffer());
    return { status: res.status, headers: Object.fromEntries(res.headers), body };
  } catch {
    // Network errors and timeouts: no status (retried; recorded as 500 if dead-lettered).
    return { status: undefined, headers: {}, body: new Uint8Array() };
  }
}

/** A response's CloudEvents: binary or structured mode (or a batch); none when it carries no event. */
function replyEvents(res: SendResult): CloudEvent[] {
  const ct = res.headers['content-type'];
  const ce = hasCloudEventHeaders(res.headers) || (ct !== undefined && /^\s*application\/cloudevents/i.test(ct));
  if (!ce) return [];
  try {
    return decodeHttp(res.headers, res.body).events;
  } catch (e) {
    if (e instanceof CloudEventError) return [];
    throw e;
  }
}
