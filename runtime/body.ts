import type { IncomingMessage } from 'node:http';
import { HttpProblem } from './problem.ts';

/** A body being read: the server's sweeper fails it when the client is too slow. */
export interface PendingBody {
  deadline: number;
  fail(problem: HttpProblem): void;
}

/**
 * Reads a request body up to `limit` bytes. A declared or actual size past the limit rejects with 413
 * before the rest is read; `track` registers the read so a slow client can be timed out (408).
 */
export function readBody(req: IncomingMessage, limit: number, timeoutMs: number, track: Set<PendingBody>): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const pending: PendingBody = {
      deadline: Date.now() + timeoutMs,
      fail: (problem) => {
        done();
        reject(problem);
      },
    };
    const done = () => {
      track.delete(pending);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return pending.fail(tooLarge(limit));
      chunks.push(chunk);
    };
    const onEnd = () => {
      done();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (e: Error) => pending.fail(new HttpProblem(400, 'body_error', 'Bad request body', e.message));
    const onAborted = () => pending.fail(new HttpProblem(400, 'client_aborted', 'Client went away', 'the client closed the connection before the body ended'));
    track.add(pending);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

function tooLarge(limit: number): HttpProblem {
  return new HttpProblem(413, 'body_too_large', 'Request body too large', `the body exceeds the limit of ${limit} bytes`);
}

export function bodyTimeout(timeoutMs: number): HttpProblem {
  return new HttpProblem(408, 'body_timeout', 'Request body too slow', `the body did not arrive within ${timeoutMs} ms`);
}
