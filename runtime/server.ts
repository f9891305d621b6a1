import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Span } from '@opentelemetry/api';
import {
  BATCH_CONTENT_TYPE,
  type CloudEvent,
  CloudEventError,
  decodeHttp,
  encodeBatch,
  hasCloudEventHeaders,
} from '../eventing/codec.ts';
import { type PendingBody, bodyTimeout, readBody, readBodyAsync } from './body.ts';
import type { Bot, ChatMessage } from './bot.ts';
import { ACTION_INVOKED, MESSAGE_RECEIVED, STREAM_EXTENSION } from '../eventing/chat.ts';
import { ChunkStream } from './chunks.ts';
import { collectReply, conversationKey, eventSessionKey, isStreamed, messageFromChatRequest, messageFromEvent, sessionKey } from './chat.ts';
import type { ServeConfig } from './config.ts';
import { answerFunc, funcEvent } from './func.ts';
import type { LoadedModule } from './load.ts';
import type { Logger } from './log.ts';
import { type MaybePromise, andThen, isPromiseLike } from './maybe.ts';
import type { PodMetrics } from './metrics.ts';
import { HttpProblem, sendProblem } from './problem.ts';
import type { SessionStore } from './session-store.ts';
import { sendToSink } from './sink.ts';
import { refuseHandshake, trackHandshake } from './sockets.ts';
import { Tracing, failSpan } from './tracing.ts';
import { Turns } from './turn.ts';
import { IN_PROGRESS } from './turn-policy.ts';
import { eventReply, messageReply } from './replies.ts';
import { NO_CONTENT, answerOne, chatAnswer, health, isCloudEventsMediaType, sse } from './respond.ts';
import { HttpWork, MessageWork, type Work } from './work.ts';
import type { DirectSockets } from './ws.ts';

export interface PodDeps {
  log: Logger;
  metrics: PodMetrics;
  sessions: SessionStore;
}

// The CommonJS module object: an ESM import of node:http builds a facade that evaluates every export,
// and one of them loads undici (fetch), a quarter of the pod's start-up, for nothing it uses.
const { createServer } = process.getBuiltinModule('node:http');

const SWEEP_MS = 100;

/** `knbot serve`: the pod's HTTP server (DESIGN §4.1). */
export class PodServer {
  readonly #config: ServeConfig;
  readonly #module: LoadedModule;
  readonly #log: Logger;
  readonly #metrics: PodMetrics;
  readonly #sessions: SessionStore;
  readonly #tracing: Tracing;
  readonly #turns: Turns;
  readonly #server: Server<typeof IncomingMessage, typeof HttpWork>;
  readonly #bodies = new Set<PendingBody>();
  readonly #work = new Set<Work>();
  readonly #closed: (this: Work) => void;
  /** `GET /v1/ws`, for a chat bot whose bot.yaml says `bot.websocket: true`. */
  #sockets: DirectSockets | undefined;
  readonly #stop = new AbortController();
  #sweeper: NodeJS.Timeout | undefined;
  #ready = false;
  #draining: Promise<void> | undefined;
  #idle: (() => void) | undefined;

  constructor(config: ServeConfig, module: LoadedModule, deps: PodDeps) {
    this.#config = config;
    this.#module = module;
    this.#log = deps.log;
    this.#metrics = deps.metrics;
    this.#sessions = deps.sessions;
    this.#tracing = new Tracing({ 'knbot.bot': config.name });
    this.#turns = new Turns({ config, log: deps.log, metrics: deps.metrics, tracing: this.#tracing, sessions: deps.sessions, stop: this.#stop.signal });
    // Node's own request timeout is the backstop behind the sweeper's body timeout.
    const server = this;
    this.#closed = function (this: Work) {
      server.#finished(this);
    };
    this.#server = createServer(
      {
        ServerResponse: HttpWork,
        keepAliveTimeout: 65_000,
        requestTimeout: config.bodyTimeoutMs + 5_000,
        // WebSocket handshakes come to 'upgrade'; any other Upgrade header (h2c…) is a plain request.
        shouldUpgradeCallback: (req) => req.method === 'GET' && /^websocket$/i.test(req.headers.upgrade ?? ''),
      },
      (req, res) => this.#onRequest(req, res as HttpWork),
    );
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (!socket.writable || err.code === 'ECONNRESET') return void socket.destroy();
      const body = JSON.stringify(new HttpProblem(400, 'bad_http', 'Malformed HTTP request', err.code ?? 'malformed request').toJSON());
      socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    });
  }

  /** Requests being worked on (health and metrics are not counted). */
  get inflight(): number {
    return this.#work.size;
  }

  get ready(): boolean {
    return this.#ready && !this.#draining;
  }

  /** Listens; resolves with the port. */
  async start(): Promise<number> {
    const module = this.#module;
    if (this.#config.websocket && module.kind === 'bot' && module.bot.onMessage) {
      // Loaded only for a bot that takes sockets: the rest start without `ws`.
      const { DirectSockets } = await import('./ws.ts');
      this.#sockets = new DirectSockets({
        config: this.#config,
        log: this.#log,
        bot: module.bot,
        turns: this.#turns,
        tracing: this.#tracing,
        admit: (onProblem) => this.#admitMessage(onProblem),
      });
    }
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#config.port, this.#config.host, () => resolve());
    });
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS).unref();
    const address = this.#server.address();
    return typeof address === 'object' && address ? address.port : this.#config.port;
  }

  /** Runs the bot's `init`; readiness turns 200 when it has finished. */
  async init(): Promise<void> {
    const t0 = performance.now();
    if (this.#module.kind === 'bot') await this.#module.bot.init?.(this.#turns.initContext());
    else await this.#module.func.init?.();
    this.#metrics.initDurationSeconds = (performance.now() - t0) / 1000;
    // performance.now() counts from process start: this is the cold start as the platform sees it.
    this.#metrics.coldStartSeconds = performance.now() / 1000;
    // Under `interrupt` with Redis: not ready before the pod hears the other pods' interrupts.
    await this.#turns.ready;
    this.#ready = true;
    this.#loadMetricsWhenIdle();
  }

  /** prom-client loads after readiness, at a moment with no request in flight, so no request waits on it. */
  #loadMetricsWhenIdle(): void {
    const attempt = () => {
      if (this.#metrics.loaded || this.#draining) return;
      if (this.#work.size === 0) this.#metrics.load();
      else setTimeout(attempt, 20).unref();
    };
    setTimeout(attempt, 20).unref();
  }

  /**
   * SIGTERM (DESIGN §4.1): readiness and new work turn 503 at once, in-flight work finishes (at most
   * `drainTimeoutMs`, then it is aborted), the bot's `shutdown` runs, the server closes.
   */
  drain(): Promise<void> {
    this.#draining ??= this.#drain();
    return this.#draining;
  }

  async #drain(): Promise<void> {
    this.#log.info('draining', { inflight: this.#work.size });
    if (this.#work.size > 0) {
      const idle = new Promise<void>((resolve) => (this.#idle = resolve));
      const timer = setTimeout(() => {
        this.#log.warn('drain timeout: aborting in-flight work', { inflight: this.#work.size });
        for (const w of this.#work) this.#giveUp(w, new HttpProblem(503, 'unavailable', 'Service unavailable', 'the bot shut down before answering', { headers: { 'retry-after': '1' } }));
      }, this.#config.drainTimeoutMs);
      await idle;
      clearTimeout(timer);
    }
    await this.#sockets?.close();
    this.#stop.abort(new Error('shutting down'));
    try {
      if (this.#module.kind === 'bot') await this.#module.bot.shutdown?.(this.#turns.initContext());
      else await this.#module.func.shutdown?.();
    } catch (err) {
      this.#log.error('shutdown hook failed', { err });
    }
    await this.#sessions.close?.();
    clearInterval(this.#sweeper);
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  #sweep(): void {
    const now = performance.now();
    for (const b of this.#bodies) if (now > b.deadline) b.fail(bodyTimeout(this.#config.bodyTimeoutMs));
    for (const w of this.#work) {
      if (now > w.deadline) this.#giveUp(w, new HttpProblem(504, 'timeout', 'Bot timed out', `no answer within ${this.#config.timeoutMs} ms`));
    }
  }

  /** Stops waiting for the bot: its signal aborts, a stream under way ends with what it has, anything else gets `problem`. */
  #giveUp(w: Work, problem: HttpProblem): void {
    if (w.timedOut) return;
    w.timedOut = true;
    w.abort(new Error(problem.message));
    w.answerProblem(problem);
  }

  /** A WebSocket handshake: `GET /v1/ws` for a bot that takes sockets, a problem response for the rest. */
  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Until ws takes the socket, an error on it (a client gone) must not reach the process.
    socket.on('error', () => socket.destroy());
    const t0 = performance.now();
    trackHandshake(socket, (code) => this.#metrics.observe('/v1/ws', code, (performance.now() - t0) / 1000));
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path !== '/v1/ws') return refuseHandshake(socket, new HttpProblem(404, 'not_found', 'Not found', `no WebSocket endpoint at ${path}: it is /v1/ws`));
    if (!this.#sockets) {
      const why = this.#module.kind === 'bot' && this.#module.bot.onMessage ? 'this bot takes no WebSocket clients: set bot.websocket: true in its bot.yaml' : 'this bot has no onMessage';
      return refuseHandshake(socket, new HttpProblem(404, 'not_found', 'Not found', why));
    }
    if (!this.ready) {
      const why = this.#draining ? 'the bot is shutting down' : 'the bot is still starting';
      return refuseHandshake(socket, new HttpProblem(503, 'unavailable', 'Service unavailable', why, { headers: { 'retry-after': '1' } }));
    }
    this.#sockets.upgrade(req, socket, head);
  }

  /** Admission of a message on a direct socket, as `#accept` admits a request; a problem when it cannot be taken now. */
  #admitMessage(onProblem: (problem: HttpProblem) => void): MessageWork | HttpProblem {
    if (!this.ready) return new HttpProblem(503, 'unavailable', 'Service unavailable', this.#draining ? 'the bot is shutting down' : 'the bot is still starting');
    const cc = this.#config.containerConcurrency;
    if (cc > 0 && this.#work.size >= cc) return new HttpProblem(503, 'overloaded', 'Over capacity', `more than ${cc} requests in flight`);
    const work = new MessageWork(onProblem, (w) => this.#finished(w));
    work.started = performance.now();
    work.deadline = work.started + this.#config.timeoutMs;
    work.route = 'ws';
    this.#work.add(work);
    return work;
  }

  #onRequest(req: IncomingMessage, res: HttpWork): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = req.method;
    if (method === 'POST' && path === '/') return this.#accept(req, res, 'event', this.#onEvents);
    if (method === 'GET' || method === 'HEAD') {
      if (path === '/health/readiness') return health(res, this.ready, this.#draining ? 'draining' : 'starting');
      if (path === '/health/liveness') return health(res, true, '');
      if (path === '/metrics') return void this.#sendMetrics(res);
    }
    if (method === 'POST' && path === '/v1/chat') return this.#accept(req, res, 'chat', this.#onChat);
    if (this.#module.kind === 'func' && !path.startsWith('/health/') && path !== '/metrics') return this.#accept(req, res, 'http', this.#onFuncHttp);
    req.resume();
    const allow = path === '/' || path === '/v1/chat' ? 'POST' : path === '/metrics' || path.startsWith('/health/') ? 'GET, HEAD' : undefined;
    sendProblem(
      res,
      allow
        ? new HttpProblem(405, 'method_not_allowed', 'Method not allowed', `${method} is not allowed on ${path}`, { headers: { allow } })
        : new HttpProblem(404, 'not_found', 'Not found', `no route for ${method} ${path}`),
    );
  }

  async #sendMetrics(res: ServerResponse): Promise<void> {
    try {
      const text = await this.#metrics.registry.metrics();
      res.writeHead(200, { 'content-type': this.#metrics.registry.contentType, 'content-length': String(Buffer.byteLength(text)) }).end(text);
    } catch (err) {
      this.#log.error('metrics failed', { err });
      sendProblem(res, new HttpProblem(500, 'metrics_failed', 'Metrics failed', 'could not collect metrics'));
    }
  }

  /** Admission: draining, starting and over capacity answer 503; the rest is counted, timed and run. */
  #accept(req: IncomingMessage, res: HttpWork, route: string, handler: (req: IncomingMessage, res: HttpWork) => MaybePromise<void>): void {
    if (!this.ready) {
      req.resume();
      const why = this.#draining ? 'the bot is shutting down' : 'the bot is still starting';
      return sendProblem(res, new HttpProblem(503, 'unavailable', 'Service unavailable', why, { headers: { 'retry-after': '1' } }), !!this.#draining);
    }
    const cc = this.#config.containerConcurrency;
    if (cc > 0 && this.#work.size >= cc) {
      req.resume();
      return sendProblem(res, new HttpProblem(503, 'overloaded', 'Over capacity', `more than ${cc} requests in flight`, { headers: { 'retry-after': '1' } }));
    }
    res.started = performance.now();
    res.deadline = res.started + this.#config.timeoutMs;
    res.route = route;
    this.#work.add(res);
    res.on('close', this.#closed);
    try {
      const out = handler.call(this, req, res);
      if (isPromiseLike(out)) (out as Promise<void>).catch((err: unknown) => this.#fail(req, res, err));
    } catch (err) {
      this.#fail(req, res, err);
    }
  }

  #finished(res: Work): void {
    this.#work.delete(res);
    this.#metrics.observe(res.route, res.statusCode, (performance.now() - res.started) / 1000);
    if (this.#draining && this.#work.size === 0) this.#idle?.();
  }

  #fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    if (err instanceof HttpProblem) {
      this.#log.warn('bad request', { status: err.status, code: err.code, detail: err.message, path: req.url });
      // A body not read to the end leaves the connection unusable: close it with the answer.
      return sendProblem(res, err, err.status === 413 || err.status === 408 || !req.complete);
    }
    if (err instanceof CloudEventError) {
      this.#log.warn('invalid cloudevent', { status: err.status, code: err.code, detail: err.message });
      return sendProblem(res, new HttpProblem(err.status, err.code, err.status === 415 ? 'Unsupported media type' : 'Invalid CloudEvent', err.message, { errors: err.errors }));
    }
    this.#log.error('bot failed', { err, path: req.url });
    sendProblem(res, new HttpProblem(500, 'bot_error', 'Bot error', 'the bot failed to handle the request'));
  }

  #span(name: string, traceparent: unknown): Span {
    return this.#tracing.start(name, traceparent);
  }

  /** `POST /`: read, decode, dispatch each event, answer; synchronous when the bot is. */
  #onEvents(req: IncomingMessage, res: HttpWork): void {
    readBody(req, this.#config.maxBodyBytes, this.#config.bodyTimeoutMs, this.#bodies, (err, body) => {
      if (err) return this.#fail(req, res, err);
      try {
        const out = this.#answerEvents(req, res, body);
        if (isPromiseLike(out)) (out as Promise<void>).catch((e: unknown) => this.#fail(req, res, e));
      } catch (e) {
        this.#fail(req, res, e);
      }
    });
  }

  #answerEvents(req: IncomingMessage, res: HttpWork, body: Buffer): MaybePromise<void> {
    const module = this.#module;
    if (module.kind === 'func' && !hasCloudEventHeaders(req.headers) && !isCloudEventsMediaType(req.headers['content-type'])) {
      return answerFunc(module.func, req, res, body, undefined, this.#log);
    }
    const { mode, events } = decodeHttp(req.headers, body);
    if (mode !== 'batch') {
      if (module.kind === 'func') return answerFunc(module.func, req, res, body, events[0], this.#log);
      return andThen(this.#dispatch(module.bot, events[0]!, res, req), (reply) => answerOne(res, reply));
    }
    return this.#answerBatch(req, res, body, events);
  }

  async #answerBatch(req: IncomingMessage, res: HttpWork, body: Buffer, events: CloudEvent[]): Promise<void> {
    const module = this.#module;
    const replies: CloudEvent[] = [];
    for (const event of events) {
      const reply = module.kind === 'func' ? await funcEvent(module.func, req, body, event, this.#log) : await this.#dispatch(module.bot, event, res, req);
      if (reply) replies.push(reply);
    }
    if (res.headersSent) return;
    if (replies.length === 0) return void res.writeHead(202, NO_CONTENT).end();
    const msg = encodeBatch(replies);
    res.writeHead(200, { 'content-type': BATCH_CONTENT_TYPE, 'content-length': String(msg.body.length) }).end(msg.body);
  }

  /** One event to the bot: chat messages and actions to `onMessage`, the rest to `onEvent`; the reply event, if any. */
  #dispatch(bot: Bot, event: CloudEvent, work: Work, req: IncomingMessage): MaybePromise<CloudEvent | undefined> {
    const span = this.#span(event.type, req.headers.traceparent ?? event.traceparent);
    let out: MaybePromise<CloudEvent | undefined>;
    try {
      out = this.#route(bot, event, work, span);
    } catch (err) {
      failSpan(span, err);
      throw err;
    }
    if (!isPromiseLike(out)) {
      span.end();
      return out;
    }
    return (out as Promise<CloudEvent | undefined>).then(
      (reply) => {
        span.end();
        return reply;
      },
      (err: unknown) => {
        failSpan(span, err);
        throw err;
      },
    );
  }

  #route(bot: Bot, event: CloudEvent, work: Work, span: Span): MaybePromise<CloudEvent | undefined> {
    // A button pressed is said, like a message: the bot answers it in the conversation (msg.action says which).
    if ((event.type === MESSAGE_RECEIVED || event.type === ACTION_INVOKED) && bot.onMessage) {
      const msg = messageFromEvent(event);
      const onMessage = bot.onMessage;
      const chunks = this.#chunkStream(event, msg);
      if (chunks) {
        // The reply waits for its chunks, so through an ordered broker a client sees them first.
        const streamed = this.#turns.message(msg, work, span, event, (m, ctx) =>
          andThen(onMessage.call(bot, m, ctx), (r) => collectReply(r, isStreamed(r) ? (text) => chunks.push(text) : undefined)),
        );
        return andThen(streamed, async (r) => {
          await chunks.flush();
          return messageReply(msg, r, span, this.#config.source);
        });
      }
      const reply = this.#turns.message(msg, work, span, event, (m, ctx) => andThen(onMessage.call(bot, m, ctx), (r) => collectReply(r)));
      return andThen(reply, (r) => messageReply(msg, r, span, this.#config.source));
    }
    if (!bot.onEvent) return undefined;
    const onEvent = bot.onEvent;
    const out = this.#turns.run({ key: eventSessionKey(event), id: event.subject ?? event.source }, work, span, event, (ctx) => onEvent.call(bot, event, ctx) as MaybePromise<unknown>);
    return andThen(out, (o) => eventReply(o, event, this.#config.source));
  }

  /** A chunk stream for a message whose client shows replies as written, when there is a sink to send to. */
  #chunkStream(event: CloudEvent, msg: ChatMessage): ChunkStream | undefined {
    const { sink, ceOverrides, source, timeoutMs } = this.#config;
    if (event[STREAM_EXTENSION] !== 'true' || !sink) return undefined;
    return new ChunkStream(msg, source, (chunk) => sendToSink(Object.assign(chunk, ceOverrides), { url: sink, overrides: ceOverrides, source, timeoutMs }));
  }

  async #onFuncHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#module.kind !== 'func') throw new Error('not a func module');
    const body = await readBodyAsync(req, this.#config.maxBodyBytes, this.#config.bodyTimeoutMs, this.#bodies);
    await answerFunc(this.#module.func, req, res, body, undefined, this.#log);
  }

  /** `POST /v1/chat`: `{conversation, text, user?}` → JSON, or SSE chunks then the reply. */
  async #onChat(req: IncomingMessage, res: HttpWork): Promise<void> {
    if (this.#module.kind !== 'bot' || !this.#module.bot.onMessage) {
      req.resume();
      throw new HttpProblem(404, 'no_chat', 'Not a chat bot', 'this bot has no onMessage: POST CloudEvents to / instead');
    }
    const bot = this.#module.bot;
    const onMessage = bot.onMessage!;
    const body = await readBodyAsync(req, this.#config.maxBodyBytes, this.#config.bodyTimeoutMs, this.#bodies);
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (e) {
      throw new HttpProblem(400, 'malformed_json', 'Malformed JSON', `the body is not valid JSON: ${(e as Error).message}`);
    }
    const msg: ChatMessage = messageFromChatRequest(json);
    const stream = /\btext\/event-stream\b/i.test(req.headers.accept ?? '');
    const span = this.#span('chat', req.headers.traceparent);
    const key = conversationKey(msg);
    try {
      // Decided before an SSE response starts; nothing runs between this and the turn taking its place.
      const inProgress = () => new HttpProblem(409, 'turn_in_progress', 'Turn in progress', 'the bot is still answering an earlier message of this conversation');
      if (this.#turns.rejects(sessionKey(msg))) throw inProgress();
      if (!stream) {
        const reply = await this.#turns.message(msg, res, span, undefined, (m, ctx) => andThen(onMessage.call(bot, m, ctx), (r) => collectReply(r)));
        // Another pod holds the conversation (sessions in Redis): found only when the turn would start.
        if (reply === IN_PROGRESS) throw inProgress();
        const out = JSON.stringify(chatAnswer(key, msg, reply));
        return void res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) }).end(out);
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
      res.flushHeaders();
      try {
        const reply = await this.#turns.message(msg, res, span, undefined, (m, ctx) =>
          andThen(onMessage.call(bot, m, ctx), (r) => collectReply(r, (text) => sse(res, 'chunk', { text }))),
        );
        await sse(res, 'reply', chatAnswer(key, msg, reply));
      } catch (err) {
        failSpan(span, err);
        // A client that left aborted the turn: nothing failed, and nobody is there to tell.
        if (res.destroyed) this.#log.info('client left mid-reply', { path: req.url });
        else {
          this.#log.error('bot failed', { err, path: req.url });
          await sse(res, 'error', { code: 'bot_error', message: 'the bot failed to handle the message' });
        }
      }
      res.end();
    } finally {
      span.end();
    }
  }
}
