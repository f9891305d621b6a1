import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import express, { type NextFunction, type Request, type Response } from 'express';
import { Registry } from 'prom-client';
import type { CloudEvent } from '../eventing/codec.ts';
import { metricsText } from '../eventing/metrics.ts';
import { refuseHandshake, trackHandshake } from '../runtime/sockets.ts';
import { HttpProblem } from '../runtime/problem.ts';
import { AuthError, type AuthOptions, Authenticator, type Principal, bearerMatches, credentialOf } from './auth.ts';
import { BrokerClient } from './broker-client.ts';
import { type PlatformEgress, egressHandler } from './egress.ts';
import { FrameError } from './envelope.ts';
import { type ChannelSecrets, GATEWAY_SOURCE, egressContexts, platformEgress, webhookRoutes } from './hooks.ts';
import { GatewayMetrics } from './metrics.ts';
import { PlatformTyping } from './platform-typing.ts';
import type { EgressContext } from './platforms/index.ts';
import { RateLimiter } from './rate-limit.ts';
import { type CannedReplies, replyRoutes } from './replies.ts';
import { type BotEntry, ChatSessions } from './sessions.ts';
import { GatewayProblem, chatOnce, chatRequest, json, openStream, problemOfFrameError } from './sse.ts';
import { DEFAULT_LIMITS, type GatewayStore, MemoryGatewayStore } from './store.ts';
import { chatPage } from './web/page.ts';
import { WsEndpoint } from './ws.ts';

const http = process.getBuiltinModule('node:http');

export interface GatewayLimits {
  maxFrameBytes: number;
  maxBufferedBytes: number;
  heartbeatMs: number;
  authTimeoutMs: number;
  /** Messages a second per client (session), with bursts of `clientBurst`. */
  clientRate: number;
  clientBurst: number;
  /** Messages a second per client IP, all its sockets together. */
  ipRate: number;
  ipBurst: number;
  maxRefusedInRow: number;
  sessionTtlMs: number;
  /** How long a chat platform's event id is remembered: at least its retry horizon. */
  dedupeTtlMs: number;
  /** How long `POST /v1/chat` waits for the answer. */
  chatTimeoutMs: number;
  maxBodyBytes: number;
}

export const DEFAULT_GATEWAY_LIMITS: GatewayLimits = {
  maxFrameBytes: 64 * 1024,
  maxBufferedBytes: 1 << 20,
  heartbeatMs: 25_000,
  authTimeoutMs: 10_000,
  clientRate: 10,
  clientBurst: 30,
  ipRate: 100,
  ipBurst: 300,
  maxRefusedInRow: 50,
  sessionTtlMs: DEFAULT_LIMITS.sessionTtlMs,
  dedupeTtlMs: 24 * 3600_000,
  chatTimeoutMs: 60_000,
  maxBodyBytes: 1 << 20,
};

export interface GatewayOptions {
  /** Where chat messages go: the broker's ingress. */
  brokerUrl: string;
  /** Bots clients may talk to. */
  bots: () => Iterable<BotEntry>;
  auth: AuthOptions;
  store?: GatewayStore;
  limits?: Partial<GatewayLimits>;
  /** Chat-platform channels of each bot (`bot.channels`): webhooks in at /hooks/<platform>/<bot>, replies out. */
  channels?: ChannelSecrets;
  /** The namespace of the bots (their events' `chattenant` for WebSocket clients). */
  namespace?: string;
  /** Environment for the platforms' API base URLs (KNBOT_<PLATFORM>_API_URL); default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Canned replies of Events, answered at /v1/replies/<namespace>/<event> (the Triggers' reply router). */
  cannedReplies?: CannedReplies;
  /** Bot output for chat platforms, instead of the platform adapters (tests, custom egress). */
  platforms?: PlatformEgress;
  /** Extra routes mounted before the gateway's own (webhooks, the dashboard). */
  routes?: express.Router;
  metrics?: GatewayMetricsSettings;
  log?: (msg: string, fields?: Record<string, unknown>) => void;
}

/** Where the gateway's metrics go, and who may read them. */
export interface GatewayMetricsSettings {
  /** The process's registry; default, one of the gateway's own without Node's process metrics (the process adds those). */
  registry?: Registry;
  /**
   * `GET /metrics` on the public port too; the egress port always serves it. Default: only when auth
   * is open (a local gateway). A gateway that asks clients who they are faces the internet, where
   * metrics would tell strangers about its traffic: it serves them on the cluster-internal egress port.
   */
  public?: boolean;
  /**
   * When set, `GET /metrics` on either port answers only `Authorization: Bearer <token>` (what
   * Prometheus sends with a scrape config's `authorization` credentials), and 401 to the rest.
   */
  token?: string;
  /** Report `knbot_inflight_requests` (default); `knbot dev` reports its own, per bot. */
  inflight?: boolean;
}

/**
 * The always-on gateway (DESIGN §7): WebSocket and SSE chat clients, `POST /v1/chat`, the chat page,
 * and an internal endpoint where the broker delivers what bots answer. Listens on two ports: the
 * public one, and `egressPort` (loopback or cluster-internal) for the broker's deliveries.
 */
export class Gateway {
  readonly #o: GatewayOptions;
  readonly #limits: GatewayLimits;
  readonly #store: GatewayStore;
  readonly #broker: BrokerClient;
  readonly #auth: Authenticator;
  readonly #sessions: ChatSessions;
  readonly #ws: WsEndpoint;
  readonly #server: Server;
  readonly #egress: Server;
  readonly #typing: PlatformTyping | undefined;
  readonly #metrics: GatewayMetrics;
  #ready = false;

  constructor(options: GatewayOptions) {
    this.#o = options;
    this.#limits = { ...DEFAULT_GATEWAY_LIMITS, ...options.limits };
    const log = options.log ?? (() => {});
    this.#store = options.store ?? new MemoryGatewayStore({ sessionTtlMs: this.#limits.sessionTtlMs });
    const store = this.#store;
    this.#metrics = new GatewayMetrics(options.metrics?.registry ?? new Registry(), {
      sockets: () => this.#ws.size,
      ...(store instanceof MemoryGatewayStore ? { sessions: () => store.sessions } : {}),
      ...(options.metrics?.inflight === false ? { inflight: false } : {}),
    });
    this.#broker = new BrokerClient(options.brokerUrl);
    this.#auth = new Authenticator(options.auth);
    this.#sessions = new ChatSessions({
      store: this.#store,
      send: (event: CloudEvent) => this.#broker.send(event),
      bot: (name) => this.bot(name),
      sessionTtlMs: this.#limits.sessionTtlMs,
      // A client resends within its session's life; past it, the id has nothing left to guard.
      dedupeTtlMs: this.#limits.sessionTtlMs,
      connection: { maxBufferedBytes: this.#limits.maxBufferedBytes, gapTimeoutMs: 250 },
      log,
    });
    this.#ws = new WsEndpoint({
      auth: this.#auth,
      sessions: this.#sessions,
      limits: this.#limits,
      perClient: new RateLimiter(this.#limits.clientRate, this.#limits.clientBurst),
      perIp: new RateLimiter(this.#limits.ipRate, this.#limits.ipBurst),
      log,
    });
    const send = (event: CloudEvent) => this.#broker.send(event);
    let platforms = options.platforms;
    if (options.channels) {
      // One set of contexts (one rate limiter) for replies and typing indicators alike; every call to a
      // platform's API is counted.
      const contexts = egressContexts(options.env ?? process.env, log, this.#store.egressLimiter?.());
      const counted = new Map<string, EgressContext>();
      const context: typeof contexts = (platform) => {
        let c = counted.get(platform);
        if (!c) counted.set(platform, (c = { ...contexts(platform), fetch: this.#metrics.countingFetch(platform, contexts(platform).fetch) }));
        return c;
      };
      this.#typing = new PlatformTyping({ context, timeoutSeconds: (bot) => this.bot(bot)?.timeoutSeconds, log });
      platforms ??= platformEgress({ store: this.#store, send, channels: options.channels, context, typing: this.#typing, source: GATEWAY_SOURCE, log });
    }
    // WebSocket handshakes come to 'upgrade'; any other Upgrade header (h2c…) is a plain request.
    this.#server = http.createServer({ shouldUpgradeCallback: (req) => req.method === 'GET' && /^websocket$/i.test(req.headers.upgrade ?? '') }, this.#app());
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Until ws takes the socket, an error on it (a client gone) must not reach the process.
      socket.on('error', () => socket.destroy());
      const path = new URL(req.url ?? '/', 'http://gateway').pathname;
      const done = this.#metrics.started();
      trackHandshake(socket, (code) => done(path === '/v1/ws' ? '/v1/ws' : 'unmatched', code));
      if (path === '/v1/ws') return this.#ws.upgrade(req, socket, head);
      refuseHandshake(socket, new HttpProblem(404, 'not_found', 'Not found', `no WebSocket endpoint at ${path}: it is /v1/ws`));
    });
    const egress = egressHandler(this.#sessions, platforms, log, (route, result) => this.#metrics.delivered(route, result));
    this.#egress = http.createServer((req, res) => {
      if (req.method === 'GET' && (req.url ?? '').split('?')[0] === '/metrics') return void this.#sendMetrics(req, res);
      if (req.method === 'POST') {
        const done = this.#metrics.started();
        res.once('close', () => done('egress', res.statusCode));
      }
      egress(req, res);
    });
  }

  bot(name: string): BotEntry | undefined {
    for (const b of this.#o.bots()) if (b.name === name) return b;
    return undefined;
  }

  get sockets(): number {
    return this.#ws.size;
  }

  get authenticator(): Authenticator {
    return this.#auth;
  }

  /** Starts both listeners; resolves their ports. */
  async start(port: number, host = '127.0.0.1', egressPort = 0, egressHost = '127.0.0.1'): Promise<{ port: number; egressPort: number }> {
    const listen = (server: Server, p: number, h: string) =>
      new Promise<number>((resolve, reject) => {
        server.once('error', reject);
        server.listen(p, h, () => resolve((server.address() as { port: number }).port));
      });
    const bound = { port: await listen(this.#server, port, host), egressPort: await listen(this.#egress, egressPort, egressHost) };
    this.#ready = true;
    return bound;
  }

  /** SIGTERM: not ready, sockets closed with 1001 and a resume hint, then the listeners. */
  async close(): Promise<void> {
    this.#ready = false;
    await this.#ws.close();
    const stop = (s: Server) =>
      new Promise<void>((resolve) => {
        if (!s.listening) return resolve();
        s.close(() => resolve());
        s.closeIdleConnections();
        setTimeout(() => s.closeAllConnections(), 2000).unref();
      });
    await Promise.all([stop(this.#server), stop(this.#egress)]);
    this.#broker.close();
    this.#typing?.close();
    if (!this.#o.store) await this.#store.close();
  }

  async #sendMetrics(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const token = this.#o.metrics?.token;
    if (token !== undefined && !bearerMatches(req.headers.authorization, token)) {
      const body = JSON.stringify({ type: 'urn:knbot:problem:unauthorized', title: 'unauthorized', status: 401, detail: 'metrics need the bearer token set in KNBOT_METRICS_TOKEN' });
      return void res.writeHead(401, { 'content-type': 'application/problem+json', 'www-authenticate': 'Bearer', 'content-length': Buffer.byteLength(body) }).end(body);
    }
    const { status, headers, body } = await metricsText(this.#metrics.registry);
    if (status !== 200) this.#o.log?.('metrics failed', { error: body.trim() });
    res.writeHead(status, headers).end(body);
  }

  #principal(req: Request): Principal {
    try {
      return this.#auth.verify(credentialOf(req.headers.authorization, new URL(req.url, 'http://gateway').searchParams));
    } catch (err) {
      if (err instanceof AuthError) throw new GatewayProblem(401, 'unauthorized', err.message, { 'www-authenticate': 'Bearer' });
      throw err;
    }
  }

  #app(): express.Express {
    const app = express();
    app.disable('x-powered-by');
    app.set('etag', false);
    app.get('/health/readiness', (_req, res) => void res.status(this.#ready ? 200 : 503).type('text/plain').send(this.#ready ? 'ok' : 'not ready'));
    app.get('/health/liveness', (_req, res) => void res.type('text/plain').send('ok'));
    if (this.#o.metrics?.public ?? this.#auth.open) app.get('/metrics', (req, res) => void this.#sendMetrics(req, res));
    // Every other request is timed and counted under its route's template (`/hooks/:platform/:bot`),
    // known once a route has taken it; what no route took counts as `unmatched`.
    app.use((req, res, next) => {
      if (req.path.startsWith('/health/') || req.path === '/metrics') return next();
      const done = this.#metrics.started();
      res.once('close', () => done(typeof req.route?.path === 'string' ? req.route.path : 'unmatched', res.statusCode));
      next();
    });
    if (this.#o.routes) app.use(this.#o.routes);
    if (this.#o.cannedReplies) app.use(replyRoutes(this.#o.cannedReplies, this.#limits.maxBodyBytes));
    if (this.#o.channels) {
      app.use(
        webhookRoutes({
          store: this.#store,
          send: (event) => this.#broker.send(event),
          channels: this.#o.channels,
          namespace: this.#o.namespace ?? 'default',
          maxBodyBytes: this.#limits.maxBodyBytes,
          dedupeTtlMs: this.#limits.dedupeTtlMs,
          ...(this.#typing ? { typing: this.#typing } : {}),
          log: this.#o.log ?? (() => {}),
        }),
      );
    }
    app.get('/', (_req, res) => void res.type('html').send(chatPage.html));
    app.get('/chat.js', (_req, res) => void res.type('text/javascript').send(chatPage.script));
    app.get('/v1/bots', (req, res) => {
      const principal = this.#principal(req);
      const bots = [...this.#o.bots()].filter((b) => !principal.bots || principal.bots.includes(b.name)).map((b) => ({ name: b.name, namespace: b.namespace }));
      res.json({ bots, auth: this.#auth.open ? 'none' : 'required' });
    });
    app.get('/v1/stream', async (req, res) => {
      const principal = this.#principal(req);
      res.once('close', this.#metrics.streamOpened());
      await openStream(this.#sessions, principal, req, res, this.#limits.heartbeatMs);
    });
    const body = express.json({ limit: this.#limits.maxBodyBytes, type: () => true });
    app.post('/v1/chat', body, async (req, res) => {
      const principal = this.#principal(req);
      const { frame, sessionId } = chatRequest(req.body);
      if (sessionId === undefined) return chatOnce(this.#sessions, principal, frame, req, res, this.#limits.chatTimeoutMs);
      if (!(await this.#sessions.owns(sessionId, principal.id))) throw new GatewayProblem(404, 'unknown_session', 'no such session (it expired, or it belongs to someone else)');
      try {
        await this.#sessions.message(sessionId, principal, frame);
      } catch (err) {
        throw err instanceof FrameError ? problemOfFrameError(err) : err;
      }
      json(res, 202, { id: frame.id, sessionId });
    });
    app.post('/v1/tickets', body, (req, res) => {
      const principal = this.#principal(req);
      if (!this.#auth.issuesTickets) throw new GatewayProblem(404, 'no_tickets', 'this gateway has no ticket secret configured');
      const ttl = Number((req.body as { ttlSeconds?: unknown } | undefined)?.ttlSeconds ?? 300);
      json(res, 201, this.#auth.issue(principal, Number.isFinite(ttl) ? ttl : 300));
    });
    app.use((_req: Request, res: Response) => json(res, 404, { type: 'urn:knbot:problem:not_found', title: 'not found', status: 404, detail: 'no such path on the gateway' }));
    app.use((err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
      if (res.headersSent) return void res.end();
      if (err instanceof GatewayProblem) return json(res, err.status, { type: `urn:knbot:problem:${err.code}`, title: err.code.replace(/_/g, ' '), status: err.status, detail: err.message }, err.headers);
      // body-parser's errors: malformed JSON, too large.
      const status = err.status && err.status >= 400 && err.status < 500 ? err.status : 500;
      const code = err.type === 'entity.too.large' ? 'body_too_large' : err.type === 'entity.parse.failed' ? 'malformed_json' : status === 500 ? 'internal' : 'bad_request';
      if (status === 500) this.#o.log?.('request failed', { error: err.message });
      json(res, status, { type: `urn:knbot:problem:${code}`, title: code.replace(/_/g, ' '), status, detail: status === 500 ? 'the gateway failed to handle the request' : err.message });
    });
    return app;
  }
}

export type { ServerResponse };
