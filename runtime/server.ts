import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { performance } from 'node:perf_hooks';
import { type Span, SpanKind, SpanStatusCode, context as otelContext, trace } from '@opentelemetry/api';
import {
  BATCH_CONTENT_TYPE,
  type CloudEvent,
  CloudEventError,
  decodeHttp,
  encodeBatch,
  encodeBinary,
  hasCloudEventHeaders,
  validateCloudEvent,
} from '../eventing/index.ts';
import { type PendingBody, bodyTimeout, readBody } from './body.ts';
import type { Bot, ChatMessage, EmitEvent, InitContext, Reply, TurnContext } from './bot.ts';
import { MESSAGE_RECEIVED, collectReply, conversationKey, messageFromChatRequest, messageFromEvent, replyEvent } from './chat.ts';
import type { ServeConfig } from './config.ts';
import { invokeFunc } from './func.ts';
import type { LoadedModule } from './load.ts';
import type { Logger } from './log.ts';
import type { PodMetrics } from './metrics.ts';
import { HttpProblem, sendProblem } from './problem.ts';
import { KeyedQueue, type SessionStore } from './session-store.ts';
import { completeEvent, sendToSink } from './sink.ts';
import { formatTraceparent, parentContext } from './tracing.ts';

export interface PodDeps {
  log: Logger;
  metrics: PodMetrics;
  sessions: SessionStore;
}

/** One request being worked on: what the sweeper needs to time it out, and its lazily made AbortSignal. */
class Work {
  readonly deadline: number;
  readonly res: ServerResponse;
  #controller: AbortController | undefined;

  constructor(res: ServerResponse, deadline: number) {
    this.res = res;
    this.deadline = deadline;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.res.destroyed && !this.res.writableFinished) this.#controller.abort(new Error('client went away'));
      else this.res.once('close', () => this.res.writableFinished || this.abort(new Error('client went away')));
    }
    return this.#controller.signal;
  }

  abort(reason: Error): void {
    if (this.#controller) this.#controller.abort(reason);
    else (this.#controller = new AbortController()).abort(reason);
  }
}

const SWEEP_MS = 100;

/** `knbot serve`: the pod's HTTP server (DESIGN §4.1). */
export class PodServer {
  readonly #config: ServeConfig;
  readonly #module: LoadedModule;
  readonly #log: Logger;
  readonly #metrics: PodMetrics;
  readonly #sessions: SessionStore;
  readonly #turns = new KeyedQueue();
  readonly #tracer = trace.getTracer('knbot');
  readonly #server: Server;
  readonly #bodies = new Set<PendingBody>();
  readonly #work = new Set<Work>();
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
    this.#server = createServer({ keepAliveTimeout: 65_000, requestTimeout: config.bodyTimeoutMs + 5_000 }, (req, res) => this.#onRequest(req, res));
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (socket.writable && err.code !== 'ECONNRESET') {
        const body = JSON.stringify(new HttpProblem(400, 'bad_http', 'Malformed HTTP request', err.code ?? 'malformed request').toJSON());
        socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      } else socket.destroy();
    });
  }

  get ready(): boolean {
    return this.#ready && !this.#draining;
  }

  get inflight(): number {
    return this.#work.size;
  }

  /** Listens, then runs the bot's `init`; readiness turns 200 when it has finished. */
  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#config.port, this.#config.host, () => resolve());
    });
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_MS).unref();
    const address = this.#server.address();
    return typeof address === 'object' && address ? address.port : this.#config.port;
  }

  async init(): Promise<void> {
    const t0 = performance.now();
    const ctx = this.#initContext();
    if (this.#module.kind === 'bot') await this.#module.bot.init?.(ctx);
    else await this.#module.func.init?.();
    this.#metrics.initDuration.set((performance.now() - t0) / 1000);
    this.#metrics.coldStart.set(performance.now() / 1000);
    this.#ready = true;
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
        for (const w of this.#work) w.abort(new Error('shutting down'));
      }, this.#config.drainTimeoutMs);
      await idle;
      clearTimeout(timer);
    }
    this.#stop.abort(new Error('shutting down'));
    try {
      if (this.#module.kind === 'bot') await this.#module.bot.shutdown?.(this.#initContext());
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

  #initContext(): InitContext {
    return { bot: this.#config.name, config: this.#config.config, log: this.#log, metrics: this.#metrics, tracer: this.#tracer, signal: this.#stop.signal };
  }

  #sweep(): void {
    const now = Date.now();
    for (const b of this.#bodies) if (now > b.deadline) b.fail(bodyTimeout(this.#config.bodyTimeoutMs));
    for (const w of this.#work) {
      if (now <= w.deadline) continue;
      w.abort(new Error('request timeout'));
      sendProblem(w.res, new HttpProblem(504, 'timeout', 'Bot timed out', `no answer within ${this.#config.timeoutMs} ms`), true);
    }
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = req.method;
    if (method === 'GET' || method === 'HEAD') {
      if (path === '/health/readiness') return this.#health(res, this.ready, this.#draining ? 'draining' : 'starting');
      if (path === '/health/liveness') return this.#health(res, true, '');
      if (path === '/metrics') return void this.#sendMetrics(res);
    }
    if (method === 'POST' && path === '/') return this.#accept(req, res, 'event', (work) => this.#onEvents(req, res, work));
    if (method === 'POST' && path === '/v1/chat') return this.#accept(req, res, 'chat', (work) => this.#onChat(req, res, work));
    if (this.#module.kind === 'func' && !path.startsWith('/health/') && path !== '/metrics') {
      return this.#accept(req, res, 'http', () => this.#onFuncHttp(req, res));
    }
    const known = path === '/' || path === '/v1/chat' || path === '/metrics' || path.startsWith('/health/');
    sendProblem(
      res,
      known
        ? new HttpProblem(405, 'method_not_allowed', 'Method not allowed', `${method} is not allowed on ${path}`, { headers: { allow: path === '/' || path === '/v1/chat' ? 'POST' : 'GET, HEAD' } })
        : new HttpProblem(404, 'not_found', 'Not found', `no route for ${method} ${path}`),
    );
    req.resume();
  }

  #health(res: ServerResponse, ok: boolean, why: string): void {
    const body = ok ? 'ok' : why;
    res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain', 'content-length': body.length, 'cache-control': 'no-store' }).end(body);
  }

  async #sendMetrics(res: ServerResponse): Promise<void> {
    try {
      const text = await this.#metrics.registry.metrics();
      res.writeHead(200, { 'content-type': this.#metrics.registry.contentType }).end(text);
    } catch (err) {
      this.#log.error('metrics failed', { err });
      sendProblem(res, new HttpProblem(500, 'metrics_failed', 'Metrics failed', 'could not collect metrics'));
    }
  }

  /** Admission: draining and over-capacity answer 503; the rest is counted, timed and run. */
  #accept(req: IncomingMessage, res: ServerResponse, route: string, run: (work: Work) => Promise<void>): void {
    if (this.#draining || !this.#ready) {
      req.resume();
      const why = this.#draining ? 'the bot is shutting down' : 'the bot is still starting';
      return sendProblem(res, new HttpProblem(503, 'unavailable', 'Service unavailable', why, { headers: { 'retry-after': '1' } }), !!this.#draining);
    }
    const cc = this.#config.containerConcurrency;
    if (cc > 0 && this.#work.size >= cc) {
      req.resume();
      return sendProblem(res, new HttpProblem(503, 'overloaded', 'Over capacity', `more than ${cc} requests in flight`, { headers: { 'retry-after': '1' } }));
    }
    const started = performance.now();
    const work = new Work(res, Date.now() + this.#config.timeoutMs);
    this.#work.add(work);
    this.#metrics.inflight.inc();
    res.once('close', () => {
      this.#work.delete(work);
      this.#metrics.inflight.dec();
      this.#metrics.observe(route, res.statusCode, (performance.now() - started) / 1000);
      if (this.#draining && this.#work.size === 0) this.#idle?.();
    });
    run(work).catch((err: unknown) => this.#fail(req, res, err));
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

  #turnContext(work: Work, session: { id: string; state: Record<string, unknown> }, span: Span, event?: CloudEvent): TurnContext {
    const config = this.#config;
    const metrics = this.#metrics;
    const signal = () => AbortSignal.any([work.signal, this.#stop.signal]);
    return {
      bot: config.name,
      config: config.config,
      log: this.#log,
      metrics,
      tracer: this.#tracer,
      get signal() {
        return signal();
      },
      session,
      event,
      emit: async (partial: EmitEvent) => {
        const ev = completeEvent(partial, { overrides: config.ceOverrides, source: config.source });
        if (ev.traceparent === undefined && span.spanContext().traceId !== '00000000000000000000000000000000') ev.traceparent = formatTraceparent(span.spanContext());
        try {
          await sendToSink(ev, { url: config.sink, overrides: config.ceOverrides, source: config.source, timeoutMs: config.timeoutMs }, work.signal);
          metrics.delivered.labels('ok').inc();
        } catch (err) {
          metrics.delivered.labels('error').inc();
          throw err;
        }
      },
    };
  }

  /** Runs one turn of a conversation: in order with its other turns, its session loaded before and saved after. */
  #turn<T>(key: string, work: Work, span: Span, event: CloudEvent | undefined, fn: (ctx: TurnContext) => Promise<T>): Promise<T> {
    return this.#turns.run(key, async () => {
      const session = { id: key, state: await this.#sessions.load(key) };
      const result = await otelContext.with(trace.setSpan(otelContext.active(), span), () => fn(this.#turnContext(work, session, span, event)));
      await this.#sessions.save(key, session.state);
      return result;
    });
  }

  #span(name: string, traceparent: unknown): Span {
    return this.#tracer.startSpan(name, { kind: SpanKind.SERVER, attributes: { 'knbot.bot': this.#config.name } }, parentContext(traceparent));
  }

  async #onEvents(req: IncomingMessage, res: ServerResponse, work: Work): Promise<void> {
    const body = await readBody(req, this.#config.maxBodyBytes, this.#config.bodyTimeoutMs, this.#bodies);
    if (this.#module.kind === 'func' && !hasCloudEventHeaders(req.headers) && !isCloudEventsMediaType(req.headers['content-type'])) {
      return this.#answerFunc(req, res, body, undefined);
    }
    const decoded = decodeHttp(req.headers, body);
    if (this.#module.kind === 'func' && decoded.mode !== 'batch') return this.#answerFunc(req, res, body, decoded.events[0]);
    const replies: CloudEvent[] = [];
    for (const event of decoded.events) {
      const reply = this.#module.kind === 'func' ? await this.#funcEvent(req, body, event) : await this.#dispatch(this.#module.bot, event, work, req);
      if (reply) replies.push(reply);
    }
    if (res.headersSent) return;
    if (decoded.mode === 'batch') {
      if (replies.length === 0) return void res.writeHead(202, { 'content-length': 0 }).end();
      const msg = encodeBatch(replies);
      return void res.writeHead(200, { 'content-type': BATCH_CONTENT_TYPE, 'content-length': msg.body.length }).end(msg.body);
    }
    const reply = replies[0];
    if (!reply) return void res.writeHead(202, { 'content-length': 0 }).end();
    const msg = encodeBinary(reply);
    msg.headers['content-length'] = String(msg.body.length);
    res.writeHead(200, msg.headers).end(msg.body);
  }

  async #dispatch(bot: Bot, event: CloudEvent, work: Work, req: IncomingMessage): Promise<CloudEvent | undefined> {
    const span = this.#span(`knbot ${event.type}`, req.headers.traceparent ?? event.traceparent);
    try {
      if (event.type === MESSAGE_RECEIVED && bot.onMessage) {
        const msg = messageFromEvent(event);
        const reply = await this.#turn(conversationKey(msg), work, span, event, async (ctx) => collectReply(await bot.onMessage!(msg, ctx)));
        return reply && replyEvent(msg, reply, this.#config.source);
      }
      if (!bot.onEvent) return undefined;
      const out = await this.#turn(event.subject ?? event.source, work, span, event, async (ctx) => bot.onEvent!(event, ctx));
      return this.#eventReply(out, event);
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR });
      throw err;
    } finally {
      span.end();
    }
  }

  /** What `onEvent` returned: an event (completed and checked), data for a reply event, or nothing. */
  #eventReply(out: unknown, event: CloudEvent): CloudEvent | undefined {
    if (out === undefined || out === null) return undefined;
    const o = out as Record<string, unknown>;
    if (typeof o === 'object' && !(out instanceof Uint8Array) && typeof o.type === 'string' && typeof o.specversion === 'string') {
      const reply = completeEvent(o as EmitEvent, { overrides: {}, source: this.#config.source });
      const errors = validateCloudEvent(reply);
      if (errors.length) throw new Error(`onEvent returned an invalid CloudEvent: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`);
      return reply;
    }
    const reply = completeEvent(
      {
        type: 'dev.knbot.event.reply',
        data: out,
        ...(out instanceof Uint8Array ? { datacontenttype: 'application/octet-stream' } : {}),
        ...(event.subject === undefined ? {} : { subject: event.subject }),
      },
      { overrides: {}, source: this.#config.source },
    );
    if (typeof event.chatbot === 'string') reply.chatbot = event.chatbot;
    return reply;
  }

  async #funcEvent(req: IncomingMessage, body: Buffer, event: CloudEvent): Promise<CloudEvent | undefined> {
    const out = await invokeFunc(this.#funcModule(), req, body, event, this.#log);
    if (out.kind === 'event') return out.event;
    if (out.status >= 400) throw new Error(`function answered ${out.status}`);
    // Inside a batch only events can be answered; plain data from a func handler has no place there.
    if (out.status !== 204) this.#log.warn('func handler returned data, not a CloudEvent, inside a batch: dropped', { type: event.type });
    return undefined;
  }

  #funcModule() {
    if (this.#module.kind !== 'func') throw new Error('not a func module');
    return this.#module.func;
  }

  async #answerFunc(req: IncomingMessage, res: ServerResponse, body: Buffer, event: CloudEvent | undefined): Promise<void> {
    const out = await invokeFunc(this.#funcModule(), req, body, event, this.#log);
    if (out.kind === 'event') {
      const msg = encodeBinary(out.event);
      return void res.writeHead(200, msg.headers).end(msg.body);
    }
    res.writeHead(out.status, out.headers).end(out.body);
  }

  async #onFuncHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req, this.#config.maxBodyBytes, this.#config.bodyTimeoutMs, this.#bodies);
    await this.#answerFunc(req, res, body, undefined);
  }

  async #onChat(req: IncomingMessage, res: ServerResponse, work: Work): Promise<void> {
    if (this.#module.kind !== 'bot' || !this.#module.bot.onMessage) {
      req.resume();
      throw new HttpProblem(404, 'no_chat', 'Not a chat bot', 'this bot has no onMessage: POST CloudEvents to / instead');
    }
    const bot = this.#module.bot;
    const body = await readBody(req, this.#config.maxBodyBytes, this.#config.bodyTimeoutMs, this.#bodies);
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch (e) {
      throw new HttpProblem(400, 'malformed_json', 'Malformed JSON', `the body is not valid JSON: ${(e as Error).message}`);
    }
    const msg: ChatMessage = messageFromChatRequest(json);
    const stream = /\btext\/event-stream\b/i.test(req.headers.accept ?? '');
    const span = this.#span('knbot chat', req.headers.traceparent);
    const key = conversationKey(msg);
    try {
      if (!stream) {
        const reply = await this.#turn(key, work, span, undefined, async (ctx) => collectReply(await bot.onMessage!(msg, ctx)));
        const out = JSON.stringify(chatAnswer(key, msg, reply));
        return void res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) }).end(out);
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
      res.flushHeaders();
      try {
        const reply = await this.#turn(key, work, span, undefined, async (ctx) => collectReply(await bot.onMessage!(msg, ctx), (text) => sse(res, 'chunk', { text })));
        await sse(res, 'reply', chatAnswer(key, msg, reply));
      } catch (err) {
        this.#log.error('bot failed', { err, path: req.url });
        await sse(res, 'error', { code: 'bot_error', message: 'the bot failed to handle the message' });
      }
      res.end();
    } finally {
      span.end();
    }
  }
}

function chatAnswer(key: string, msg: ChatMessage, reply: Reply | undefined): Record<string, unknown> {
  return { ...reply, conversation: key, text: reply?.text ?? '', inReplyTo: msg.id };
}

/** Writes one server-sent event, waiting when the client reads slower than the bot writes. */
function sse(res: ServerResponse, event: string, data: unknown): Promise<void> | void {
  if (res.destroyed) return;
  if (res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)) return;
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });
}

function isCloudEventsMediaType(contentType: string | undefined): boolean {
  return contentType !== undefined && /^\s*application\/cloudevents/i.test(contentType);
}
