import { chatReplyEvent, conversationOfEvent } from '../chat.ts';
import type { CloudEvent } from '../cloudevent.ts';
import { CloudEventError } from '../errors.ts';
import { decodeHttp, hasCloudEventHeaders } from '../http/decode.ts';
import { encodeBinary } from '../http/encode.ts';
import type { Span } from '@opentelemetry/api';
import { formatTraceparent, otel, parseTraceparent, tracerRegistered } from '../trace-context.ts';
import { TTL_ATTRIBUTE, backoffMs, classify, deadLetterEvent, type DeliveryPolicy } from './delivery.ts';
import type { BrokerStore, NewDelivery, PendingDelivery } from './store.ts';

/** Where a route delivers, resolved. */
export interface RouteTarget {
  url: string;
  /** A canned reply: the broker answers the event itself. */
  reply?: { text: string };
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

/** `source` of the replies the broker answers itself. */
export const CANNED_REPLY_SOURCE = '/knbot/broker';

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
  /** Fresh deliveries handed over from ingress, in memory: the hot path never reads them back from disk. */
  readonly #ready: PendingDelivery[] = [];
  /** Deliveries this dispatcher holds (ready or in flight), by `seq route`: never dispatched twice. */
  readonly #owned = new Set<string>();
  readonly #busyPartitions = new Set<string>();
  #inflight = 0;
  /** The store may hold due deliveries not in memory: at start, after a retry falls due, after a reply. */
  #scanStore = true;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
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

  /**
   * Claims deliveries ingress has just committed (not yet on disk, not yet acknowledged), so that a
   * scan of the store in between does not dispatch them too. Ordered ones stay with the store.
   */
  reserve(deliveries: PendingDelivery[]): void {
    for (const d of deliveries) if (!d.ordered) this.#owned.add(key(d));
  }

  /** Gives back deliveries that were reserved but will not be offered (their fsync failed): the store has them. */
  release(deliveries: PendingDelivery[]): void {
    for (const d of deliveries) this.#owned.delete(key(d));
    this.#scanStore = true;
    this.kick();
  }

  /** Deliveries just stored by ingress, reserved at commit. Ordered ones go through the store, which keeps their order. */
  offer(deliveries: PendingDelivery[]): void {
    for (const d of deliveries) {
      if (d.ordered) {
        this.#scanStore = true;
        continue;
      }
      this.#owned.add(key(d));
      this.#ready.push(d);
    }
    this.kick();
  }

  get inflight(): number {
    return this.#inflight;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #pump(): void {
    if (this.#closed) return;
    while (this.#inflight < MAX_INFLIGHT && this.#ready.length) this.#start(this.#ready.shift()!);
    if (this.#inflight >= MAX_INFLIGHT || !this.#scanStore) return;
    this.#scanStore = false;
    const now = Date.now();
    // Rows this dispatcher holds (in flight, or ready in memory) are passed over before their body is parsed.
    const held = (seq: number, route: string) => this.#owned.has(`${seq} ${route}`);
    for (const d of this.#store.due(now, MAX_INFLIGHT + this.#owned.size, held)) {
      if (this.#inflight >= MAX_INFLIGHT) {
        this.#scanStore = true;
        break;
      }
      const partition = d.ordered ? `${d.route}\u0000${d.partition}` : undefined;
      if (this.#owned.has(key(d)) || (partition && this.#busyPartitions.has(partition))) continue;
      this.#owned.add(key(d));
      this.#start(d);
    }
    this.#wakeAt(this.#store.nextDueAfter(now));
  }

  #start(d: PendingDelivery): void {
    const partition = d.ordered ? `${d.route}\u0000${d.partition}` : undefined;
    if (partition) this.#busyPartitions.add(partition);
    this.#inflight++;
    void this.#deliver(d).finally(() => {
      this.#inflight--;
      this.#owned.delete(key(d));
      if (partition) {
        this.#busyPartitions.delete(partition);
        // The next event of that conversation is in the store.
        this.#scanStore = true;
      }
      this.kick();
    });
  }

  /** Scans the store again at `at` (a retry falling due). */
  #wakeAt(at: number | undefined): void {
    if (at === undefined || at >= this.#timerAt) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timerAt = Infinity;
      this.#scanStore = true;
      this.kick();
    }, Math.max(0, Math.min(at - Date.now(), 60_000)));
  }

  async #deliver(d: PendingDelivery): Promise<void> {
    const dls = d.route.endsWith(DLS_SUFFIX);
    const target = this.#host.target(dls ? d.route.slice(0, -DLS_SUFFIX.length) : d.route);
    if (!target) return this.#settled(d, 'dead', undefined, 'dead');
    if (target.reply && !dls) return this.#cannedReply(d, target.reply);
    const url = dls ? target.deadLetterUrl! : target.url;
    const { [TTL_ATTRIBUTE]: ttl, ...outgoing } = d.event;
    const span = deliverySpan(d);
    if (span) outgoing.traceparent = formatTraceparent(span.spanContext());
    // The dead-letter sink gets the message as the broker holds it, TTL included (Knative's behaviour).
    const res = await send(url, dls ? d.event : (outgoing as CloudEvent), target.policy.timeoutMs, !dls);
    const verdict = classify(res.status);
    if (span) {
      if (res.status !== undefined) span.setAttribute('http.response.status_code', res.status);
      if (verdict !== 'success') span.setStatus({ code: 2 });
      span.end();
    }
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
      const at = Date.now() + backoffMs(target.policy, d.attempt);
      await this.#store.retryLater(d.seq, d.route, d.attempt + 1, at);
      this.#wakeAt(at);
      return this.#host.onOutcome?.(d.route, 'retry');
    }
    return this.#exhausted(d, target, url, res.status, res.body);
  }

  /** An Event's canned reply (DESIGN §5): the reply event goes in as if a bot had answered, and no bot is woken. */
  #cannedReply(d: PendingDelivery, reply: { text: string }): Promise<void> {
    const answer = chatReplyEvent({ id: d.event.id, conversation: conversationOfEvent(d.event), event: d.event }, reply, CANNED_REPLY_SOURCE);
    const routed = this.#host.routeReply(answer, d.event[TTL_ATTRIBUTE]);
    return this.#settled(d, routed ? 'delivered' : 'dead', routed, routed ? 'delivered' : 'dead');
  }

  #exhausted(d: PendingDelivery, target: RouteTarget, destination: string, status: number | undefined, body: Uint8Array): Promise<void> {
    if (d.route.endsWith(DLS_SUFFIX) || !target.deadLetterUrl) return this.#settled(d, 'dead', undefined, 'dead');
    const copy = deadLetterEvent(d.event, destination, status, body);
    return this.#settled(d, 'delivered', { event: copy, deliveries: [{ route: d.route + DLS_SUFFIX, partition: null, ordered: false }] }, 'dead-lettered');
  }

  async #settled(d: PendingDelivery, outcome: 'delivered' | 'dead', produced: Parameters<BrokerStore['settle']>[3], report: 'delivered' | 'dead' | 'dead-lettered'): Promise<void> {
    if (!produced) {
      await this.#store.settle(d.seq, d.route, outcome);
      return this.#host.onOutcome?.(d.route, report);
    }
    // A reply or a dead-letter copy is handed over in memory as ingress does, claimed at commit so a
    // scan in between does not take it too; if the sync fails, the store keeps it for a later scan.
    let reserved: PendingDelivery[] = [];
    try {
      const stored = await this.#store.settle(d.seq, d.route, outcome, produced, (committed) => this.reserve((reserved = committed)));
      this.offer(stored);
    } catch (err) {
      this.release(reserved);
      throw err;
    }
    this.#host.onOutcome?.(d.route, report);
  }
}

/**
 * A span for one delivery attempt (when an OpenTelemetry SDK is registered), child of the event's
 * `traceparent`; the subscriber gets the span's own, so the trace shows the broker between sender
 * and subscriber, retries as separate attempts.
 */
function deliverySpan(d: PendingDelivery): Span | undefined {
  if (!tracerRegistered()) return undefined;
  const { trace, ROOT_CONTEXT } = otel();
  const parent = typeof d.event.traceparent === 'string' ? parseTraceparent(d.event.traceparent) : undefined;
  const ctx = parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
  // SpanKind.PRODUCER: the broker hands the event on to a consumer.
  return trace.getTracer('knbot-broker').startSpan(
    `deliver ${d.route}`,
    {
      kind: 3,
      attributes: {
        'messaging.system': 'knative',
        'messaging.destination.name': d.route,
        'messaging.message.id': d.event.id,
        'cloudevents.event_type': d.event.type,
        'knbot.delivery.attempt': d.attempt + 1,
      },
    },
    ctx,
  );
}

function key(d: PendingDelivery): string {
  return `${d.seq} ${d.route}`;
}

interface SendResult {
  status: number | undefined;
  headers: Record<string, string>;
  body: Uint8Array;
}

// Deliveries reuse connections: one keep-alive pool for every subscriber.
const { Agent, request } = process.getBuiltinModule('node:http');
const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function send(url: string, event: CloudEvent, timeoutMs: number, preferReply: boolean): Promise<SendResult> {
  const msg = encodeBinary(event);
  if (preferReply) msg.headers.prefer = 'reply';
  msg.headers['content-length'] = String(msg.body.length);
  // Network errors and timeouts: no status (retried; recorded as 500 if dead-lettered).
  const failed: SendResult = { status: undefined, headers: {}, body: new Uint8Array() };
  return new Promise((resolve) => {
    let req: ReturnType<typeof request>;
    try {
      req = request(url, { method: 'POST', headers: msg.headers, agent, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers[k] = v;
          resolve({ status: res.statusCode, headers, body: new Uint8Array(Buffer.concat(chunks)) });
        });
        res.on('error', () => resolve(failed));
      });
    } catch {
      return resolve(failed);
    }
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(failed));
    req.end(msg.body);
  });
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
