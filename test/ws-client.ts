import WebSocket from 'ws';
import { waitFor } from './pod.ts';

export type Frame = { v: number; type: string; seq?: number; [k: string]: unknown };

/** A WebSocket client that keeps every frame it got and can wait for one. */
export class TestClient {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  closed: { code: number; reason: string } | undefined;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data) => this.frames.push(JSON.parse(String(data)) as Frame));
    ws.on('close', (code, reason) => (this.closed = { code, reason: String(reason) }));
  }

  static async connect(url: string, options: WebSocket.ClientOptions = {}): Promise<TestClient> {
    const ws = new WebSocket(url, options);
    const client = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    return client;
  }

  send(frame: Record<string, unknown> | string): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify({ v: 1, ...frame }));
  }

  async next(pred: (f: Frame) => boolean, what: string, timeoutMs = 10_000): Promise<Frame> {
    return waitFor(() => this.frames.find(pred), what, timeoutMs);
  }

  async session(): Promise<string> {
    return String((await this.next((f) => f.type === 'session', 'the session frame')).sessionId);
  }

  async waitClosed(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    return waitFor(() => this.closed, 'the socket to close', timeoutMs);
  }

  close(): void {
    this.ws.terminate();
  }
}
