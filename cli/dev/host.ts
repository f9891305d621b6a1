import { type FSWatcher, watch } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { resolve as resolvePath } from 'node:path';
import express from 'express';
import { type BrokerRoute, LocalBroker, brokerRoutes } from '../../eventing/broker/index.ts';
import { requestObserver } from '../../eventing/metrics.ts';
import { type Destination, compileRouting } from '../../eventing/model/index.ts';
import { parseTokens } from '../../gateway/auth.ts';
import { EGRESS_TYPES } from '../../gateway/egress.ts';
import type { ChannelSecrets } from '../../gateway/hooks.ts';
import { Gateway } from '../../gateway/server.ts';
import type { BotEntry } from '../../gateway/sessions.ts';
import { channelsFromManifests } from '../channels.ts';
import { DevMetrics } from './metrics.ts';
import { type DevProject, readProject, scaleOverridesFromEnv } from './project.ts';
import { BotScaler } from './scaler.ts';
import { Timeline } from './timeline.ts';
import { dashboardRoutes } from './dashboard.ts';

const http = process.getBuiltinModule('node:http');

export interface DevHostOptions {
  /** The project: `functions/*` under it holds the bots. */
  root: string;
  /** Where the knbot checkout is (node_modules/.bin/node, cli/knbot.js). */
  knbotRoot: string;
  port: number;
  host?: string;
  stateDir: string;
  env?: NodeJS.ProcessEnv;
  /** Roll a bot's instances when its files change. */
  watch?: boolean;
  log: (msg: string, fields?: Record<string, unknown>) => void;
  /** Where the bots' own output (their JSON log lines) goes; default: dropped. */
  botOutput?: (chunk: Buffer) => void;
}

const NAMESPACE = 'default';
/** A Broker's delivery when a Trigger names none: Knative's cluster default (config-br-defaults). */
const BROKER_DEFAULT_DELIVERY = { retry: 10, backoffPolicy: 'exponential' as const, backoffDelay: 'PT0.2S' };
const TICK_MS = 250;

/**
 * `knbot dev` (DESIGN §9): the gateway, the local broker and every bot of the project on one machine,
 * routed by the same compiled Triggers as on a cluster, each bot scaled like a Knative Service by an
 * activator in front of its instances.
 */
export class DevHost {
  readonly #o: DevHostOptions;
  #project!: DevProject;
  #view!: { bots: BotEntry[]; channels: ChannelSecrets };
  #broker!: LocalBroker;
  #gateway!: Gateway;
  #activator!: Server;
  readonly #scalers = new Map<string, BotScaler>();
  readonly #metrics = new DevMetrics(() => [...this.#scalers.values()].map((s) => s.snapshot()));
  readonly #observeRequest = requestObserver(this.#metrics.registry);
  readonly #timeline = new Timeline(600);
  #tick: NodeJS.Timeout | undefined;
  #watchers: FSWatcher[] = [];
  /** Broker route id → the bot whose binding made it (the dashboard groups deliveries by bot). */
  #routeBots: Record<string, string> = {};
  #urls = { url: '', brokerUrl: '', activatorUrl: '', egressUrl: '' };

  constructor(options: DevHostOptions) {
    this.#o = options;
  }

  get urls() {
    return this.#urls;
  }

  get project(): DevProject {
    return this.#project;
  }

  scaler(bot: string): BotScaler | undefined {
    return this.#scalers.get(bot);
  }

  async start(): Promise<typeof this.urls> {
    const env = this.#o.env ?? process.env;
    const overrides = scaleOverridesFromEnv(env);
    this.#project = readProject(this.#o.root, overrides);
    this.#view = this.#viewOf(this.#project);
    if (this.#project.errors.length) throw new Error(`the project's Events and EventBindings have errors:\n${this.#project.errors.map((e) => `  ${e.object}: ${e.field}: ${e.message}`).join('\n')}`);
    if (!this.#project.bots.length) throw new Error(`no bots under ${this.#o.root} (a bot is a folder with bot.yaml and index.ts, under functions/)`);

    this.#broker = new LocalBroker({
      stateDir: resolvePath(this.#o.stateDir),
      port: 0,
      routes: [],
      registry: this.#metrics.registry,
      log: (msg, fields) => {
        if (msg === 'delivery') this.#metrics.delivered(String(fields?.route), String(fields?.result));
      },
    });
    const brokerPort = await this.#broker.start();
    this.#urls.brokerUrl = `http://127.0.0.1:${brokerPort}/`;

    this.#activator = http.createServer((req, res) => this.#activate(req, res));
    await listen(this.#activator, 0, '127.0.0.1');
    this.#urls.activatorUrl = `http://127.0.0.1:${(this.#activator.address() as { port: number }).port}`;

    for (const bot of this.#project.bots) {
      // At info a pod logs only `listening`, `ready` and `draining`. The host needs the first two: `listening`
      // names the port the pod bound, `ready` wakes the readiness probe. So a pod logs at info or debug here.
      const scaler = new BotScaler(bot, {
        root: this.#o.knbotRoot,
        env: { ...stringsOf(env), K_SINK: this.#urls.brokerUrl, KNBOT_LOG_LEVEL: env.KNBOT_LOG_LEVEL === 'debug' ? 'debug' : 'info' },
        maxInstances: overrides.maxInstances,
        onColdStart: (name, ms) => this.#metrics.coldStart(name, ms),
        onInitDuration: (name, ms) => this.#metrics.initDuration(name, ms),
        log: this.#o.log,
      });
      this.#scalers.set(bot.name, scaler);
    }

    const tokens = parseTokens(env.KNBOT_GATEWAY_TOKENS);
    this.#gateway = new Gateway({
      brokerUrl: this.#urls.brokerUrl,
      bots: () => this.#view.bots,
      auth: tokens.size || env.KNBOT_GATEWAY_TICKET_SECRET ? { tokens, ...(env.KNBOT_GATEWAY_TICKET_SECRET ? { ticketSecret: env.KNBOT_GATEWAY_TICKET_SECRET } : {}) } : { open: true },
      routes: this.#routes(),
      channels: (bot, platform) => this.#view.channels(bot, platform),
      namespace: NAMESPACE,
      env,
      // The host's one port serves /metrics whatever the auth; the activator counts in-flight requests per bot.
      metrics: { registry: this.#metrics.registry, public: true, inflight: false },
      log: this.#o.log,
    });
    const bound = await this.#gateway.start(this.#o.port, this.#o.host ?? '127.0.0.1');
    this.#urls.url = `http://${this.#o.host ?? '127.0.0.1'}:${bound.port}`;
    this.#urls.egressUrl = `http://127.0.0.1:${bound.egressPort}/`;

    this.#broker.setRoutes(this.#brokerRoutes());
    for (const s of this.#scalers.values()) s.start();
    this.#tick = setInterval(() => this.#onTick(), TICK_MS).unref();
    if (this.#o.watch) this.#watch();
    return this.#urls;
  }

  async close(): Promise<void> {
    clearInterval(this.#tick);
    for (const w of this.#watchers) w.close();
    await this.#gateway?.close();
    await Promise.all([...this.#scalers.values()].map((s) => s.close()));
    await new Promise<void>((resolve) => {
      if (!this.#activator?.listening) return resolve();
      this.#activator.close(() => resolve());
      this.#activator.closeAllConnections();
    });
    await this.#broker?.close();
  }

  /** The broker's routes: the compiled Triggers, with each bot's Service resolved to its activator path. */
  #brokerRoutes(): BrokerRoute[] {
    const { triggers } = compileRouting({
      bots: this.#project.bots.map((b) => ({ name: b.name, namespace: NAMESPACE, broker: 'default' })),
      events: this.#project.events,
      bindings: this.#project.bindings,
    });
    const resolve = (d: Destination): string | undefined => {
      if (d.ref?.kind === 'Service' && this.#scalers.has(d.ref.name)) return `${this.#urls.activatorUrl}/${d.ref.name}/`;
      return d.uri && /^https?:\/\//.test(d.uri) ? d.uri : undefined;
    };
    const routes = brokerRoutes(triggers, this.#project.events, resolve).map((r) => (r.delivery ? r : { ...r, delivery: BROKER_DEFAULT_DELIVERY }));
    this.#routeBots = Object.fromEntries(triggers.flatMap((t) => (t.metadata.labels['knbot.dev/bot'] ? [[`${t.metadata.namespace}/${t.metadata.name}`, t.metadata.labels['knbot.dev/bot']]] : [])));
    routes.push({ id: 'gateway-egress', url: this.#urls.egressUrl, ordered: true, delivery: BROKER_DEFAULT_DELIVERY, filters: [{ any: EGRESS_TYPES.map((type) => ({ exact: { type } })) }] });
    return routes;
  }

  /**
   * The activator: `/<bot>/<path>` to that bot's instances. Its requests count under route `activator`,
   * their time including any wait for an instance to start, as Knative's activator counts its own.
   */
  #activate(req: IncomingMessage, res: ServerResponse): void {
    const t0 = performance.now();
    res.once('close', () => this.#observeRequest('activator', res.statusCode, (performance.now() - t0) / 1000));
    const url = req.url ?? '/';
    const slash = url.indexOf('/', 1);
    const name = url.slice(1, slash < 0 ? undefined : slash);
    const scaler = this.#scalers.get(name);
    if (!scaler) return void res.writeHead(404, { 'content-length': '0' }).end();
    req.url = slash < 0 ? '/' : url.slice(slash);
    scaler.handle(req, res);
  }

  #routes(): express.Router {
    const router = express.Router();
    // Any CloudEvent into the broker: answered once the broker has stored it (202), or its error.
    router.post('/v1/events', (req, res) => {
      const target = new URL(this.#urls.brokerUrl);
      const out = http.request({ host: target.hostname, port: target.port, path: '/', method: 'POST', headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
        answer.pipe(res);
      });
      out.on('error', (err) => {
        if (!res.headersSent) res.status(503).json({ type: 'urn:knbot:problem:broker_unavailable', status: 503, detail: err.message });
      });
      req.pipe(out);
    });
    router.use(dashboardRoutes(() => this.state()));
    return router;
  }

  /** What the gateway asks of the project on every message and webhook, made when the project is read. */
  #viewOf(project: DevProject): { bots: BotEntry[]; channels: ChannelSecrets } {
    return {
      bots: project.bots.map((b) => ({ name: b.name, namespace: NAMESPACE, timeoutSeconds: b.scale.timeoutMs / 1000 })),
      channels: channelsFromManifests(project.bots, this.#o.env ?? process.env),
    };
  }

  /** What the dashboard shows. */
  state() {
    return {
      bots: [...this.#scalers.values()].map((s) => ({ ...s.snapshot(), coldStarts: this.#metrics.coldStarts(s.name) })),
      timeline: this.#timeline.samples(),
      deliveries: this.#metrics.deliveries(),
      routes: this.#routeBots,
      pending: this.#broker.pending(),
      deadLetters: this.#broker.dead(),
      sockets: this.#gateway.sockets,
    };
  }

  #onTick(): void {
    const snapshots = [...this.#scalers.values()].map((s) => {
      s.tick();
      return s.snapshot();
    });
    this.#timeline.add(snapshots);
  }

  #watch(): void {
    for (const bot of this.#project.bots) {
      let timer: NodeJS.Timeout | undefined;
      try {
        const w = watch(bot.dir, { recursive: true }, (_event, file) => {
          if (file && /(^|\/)(node_modules|\.)/.test(String(file))) return;
          clearTimeout(timer);
          timer = setTimeout(() => void this.#reload(bot.name), 200);
        });
        this.#watchers.push(w);
      } catch (err) {
        this.#o.log('cannot watch bot files', { bot: bot.name, error: (err as Error).message });
      }
    }
  }

  /** A bot's files changed: read its manifest again and roll its instances. */
  async #reload(name: string): Promise<void> {
    let project: DevProject;
    try {
      project = readProject(this.#o.root, scaleOverridesFromEnv(this.#o.env ?? process.env));
    } catch (err) {
      return this.#o.log('bot change not applied', { bot: name, error: (err as Error).message });
    }
    const bot = project.bots.find((b) => b.name === name);
    if (!bot) return;
    this.#project = { ...this.#project, bots: this.#project.bots.map((b) => (b.name === name ? bot : b)) };
    this.#view = this.#viewOf(this.#project);
    this.#o.log('rolling bot', { bot: name });
    await this.#scalers.get(name)?.roll(bot);
  }
}

function stringsOf(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}
