import type { Span } from '@opentelemetry/api';
import { ACTION_INVOKED, MESSAGE_RECEIVED, chatTypingEvent, conversationOfEvent } from '../eventing/chat.ts';
import type { CloudEvent } from '../eventing/codec.ts';
import type { ChatMessage, EmitEvent, InitContext, Session, TurnContext } from './bot.ts';
import { conversationKey, sessionKey } from './chat.ts';
import type { ServeConfig } from './config.ts';
import { type Logger, traceFields } from './log.ts';
import { type MaybePromise, andThen, isPromiseLike } from './maybe.ts';
import type { PodMetrics } from './metrics.ts';
import { type BurstPiece, KeyedQueue, type SessionStore, type TurnHold } from './session-store.ts';
import { completeEvent, sendToSink } from './sink.ts';
import { type Tracing, formatTraceparent } from './tracing.ts';
import { Debouncer, IN_PROGRESS, Interrupts, TurnSkipped, interruptedSkip, mergeMessages } from './turn-policy.ts';
import type { Work } from './work.ts';

/** What every turn of the pod shares. */
export interface TurnDeps {
  config: ServeConfig;
  log: Logger;
  metrics: PodMetrics;
  tracing: Tracing;
  sessions: SessionStore;
  /** Aborted when the pod gives up on in-flight work (drain timeout). */
  stop: AbortSignal;
}

/** A conversation's session: stored under `key`, shown to the bot as `id`. */
export interface SessionAt {
  key: string;
  id: string;
}

const INVALID_TRACE = '00000000000000000000000000000000';

/** The `ctx` of one turn. Its session is made when the bot first asks for it, and saved only then. */
class Turn implements TurnContext {
  readonly event: CloudEvent | undefined;
  /** Where the session is stored (runtime/chat.ts sessionKey); `session.id` is the conversation's own key. */
  readonly key: string;
  readonly #id: string;
  #deps: TurnDeps;
  #work: Work;
  #span: Span;
  #state: Record<string, unknown>;
  #session: Session | undefined;
  #interrupt: AbortSignal | undefined;
  #log: Logger | undefined;

  constructor(deps: TurnDeps, at: SessionAt, state: Record<string, unknown>, work: Work, span: Span, event: CloudEvent | undefined, interrupt: AbortSignal | undefined) {
    this.#deps = deps;
    this.key = at.key;
    this.#id = at.id;
    this.#state = state;
    this.#work = work;
    this.#span = span;
    this.event = event;
    this.#interrupt = interrupt;
  }

  get bot() { return this.#deps.config.name; }
  get config() { return this.#deps.config.config; }
  get log(): Logger {
    return (this.#log ??= this.#deps.log.child(traceFields(this.#span.spanContext())));
  }
  get metrics() { return this.#deps.metrics; }
  get tracer() { return this.#deps.tracing.tracer; }

  get signal(): AbortSignal {
    return AbortSignal.any(this.#interrupt ? [this.#work.signal, this.#deps.stop, this.#interrupt] : [this.#work.signal, this.#deps.stop]);
  }

  get session(): Session {
    return (this.#session ??= { id: this.#id, state: this.#state });
  }

  get touched(): boolean {
    return this.#session !== undefined;
  }

  async typing(): Promise<void> {
    const event = this.event;
    // A direct socket's message: its own `typing` frame.
    if (!event) return this.#work.typing?.();
    if ((event.type !== MESSAGE_RECEIVED && event.type !== ACTION_INVOKED) || !this.#deps.config.sink) return;
    await this.emit(chatTypingEvent({ id: event.id, conversation: conversationOfEvent(event), event }, this.#deps.config.source));
  }

  async emit(partial: EmitEvent): Promise<void> {
    const { config, metrics } = this.#deps;
    const event = completeEvent(partial, { overrides: config.ceOverrides, source: config.source });
    const sc = this.#span.spanContext();
    if (event.traceparent === undefined && sc.traceId !== INVALID_TRACE) event.traceparent = formatTraceparent(sc);
    try {
      await sendToSink(event, { url: config.sink, overrides: config.ceOverrides, source: config.source, timeoutMs: config.timeoutMs }, this.#work.signal);
      metrics.delivered('ok');
    } catch (err) {
      metrics.delivered('error');
      throw err;
    }
  }
}

/**
 * Runs turns (DESIGN §4.3): one conversation's turns in order, its session loaded before a turn and
 * saved after it, the bot's code inside the turn's span. Synchronous all the way when the bot answers
 * synchronously and the store is in memory.
 */
export class Turns {
  readonly #deps: TurnDeps;
  readonly #queue = new KeyedQueue();
  readonly #debouncer: Debouncer | undefined;
  readonly #interrupts: Interrupts | undefined;
  /** Settles once the turns can start: interrupts from other pods are heard. Never rejects. */
  readonly ready: Promise<void>;

  constructor(deps: TurnDeps) {
    this.#deps = deps;
    const { turnPolicy, debounceMs } = deps.config.sessions;
    if (turnPolicy === 'debounce') this.#debouncer = new Debouncer(debounceMs);
    const interrupts = turnPolicy === 'interrupt' ? new Interrupts() : undefined;
    this.#interrupts = interrupts;
    const listening = interrupts && deps.sessions.onInterrupt?.((key, by) => interrupts.interrupt(key, by));
    this.ready = listening
      ? listening.catch((err: Error) => deps.log.warn('interrupts from other pods are not heard', { bot: deps.config.name, err }))
      : Promise.resolve();
  }

  /** Whether a message for `key` would be turned away now (`reject` and a turn running). */
  rejects(key: string): boolean {
    return this.#deps.config.sessions.turnPolicy === 'reject' && this.#queue.busy(key);
  }

  /**
   * A chat message's turn under the pod's turn policy (runtime/turn-policy.ts). `fn` gets the message
   * the turn is for: under `debounce`, the burst merged into one. A TurnSkipped when the message gets
   * no turn of its own.
   */
  message<T>(msg: ChatMessage, work: Work, span: Span, event: CloudEvent | undefined, fn: (msg: ChatMessage, ctx: TurnContext) => MaybePromise<T>): MaybePromise<T | TurnSkipped> {
    const at = { key: sessionKey(msg), id: conversationKey(msg) };
    const key = at.key;
    if (this.#debouncer) {
      if (this.#deps.sessions.gather) return this.#gathered(at, msg, work, span, event, fn);
      return this.#debouncer.add(key, msg, (merged) => this.run(at, work, span, event, (ctx) => fn(merged, ctx)));
    }
    if (this.#interrupts) return this.#interruptible(at, msg, work, span, event, fn);
    if (this.rejects(key)) return IN_PROGRESS;
    return this.#run(at, work, span, event, (ctx) => fn(msg, ctx), this.#deps.config.sessions.turnPolicy !== 'reject');
  }

  /** `debounce` with a store shared by pods: the burst gathers there, whichever pods its messages reached. */
  async #gathered<T>(at: SessionAt, msg: ChatMessage, work: Work, span: Span, event: CloudEvent | undefined, fn: (msg: ChatMessage, ctx: TurnContext) => MaybePromise<T>): Promise<T | TurnSkipped> {
    const piece: BurstPiece = { id: msg.id, text: msg.text, ...(msg.attachments?.length ? { attachments: msg.attachments } : {}) };
    const signal = AbortSignal.any([work.signal, this.#deps.stop]);
    const gathered = await this.#deps.sessions.gather!(at.key, piece, this.#deps.config.sessions.debounceMs, signal);
    if ('by' in gathered) return new TurnSkipped('merged', gathered.by);
    // The last message's id, user and event, with every text of the burst in arrival order.
    const merged = gathered.burst.slice(0, -1).reduceRight((later: ChatMessage, earlier) => mergeMessages({ ...msg, id: earlier.id, text: earlier.text, attachments: earlier.attachments }, later), msg);
    return this.run(at, work, span, event, (ctx) => fn(merged, ctx));
  }

  initContext(): InitContext {
    const { config, log, metrics, tracing, stop } = this.#deps;
    return {
      bot: config.name,
      config: config.config,
      log,
      metrics,
      get tracer() {
        return tracing.tracer;
      },
      signal: stop,
    };
  }

  /** A turn of the conversation `at`: after its earlier turns, with its session loaded, and saved after. */
  run<T>(at: SessionAt, work: Work, span: Span, event: CloudEvent | undefined, fn: (ctx: TurnContext) => MaybePromise<T>): MaybePromise<T> {
    return this.#run(at, work, span, event, fn, true) as MaybePromise<T>;
  }

  /** `wait: false`: IN_PROGRESS when another pod holds the conversation (`reject`). */
  #run<T>(at: SessionAt, work: Work, span: Span, event: CloudEvent | undefined, fn: (ctx: TurnContext) => MaybePromise<T>, wait: boolean): MaybePromise<T | TurnSkipped> {
    return this.#queue.run(at.key, () =>
      this.#held(at.key, work, wait, (hold) => andThen(hold?.state ?? this.#deps.sessions.load(at.key), (state) => this.#exec(at, state, work, span, event, fn, undefined, hold))),
    );
  }

  /**
   * Runs `body` while the conversation is held against other pods, when the store is shared by pods;
   * straight away otherwise (the pod's queue is enough). A turn `interrupt`ed while it waits for the
   * hold, or by the time it has it, does not run.
   */
  #held<T>(key: string, work: Work, wait: boolean, body: (hold: TurnHold | undefined) => MaybePromise<T>, interrupt?: AbortSignal): MaybePromise<T | TurnSkipped> {
    const store = this.#deps.sessions;
    if (!store.hold) return body(undefined);
    const signal = AbortSignal.any(interrupt ? [work.signal, this.#deps.stop, interrupt] : [work.signal, this.#deps.stop]);
    return store.hold(key, { wait, signal }).then(
      async (hold) => {
        if (!hold) return IN_PROGRESS;
        try {
          return interrupt?.aborted ? interruptedSkip(interrupt) : await body(hold);
        } finally {
          await hold.release();
        }
      },
      (err: unknown) => {
        if (interrupt?.aborted) return interruptedSkip(interrupt);
        throw err;
      },
    );
  }

  /**
   * `interrupt`: the conversation's unsettled turns are aborted, this one queues behind them. A turn
   * interrupted before it started does not run; one the bot gave up on without an answer is skipped too.
   */
  #interruptible<T>(at: SessionAt, msg: ChatMessage, work: Work, span: Span, event: CloudEvent | undefined, fn: (msg: ChatMessage, ctx: TurnContext) => MaybePromise<T>): MaybePromise<T | TurnSkipped> {
    const interrupts = this.#interrupts!;
    const key = at.key;
    const controller = interrupts.enter(key, msg);
    // Sent before this turn asks for the hold, on the same connection: the pod holding it hears it first.
    this.#deps.sessions.interrupt?.(key, msg.id).catch((err: Error) => this.#deps.log.warn('the interrupt did not reach the other pods', { bot: this.#deps.config.name, err }));
    const signal = controller.signal;
    const turn = () =>
      signal.aborted
        ? interruptedSkip(signal)
        : this.#held(
            key,
            work,
            true,
            (hold) =>
              andThen(hold?.state ?? this.#deps.sessions.load(key), (state) =>
                andThen(this.#exec(at, state, work, span, event, (ctx) => fn(msg, ctx), signal, hold), (out): T | TurnSkipped => (out === undefined && signal.aborted ? interruptedSkip(signal) : out)),
              ),
            signal,
          );
    let out: MaybePromise<T | TurnSkipped>;
    try {
      out = this.#queue.run(key, turn);
    } catch (err) {
      interrupts.leave(key, controller);
      throw err;
    }
    if (!isPromiseLike(out)) {
      interrupts.leave(key, controller);
      return out;
    }
    return (out as Promise<T | TurnSkipped>).finally(() => interrupts.leave(key, controller));
  }

  #exec<T>(at: SessionAt, state: Record<string, unknown>, work: Work, span: Span, event: CloudEvent | undefined, fn: (ctx: TurnContext) => MaybePromise<T>, interrupt: AbortSignal | undefined, hold: TurnHold | undefined): MaybePromise<T> {
    const turn = new Turn(this.#deps, at, state, work, span, event, interrupt);
    const out = this.#deps.tracing.within(span, fn, turn);
    return isPromiseLike(out) ? (out as Promise<T>).then((value) => this.#save(turn, value, hold)) : this.#save(turn, out as T, hold);
  }

  #save<T>(turn: Turn, value: T, hold: TurnHold | undefined): MaybePromise<T> {
    if (!turn.touched) return value;
    if (!hold) return andThen(this.#deps.sessions.save(turn.key, turn.session.state), () => value);
    return hold.save(turn.session.state).then((saved) => {
      // Another pod may have taken the conversation since: its state is not overwritten with an older turn's.
      if (!saved) this.#deps.log.warn('the turn outlived its hold on the conversation: its session state was not saved', { bot: this.#deps.config.name });
      return value;
    });
  }
}
