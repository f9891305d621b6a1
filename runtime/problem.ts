import type { ServerResponse } from 'node:http';
import type { FieldError } from '../eventing/codec.ts';

/** An HTTP error answered as problem details (RFC 9457): `type`, `title`, `status`, `detail`. */
export class HttpProblem extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly errors: readonly FieldError[] | undefined;
  readonly headers: Record<string, string> | undefined;

  constructor(status: number, code: string, title: string, detail: string, extra: { errors?: readonly FieldError[]; headers?: Record<string, string> } = {}) {
    super(detail);
    this.name = 'HttpProblem';
    this.status = status;
    this.code = code;
    this.title = title;
    this.errors = extra.errors;
    this.headers = extra.headers;
  }

  toJSON(): Record<string, unknown> {
    return {
      type: `urn:knbot:problem:${this.code}`,
      title: this.title,
      status: this.status,
      detail: this.message,
      ...(this.errors?.length ? { errors: this.errors } : {}),
    };
  }
}

export function sendProblem(res: ServerResponse, problem: HttpProblem, close = false): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(problem.toJSON());
  const headers: Record<string, string | number> = {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(body),
    ...problem.headers,
  };
  if (close) headers.connection = 'close';
  res.writeHead(problem.status, headers).end(body);
}
