import type { ServerResponse } from 'node:http';

/** One request being worked on: its deadline, for the sweeper, and its AbortSignal, made when first asked for. */
export class Work {
  /** On the performance.now() clock. */
  readonly deadline: number;
  readonly res: ServerResponse;
  timedOut = false;
  #controller: AbortController | undefined;

  constructor(res: ServerResponse, deadline: number) {
    this.res = res;
    this.deadline = deadline;
  }

  /** Aborted when the client goes away before the answer is sent, or by `abort`. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.res.destroyed && !this.res.writableFinished) this.#controller.abort(new Error('client went away'));
      else this.res.once('close', () => this.res.writableFinished || this.abort(new Error('client went away')));
    }
    return this.#controller.signal;
  }

  abort(reason: Error): void {
    (this.#controller ??= new AbortController()).abort(reason);
  }
}
