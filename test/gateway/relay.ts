import { type Server, type Socket, connect, createServer } from 'node:net';

interface Link {
  client: Socket;
  upstream: Socket;
  webSocket: boolean;
}

/**
 * A TCP relay in front of a server, so a test can break the network under a live connection: `cut`
 * resets both ends of every WebSocket passing through, and each side sees its peer vanish as it would
 * on a dropped link, with nothing in the server or the client changed for the test.
 */
export class Relay {
  readonly #target: number;
  readonly #server: Server;
  readonly #links = new Set<Link>();
  #down = false;

  constructor(targetPort: number) {
    this.#target = targetPort;
    this.#server = createServer((client) => this.#link(client));
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve, reject) => this.#server.once('error', reject).listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as { port: number }).port}`;
  }

  /** Resets every WebSocket connection through the relay; returns how many there were. */
  cut(): number {
    let n = 0;
    for (const link of this.#links) {
      if (!link.webSocket) continue;
      link.client.resetAndDestroy();
      link.upstream.resetAndDestroy();
      n++;
    }
    return n;
  }

  /** While down, new connections are reset as they arrive (the server is unreachable). */
  setDown(down: boolean): void {
    this.#down = down;
  }

  async close(): Promise<void> {
    for (const l of this.#links) {
      l.client.destroy();
      l.upstream.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #link(client: Socket): void {
    if (this.#down) return void client.resetAndDestroy();
    const upstream = connect(this.#target, '127.0.0.1');
    const link: Link = { client, upstream, webSocket: false };
    this.#links.add(link);
    client.once('data', (first: Buffer) => (link.webSocket = /^GET \/v1\/ws[?\s]/.test(first.toString('latin1', 0, 16))));
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.#links.delete(link);
    };
    for (const s of [client, upstream]) s.on('error', end).on('close', end);
  }
}
