// Signature checks shared by the adapters. Every comparison of a secret or a MAC is constant-time over
// equal-length buffers; a length mismatch is a plain failure (it reveals only the length, which the
// scheme makes public anyway). Formats are checked strictly before decoding, because Buffer.from(…,
// 'hex'|'base64') silently stops at the first bad character.
import { createHmac, createPublicKey, type KeyObject, timingSafeEqual, verify } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { type Secrets, WebhookError } from './types.ts';

/**
 * One header's value. Node lower-cases names; a header object built elsewhere may not, so another case
 * is found too. A repeated header (an array) counts as absent: a signature is never ambiguous.
 */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const lower = name.toLowerCase();
  let v: string | string[] | undefined = headers[lower];
  if (v === undefined) {
    for (const key of Object.keys(headers)) {
      if (key.toLowerCase() === lower) {
        v = headers[key];
        break;
      }
    }
  }
  if (Array.isArray(v)) return v.length === 1 ? v[0] : undefined;
  return v;
}

export function safeEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Compares two secrets given as text, in constant time for equal lengths. */
export function secretEquals(given: string, expected: string): boolean {
  return safeEqual(Buffer.from(given, 'utf8'), Buffer.from(expected, 'utf8'));
}

export function hmacSha256(secret: string, ...parts: (string | Buffer)[]): Buffer {
  const mac = createHmac('sha256', secret);
  for (const p of parts) mac.update(p);
  return mac.digest();
}

/** `bytes` bytes written as hex (either case), or undefined when the text is anything else. */
export function parseHex(text: string, bytes: number): Buffer | undefined {
  if (text.length !== bytes * 2 || !/^[0-9a-fA-F]*$/.test(text)) return undefined;
  return Buffer.from(text, 'hex');
}

/** `bytes` bytes written as standard base64, padded or not, or undefined when the text is anything else. */
export function parseBase64(text: string, bytes: number): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const unpadded = text.replace(/=+$/, '');
  if (unpadded.length !== Math.ceil((bytes * 4) / 3)) return undefined;
  const out = Buffer.from(unpadded, 'base64');
  return out.length === bytes ? out : undefined;
}

// An Ed25519 public key is 32 raw bytes; Node takes it wrapped as SubjectPublicKeyInfo DER (RFC 8410).
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const ed25519Keys = new Map<string, KeyObject>();

function ed25519Key(publicKeyHex: string): KeyObject {
  let key = ed25519Keys.get(publicKeyHex);
  if (!key) {
    const raw = parseHex(publicKeyHex, 32);
    if (!raw) throw new WebhookError(500, 'invalid_secret', 'the configured Ed25519 public key is not 32 bytes of hex');
    key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    if (ed25519Keys.size < 64) ed25519Keys.set(publicKeyHex, key);
  }
  return key;
}

/** Ed25519 (RFC 8032) over `message`; false for any malformed signature. */
export function verifyEd25519(publicKeyHex: string, message: Buffer, signatureHex: string): boolean {
  const signature = parseHex(signatureHex, 64);
  if (!signature) return false;
  return verify(null, message, ed25519Key(publicKeyHex), signature);
}

/**
 * A Unix-seconds timestamp header within `windowMs` of now, in the past or the future; throws 401
 * otherwise (a replayed request carries an old timestamp, and its signature covers it).
 */
export function checkTimestamp(value: string | undefined, header: string, nowMs: number, windowMs: number): string {
  if (value === undefined || !/^\d{1,12}$/.test(value)) throw unauthorized('missing_timestamp', `${header} is missing or not a Unix time in seconds`);
  if (Math.abs(nowMs - Number(value) * 1000) > windowMs) throw unauthorized('stale_timestamp', `${header} is more than ${windowMs / 1000} s from now`);
  return value;
}

export function unauthorized(code: string, message: string): WebhookError {
  return new WebhookError(401, code, message);
}

/** A channel key the adapter cannot work without; its absence is the gateway's misconfiguration. */
export function requireSecret(secrets: Secrets, key: string, platform: string): string {
  const v = secrets[key];
  if (v === undefined || v === '') throw new WebhookError(500, 'missing_secret', `the ${platform} channel has no ${key} configured`);
  return v;
}

export function requirePost(method: string): void {
  if (method !== 'POST') throw new WebhookError(405, 'method_not_allowed', 'this webhook takes POST only', { allow: 'POST' });
}

/** The body as JSON, after its signature was checked. */
export function parseJson(rawBody: Buffer): unknown {
  try {
    return JSON.parse(rawBody.toString('utf8'));
  } catch {
    throw new WebhookError(400, 'malformed_json', 'the body is not valid JSON');
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function malformed(message: string): WebhookError {
  return new WebhookError(400, 'malformed_payload', message);
}
