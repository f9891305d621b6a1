import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';

export interface Received {
  at: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A real HTTP subscriber for broker tests: records every request and answers with what `answer`
 * says for it (status, headers, body).
 */
export class Subscriber {
  readonly received: Received[] = [];
  #server: Server | undefined;
  #answer: (r: Received, n: number) => { status: number; headers?: Record<string, string>; body?: string };
  port = 0;

  constructor(answer: (r: Received, n: number) => { status: number; headers?: Record<string, string>; body?: string } = () => ({ status: 202 })) {
    this.#answer = answer;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/`;
  }

  async listen(port = 0): Promise<this> {
    this.#server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        const r: Received = { at: Date.now(), headers: req.headers, body };
        this.received.push(r);
        const a = this.#answer(r, this.received.length);
        res.writeHead(a.status, { 'content-length': String(Buffer.byteLength(a.body ?? '')), ...a.headers }).end(a.body ?? '');
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(port, '127.0.0.1', () => resolve()));
    this.port = (this.#server!.address() as { port: number }).port;
    return this;
  }

  async close(): Promise<void> {
    if (!this.#server) return;
    await new Promise<void>((resolve) => {
      this.#server!.close(() => resolve());
      this.#server!.closeAllConnections();
    });
  }
}
