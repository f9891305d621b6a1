import type { Server } from 'node:http';
import type { Registry } from 'prom-client';
import { metricsText } from '../../eventing/metrics.ts';

const http = process.getBuiltinModule('node:http');

export interface OperatorHttpOptions {
  registry: Registry;
  /** `/readyz`: 200 while true. */
  ready: () => boolean;
}

/**
 * The operator's own port: `GET /metrics` for Prometheus, `/healthz` (200 while the event loop runs:
 * the liveness probe) and `/readyz` (the readiness probe), as controller-runtime serves them.
 */
export class OperatorHttpServer {
  readonly #o: OperatorHttpOptions;
  readonly #server: Server;

  constructor(options: OperatorHttpOptions) {
    this.#o = options;
    this.#server = http.createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { allow: 'GET, HEAD', 'content-length': '0' }).end();
      if (path === '/metrics') return void metricsText(this.#o.registry).then(({ status, headers, body }) => res.writeHead(status, headers).end(body));
      if (path === '/healthz') return void res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' }).end('ok');
      if (path === '/readyz') {
        const ready = this.#o.ready();
        return void res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ok' : 'not ready');
      }
      res.writeHead(404, { 'content-length': '0' }).end();
    });
  }

  /** Listens; resolves with the port. */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => resolve((this.#server.address() as { port: number }).port));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server.listening) return resolve();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
