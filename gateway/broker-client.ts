import type { Agent } from 'node:http';
import { type CloudEvent, encodeBinaryText } from '../eventing/codec.ts';

const http = process.getBuiltinModule('node:http');

export class BrokerUnavailableError extends Error {
  readonly status: number | undefined;

  constructor(message: string, status?: number) {
    super(message);
    this.name = 'BrokerUnavailableError';
    this.status = status;
  }
}

/**
 * Sends events into the broker (the local one, or a Knative Broker's ingress) in binary mode over
 * kept-alive connections. Resolves once the broker acknowledged (2xx): from then on the event is the
 * broker's to deliver, so the gateway may acknowledge it to the client or the platform.
 */
export class BrokerClient {
  readonly #url: URL;
  readonly #agent: Agent;
  readonly #timeoutMs: number;

  constructor(url: string, options: { timeoutMs?: number; maxSockets?: number } = {}) {
    this.#url = new URL(url);
    if (this.#url.protocol !== 'http:') throw new Error(`the broker URL must be http:// (got ${url})`);
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 64 });
  }

  get url(): string {
    return this.#url.href;
  }

  send(event: CloudEvent): Promise<void> {
    const msg = encodeBinaryText(event);
    const body = typeof msg.body === 'string' ? Buffer.from(msg.body, msg.encoding) : msg.body;
    // Raw header lists get no Host header from Node; HTTP/1.1 servers refuse a request without one.
    msg.headers.push('host', this.#url.host, 'content-length', String(body.byteLength));
    return new Promise((resolve, reject) => {
      const req = http.request(
        { agent: this.#agent, host: this.#url.hostname, port: this.#url.port, path: this.#url.pathname + this.#url.search, method: 'POST', headers: msg.headers, timeout: this.#timeoutMs },
        (res) => {
          const status = res.statusCode ?? 0;
          let detail = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            if (detail.length < 500) detail += c;
          });
          res.on('end', () => (status >= 200 && status < 300 ? resolve() : reject(new BrokerUnavailableError(`the broker answered ${status}: ${brief(detail)}`, status))));
          res.on('error', (e) => reject(new BrokerUnavailableError(`the broker's answer broke off: ${e.message}`)));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer in ${this.#timeoutMs} ms`)));
      req.on('error', (e) => reject(new BrokerUnavailableError(`the broker is unreachable: ${e.message}`)));
      req.end(body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

function brief(text: string): string {
  try {
    const p = JSON.parse(text) as { detail?: unknown };
    if (typeof p.detail === 'string') return p.detail;
  } catch {}
  return text.slice(0, 200) || '(no body)';
}
