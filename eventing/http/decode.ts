import { type CloudEvent, EXTENSION_NAME, isCoreAttribute, validateCloudEvent } from '../cloudevent.ts';
import { CloudEventError, type FieldError } from '../errors.ts';
import { fromJsonObject } from '../json-format.ts';
import { decodeHeaderValue } from './header-value.ts';
import { type ContentMode, contentModeOf, isJsonMediaType, isTextMediaType, type MediaType, parseMediaType } from './media-type.ts';

/** Incoming HTTP headers as Node gives them: lower-case names. */
export type IncomingHeaders = Readonly<Record<string, string | readonly string[] | undefined>>;

export interface DecodedMessage {
  mode: ContentMode;
  events: CloudEvent[];
}

const mediaTypes = new Map<string, MediaType | null>();

/** Parses a `Content-Type`, remembering the few distinct values a server sees. */
export function mediaTypeOf(contentType: string): MediaType | undefined {
  let mt = mediaTypes.get(contentType);
  if (mt === undefined) {
    mt = parseMediaType(contentType) ?? null;
    if (mediaTypes.size < 256) mediaTypes.set(contentType, mt);
  }
  return mt ?? undefined;
}

/** True when the headers carry any binary-mode attribute: the request means to be a CloudEvent. */
export function hasCloudEventHeaders(headers: IncomingHeaders): boolean {
  for (const name in headers) if (name.startsWith('ce-')) return true;
  return false;
}

/**
 * Reads the CloudEvents in an HTTP message (HTTP binding §3): the mode comes from `Content-Type`;
 * binary mode maps `ce-` headers and the body, structured and batch mode read the JSON format.
 * Throws `CloudEventError` (400 invalid, 415 unsupported) and nothing else.
 */
export function decodeHttp(headers: IncomingHeaders, body: Uint8Array): DecodedMessage {
  const contentType = headers['content-type'];
  let mt: MediaType | undefined;
  if (typeof contentType === 'string') {
    mt = mediaTypeOf(contentType);
    if (mt === undefined) throw new CloudEventError(415, 'invalid_media_type', `Content-Type ${JSON.stringify(contentType)} is not a media type`);
  }
  const mode = contentModeOf(mt);
  if (mode === 'binary') return { mode, events: [decodeBinary(headers, body, contentType as string | undefined, mt)] };
  if (mt!.subtype !== (mode === 'batch' ? 'cloudevents-batch+json' : 'cloudevents+json')) {
    throw new CloudEventError(415, 'unsupported_format', `event format ${mt!.essence} is not supported (JSON only)`);
  }
  const charset = mt!.params.charset?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    throw new CloudEventError(415, 'unsupported_charset', `charset ${charset} is not supported for ${mt!.essence} (UTF-8 only)`);
  }
  if (body.length === 0) throw new CloudEventError(400, 'empty_body', `a ${mode}-mode message needs a body`);
  const value = parseJsonBody(body);
  if (mode === 'structured') {
    const { event, errors } = fromJsonObject(value);
    if (!event) throw CloudEventError.invalid(errors);
    return { mode, events: [event] };
  }
  return { mode, events: decodeBatch(value) };
}

function decodeBatch(value: unknown): CloudEvent[] {
  if (!Array.isArray(value)) throw CloudEventError.invalid([{ field: '(body)', code: 'invalid_format', message: 'a batch must be a JSON array of events' }]);
  const events: CloudEvent[] = [];
  const errors: FieldError[] = [];
  for (let i = 0; i < value.length; i++) {
    const r = fromJsonObject(value[i], `[${i}].`);
    if (r.event) events.push(r.event);
    else errors.push(...r.errors);
  }
  // HTTP binding §3.3: all events of a batch share one specversion.
  if (!errors.length && events.some((e) => e.specversion !== events[0]!.specversion)) {
    errors.push({ field: '(body)', code: 'invalid_format', message: 'all events of a batch must have the same specversion' });
  }
  if (errors.length) throw CloudEventError.invalid(errors);
  return events;
}

const attributeNames = new Map<string, string>();
/** `ce-<name>` → `<name>`, remembered: the same few headers come on every event. */
function attributeName(header: string): string {
  let name = attributeNames.get(header);
  if (name === undefined) {
    name = header.slice(3);
    if (attributeNames.size < 1024) attributeNames.set(header, name);
  }
  return name;
}

function decodeBinary(headers: IncomingHeaders, body: Uint8Array, contentType: string | undefined, mt: MediaType | undefined): CloudEvent {
  const event: Record<string, unknown> = {};
  const errors: FieldError[] = [];
  let seen = false;
  for (const name in headers) {
    if (name.length < 4 || !name.startsWith('ce-')) continue;
    seen = true;
    const attr = attributeName(name);
    const raw = headers[name];
    if (attr === 'datacontenttype') {
      errors.push({ field: 'header ce-datacontenttype', code: 'invalid_header', message: 'binary mode carries datacontenttype in Content-Type, never in ce-datacontenttype' });
      continue;
    }
    if (!isCoreAttribute(attr) && !EXTENSION_NAME.test(attr)) {
      errors.push({ field: `header ${name}`, code: 'invalid_extension_name', message: `attribute name ${JSON.stringify(attr)} must be 1–20 lower-case letters or digits` });
      continue;
    }
    const value = typeof raw === 'string' ? decodeHeaderValue(raw) : undefined;
    if (value === undefined) {
      errors.push({ field: `header ${name}`, code: 'invalid_header', message: 'the value is not valid percent-encoded UTF-8' });
      continue;
    }
    event[attr] = value;
  }
  if (!seen) {
    if (body.length === 0) throw new CloudEventError(400, 'empty_body', 'the request is empty: expected a CloudEvent');
    throw new CloudEventError(
      415,
      'not_cloudevent',
      `expected a CloudEvent: binary mode (ce-specversion, ce-id, ce-source, ce-type headers) or Content-Type application/cloudevents+json or application/cloudevents-batch+json, got ${contentType ?? 'no Content-Type'}`,
    );
  }
  if (contentType !== undefined) event.datacontenttype = contentType;
  errors.push(...validateCloudEvent(event));
  if (errors.length) throw CloudEventError.invalid(errors);
  if (body.length > 0) event.data = decodeData(body, mt);
  return event as CloudEvent;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Binary-mode data: JSON parsed, text decoded with its charset, anything else kept as bytes. */
function decodeData(body: Uint8Array, mt: MediaType | undefined): unknown {
  if (mt === undefined) return plainBytes(body);
  if (isJsonMediaType(mt)) return parseJsonBody(body, 'invalid_data');
  if (!isTextMediaType(mt)) return plainBytes(body);
  const charset = mt.params.charset?.toLowerCase() ?? 'utf-8';
  if (charset === 'utf-8' || charset === 'utf8') {
    try {
      return utf8.decode(body);
    } catch {
      throw new CloudEventError(400, 'invalid_data', 'the body is not valid UTF-8');
    }
  }
  let decoder: InstanceType<typeof TextDecoder>;
  try {
    decoder = new TextDecoder(charset === 'us-ascii' ? 'latin1' : charset, { fatal: true });
  } catch {
    throw new CloudEventError(415, 'unsupported_charset', `charset ${charset} is not supported`);
  }
  try {
    return decoder.decode(body);
  } catch {
    throw new CloudEventError(400, 'invalid_data', `the body is not valid ${charset}`);
  }
}

function parseJsonBody(body: Uint8Array, code = 'malformed_json'): unknown {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw new CloudEventError(400, code, 'the body is not valid UTF-8');
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CloudEventError(400, code, `the body is not valid JSON: ${(e as Error).message}`);
  }
}

/** A `Uint8Array` view of the same memory (a `Buffer` is one too, but compares unlike one). */
function plainBytes(b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
