import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FieldError } from '../eventing/codec.ts';

const { STATUS_CODES } = process.getBuiltinModule('node:http');

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

/** Answers an HTTP upgrade the server will not take: a whole response on the raw socket, then closed. */
export function writeProblem(socket: Duplex, problem: HttpProblem): void {
  const body = JSON.stringify(problem.toJSON());
  const headers = { 'content-type': 'application/problem+json', 'content-length': String(Buffer.byteLength(body)), ...problem.headers, connection: 'close' };
  const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(`HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? ''}\r\n${head}\r\n${body}`);
}
