import type { IncomingMessage } from 'node:http';
import { HttpProblem } from './problem.ts';

/** A body being read: the server's sweeper fails it when the client is too slow. */
export interface PendingBody {
  /** On the performance.now() clock. */
  deadline: number;
  fail(problem: HttpProblem): void;
}

type Done = (err: HttpProblem | null, body: Buffer) => void;

const EMPTY = Buffer.alloc(0);

/** Reads one request body into memory, at most `limit` bytes, and calls `done` once. */
class BodyReader implements PendingBody {
  readonly deadline: number;
  readonly #limit: number;
  readonly #track: Set<PendingBody>;
  readonly #done: Done;
  #chunks: Buffer[] = [];
  #size = 0;
  #finished = false;

  constructor(req: IncomingMessage, limit: number, timeoutMs: number, track: Set<PendingBody>, done: Done) {
    this.deadline = performance.now() + timeoutMs;
    this.#limit = limit;
    this.#track = track;
    this.#done = done;
    track.add(this);
    // Left attached when done: later events find #finished set, and the request goes with its socket.
    req.on('data', this.#onData);
    req.on('end', this.#onEnd);
    req.on('error', this.#onError);
  }

  #onData = (chunk: Buffer): void => {
    if (this.#finished) return;
    this.#size += chunk.length;
    if (this.#size > this.#limit) return this.fail(tooLarge(this.#limit));
    this.#chunks.push(chunk);
  };

  #onEnd = (): void => {
    const chunks = this.#chunks;
    this.#finish(null, chunks.length === 1 ? chunks[0]! : chunks.length === 0 ? EMPTY : Buffer.concat(chunks, this.#size));
  };

  // A client that goes away mid-body makes the request emit an `aborted` error.
  #onError = (e: Error): void => this.fail(new HttpProblem(400, 'body_error', 'Bad request body', e.message));

  fail(problem: HttpProblem): void {
    this.#finish(problem, EMPTY);
  }

  #finish(err: HttpProblem | null, body: Buffer): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#track.delete(this);
    this.#chunks = [];
    this.#done(err, body);
  }
}

/**
 * Reads a request body up to `limit` bytes. A declared or actual size past the limit fails with 413
 * before the rest is read; `track` holds the read so the server's sweeper can time a slow client out.
 */
export function readBody(req: IncomingMessage, limit: number, timeoutMs: number, track: Set<PendingBody>, done: Done): void {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return done(tooLarge(limit), EMPTY);
  new BodyReader(req, limit, timeoutMs, track, done);
}

/** The same as a promise, for paths that are asynchronous anyway. */
export function readBodyAsync(req: IncomingMessage, limit: number, timeoutMs: number, track: Set<PendingBody>): Promise<Buffer> {
  return new Promise((resolve, reject) => readBody(req, limit, timeoutMs, track, (err, body) => (err ? reject(err) : resolve(body))));
}

function tooLarge(limit: number): HttpProblem {
  return new HttpProblem(413, 'body_too_large', 'Request body too large', `the body exceeds the limit of ${limit} bytes`);
}

export function bodyTimeout(timeoutMs: number): HttpProblem {
  return new HttpProblem(408, 'body_timeout', 'Request body too slow', `the body did not arrive within ${timeoutMs} ms`);
}
