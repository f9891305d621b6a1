import { type HttpProblem, sendProblem } from './problem.ts';

const { ServerResponse } = process.getBuiltinModule('node:http');

/**
 * Something the pod is working on, counted against its concurrency limit: an HTTP request
 * (`HttpWork`) or a message on a direct WebSocket (`MessageWork`). The pod tracks when it started,
 * its deadline and its AbortSignal; a turn needs only the signal.
 */
export interface Work {
  /** On the performance.now() clock. */
  started: number;
  deadline: number;
  /** The `route` label of knbot_requests_total. */
  route: string;
  /** Set once the server stopped waiting for the bot (deadline or drain timeout). */
  timedOut: boolean;
  /** The `code` label it is counted under when it is over. */
  readonly statusCode: number;
  readonly signal: AbortSignal;
  abort(reason: Error): void;
  /** Answers with `problem` in place of the bot's answer: the pod stopped waiting for it. */
  answerProblem(problem: HttpProblem): void;
  /** Shows whoever waits on this work that the bot is typing, where the way back allows it. */
  typing?(): void;
}

/**
 * The response of a request being worked on, with what the server tracks about it. One object per
 * request instead of two; the server makes its responses of this class.
 */
export class HttpWork extends ServerResponse implements Work {
  started = 0;
  deadline = 0;
  route = '';
  timedOut = false;
  #controller: AbortController | undefined;

  /** Aborted when the client goes away before the answer is sent, or by `abort`. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.destroyed && !this.writableFinished) this.#controller.abort(new Error('client went away'));
      else this.once('close', () => this.writableFinished || this.abort(new Error('client went away')));
    }
    return this.#controller.signal;
  }

  abort(reason: Error): void {
    (this.#controller ??= new AbortController()).abort(reason);
  }

  /** A stream under way ends with what it has; anything else gets `problem`. */
  answerProblem(problem: HttpProblem): void {
    if (this.headersSent) this.end();
    else sendProblem(this, problem, true);
  }
}

/**
 * A chat message on a direct WebSocket (runtime/ws.ts), counted as a request from its `ack` until its
 * reply or error frame. Its signal aborts only when the pod gives up on it: a client that drops the
 * socket may resume and read the reply.
 */
export class MessageWork implements Work {
  started = 0;
  deadline = 0;
  route = '';
  timedOut = false;
  statusCode = 200;
  readonly #controller = new AbortController();
  readonly #onProblem: (problem: HttpProblem) => void;
  readonly #onDone: (work: MessageWork) => void;
  #done = false;
  /** Sends the socket's `typing` frame for this message (`ctx.typing()`). */
  onTyping: (() => void) | undefined;

  constructor(onProblem: (problem: HttpProblem) => void, onDone: (work: MessageWork) => void) {
    this.#onProblem = onProblem;
    this.#onDone = onDone;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get done(): boolean {
    return this.#done;
  }

  abort(reason: Error): void {
    this.#controller.abort(reason);
  }

  typing(): void {
    if (!this.#done) this.onTyping?.();
  }

  answerProblem(problem: HttpProblem): void {
    if (this.#done) return;
    this.#onProblem(problem);
    this.finish(problem.status);
  }

  /** The message is answered (or refused) with `status`: it leaves the pod's in-flight work, once. */
  finish(status: number): void {
    if (this.#done) return;
    this.#done = true;
    this.statusCode = status;
    this.#onDone(this);
  }
}
