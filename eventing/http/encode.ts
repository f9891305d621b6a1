import type { CloudEvent } from '../cloudevent.ts';
import { toJsonObject } from '../json-format.ts';
import { encodeHeaderValue } from './header-value.ts';
import { mediaTypeOf } from './decode.ts';
import { isJsonMediaType } from './media-type.ts';

/** An HTTP message to send: header names in lower case, and the body. */
export interface HttpMessage {
  headers: Record<string, string>;
  body: Buffer;
}

export const STRUCTURED_CONTENT_TYPE = 'application/cloudevents+json; charset=utf-8';
export const BATCH_CONTENT_TYPE = 'application/cloudevents-batch+json; charset=utf-8';

/**
 * Binary mode (HTTP binding §3.1): every attribute but `datacontenttype` as a percent-encoded `ce-`
 * header, `datacontenttype` as `Content-Type`, the data as the body. JSON data (declared, or implied
 * by an absent `datacontenttype`) is serialized; text is UTF-8 (Latin-1 when its charset says so).
 */
export function encodeBinary(event: CloudEvent): HttpMessage {
  const { headers: list, body, encoding } = encodeBinaryText(event);
  const headers: Record<string, string> = {};
  for (let i = 0; i < list.length; i += 2) headers[list[i]!] = list[i + 1]!;
  return { headers, body: typeof body === 'string' ? Buffer.from(body, encoding) : Buffer.from(body.buffer, body.byteOffset, body.byteLength) };
}

/**
 * A binary-mode message as a server writes it: headers as a flat `[name, value, ...]` list (Node's
 * writeHead takes it as is) and the body left as text where it is text.
 */
export interface BinaryMessage {
  headers: string[];
  body: string | Uint8Array;
  encoding: 'utf8' | 'latin1';
}

export function encodeBinaryText(event: CloudEvent): BinaryMessage {
  const headers: string[] = [];
  for (const name in event) {
    const v = event[name];
    if (v === undefined || name === 'data' || name === 'datacontenttype') continue;
    headers.push(headerName(name), encodeHeaderValue(typeof v === 'string' ? v : String(v)));
  }
  const ct = event.datacontenttype;
  if (ct !== undefined) headers.push('content-type', ct);
  const data = event.data;
  if (data === undefined) return { headers, body: '', encoding: 'utf8' };
  if (data instanceof Uint8Array) return { headers, body: data, encoding: 'utf8' };
  const mt = ct === undefined ? undefined : mediaTypeOf(ct);
  if (ct === undefined || (mt !== undefined && isJsonMediaType(mt))) {
    if (ct === undefined) headers.push('content-type', 'application/json');
    return { headers, body: JSON.stringify(data), encoding: 'utf8' };
  }
  if (typeof data !== 'string') throw new TypeError(`data of a ${ct} event must be a string or a Uint8Array, not ${typeof data}`);
  const charset = mt?.params.charset?.toLowerCase();
  const latin1 = charset === 'iso-8859-1' || charset === 'latin1' || charset === 'us-ascii';
  return { headers, body: data, encoding: latin1 ? 'latin1' : 'utf8' };
}

/** Structured mode (HTTP binding §3.2) in the JSON format. */
export function encodeStructured(event: CloudEvent): HttpMessage {
  return { headers: { 'content-type': STRUCTURED_CONTENT_TYPE }, body: Buffer.from(JSON.stringify(toJsonObject(event))) };
}

/** Batch mode (HTTP binding §3.3) in the JSON batch format; an empty batch is allowed. */
export function encodeBatch(events: readonly CloudEvent[]): HttpMessage {
  return { headers: { 'content-type': BATCH_CONTENT_TYPE }, body: Buffer.from(JSON.stringify(events.map(toJsonObject))) };
}

const headerNames = new Map<string, string>();
/** `ce-<name>`, made once per attribute name: the same few names go out on every event. */
function headerName(name: string): string {
  let h = headerNames.get(name);
  if (h === undefined) {
    h = `ce-${name}`;
    if (headerNames.size < 1024) headerNames.set(name, h);
  }
  return h;
}
