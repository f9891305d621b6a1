const { ServerResponse } = process.getBuiltinModule('node:http');

/**
 * The response of a request being worked on, with what the server tracks about it: when it started,
 * its deadline and its AbortSignal (made when first asked for). One object per request instead of two;
 * the server makes its responses of this class.
 */
export class Work extends ServerResponse {
  /** On the performance.now() clock. */
  started = 0;
  deadline = 0;
  route = '';
  /** Set once the server stopped waiting for the bot (deadline or drain timeout). */
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
}
