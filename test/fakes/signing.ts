// Signing webhooks the way each platform does, so tests can build requests the adapters must accept;
// and a loopback capture that turns a real HTTP request into the `WebhookRequest` the gateway builds.
import { createHmac, createPrivateKey, sign } from 'node:crypto';
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WebhookRequest } from '../../gateway/platforms/types.ts';

/** RFC 8032 §7.1 TEST 1. */
export const RFC8032_TEST1 = {
  secretKey: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
  publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
  signatureOfEmpty:
    'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
};

/** Slack v0: `v0=` + hex HMAC-SHA256 of `v0:<timestamp>:<body>` under the signing secret. */
export function signSlack(secret: string, timestamp: string | number, body: string | Buffer): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:`).update(body).digest('hex')}`;
}

/** LINE: base64 HMAC-SHA256 of the body under the channel secret. */
export function signLine(secret: string, body: string | Buffer): string {
  return createHmac('sha256', secret).update(body).digest('base64');
}

/** Meta (and GitHub): `sha256=` + hex HMAC-SHA256 of the body under the app secret. */
export function signHub(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Discord: hex Ed25519 over `timestamp + body`, with a 32-byte seed as the private key. */
export function signDiscord(secretKeyHex: string, timestamp: string | number, body: string | Buffer): string {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(secretKeyHex, 'hex')]);
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  return sign(null, Buffer.concat([Buffer.from(String(timestamp)), Buffer.from(body)]), key).toString('hex');
}

export interface RequestParts {
  method?: 'GET' | 'POST';
  headers?: IncomingHttpHeaders;
  body?: string | Buffer;
  query?: string;
  bot?: string;
}

/** A `WebhookRequest` built directly, for tests of one adapter's logic. */
export function webhook(parts: RequestParts): WebhookRequest {
  return {
    method: parts.method ?? 'POST',
    headers: parts.headers ?? {},
    query: new URLSearchParams(parts.query ?? ''),
    rawBody: Buffer.from(parts.body ?? ''),
    bot: parts.bot ?? 'echo',
    namespace: 'default',
  };
}

/**
 * Sends a real HTTP request with `headers` (in whatever case they are written) to a loopback server
 * and returns what Node received as a `WebhookRequest`: the headers as IncomingHttpHeaders, the bytes
 * as they arrived.
 */
export async function overHttp(parts: RequestParts & { headers: Record<string, string> }): Promise<WebhookRequest> {
  let captured: ((req: WebhookRequest) => void) | undefined;
  const received = new Promise<WebhookRequest>((resolve) => (captured = resolve));
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      captured!({ method: req.method as 'GET' | 'POST', headers: req.headers, query: url.searchParams, rawBody: Buffer.concat(chunks), bot: parts.bot ?? 'echo', namespace: 'default' });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const method = parts.method ?? 'POST';
    const init: RequestInit = { method, headers: parts.headers };
    if (method === 'POST') init.body = parts.body ?? '';
    await fetch(`http://127.0.0.1:${port}/hooks${parts.query ? `?${parts.query}` : ''}`, init);
    return await received;
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
