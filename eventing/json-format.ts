import { type CloudEvent, validateCloudEvent } from './cloudevent.ts';
import { CloudEventError, type FieldError } from './errors.ts';
import { isJsonMediaType, parseMediaType } from './http/media-type.ts';

/**
 * The JSON event format (json-format §3): a JSON object → CloudEvent. `null` attributes count as absent
 * (§2.3); `data` is kept as the JSON value when `datacontenttype` declares JSON or is absent, must be a
 * string otherwise; `data_base64` becomes bytes. Errors name the field, after `prefix`.
 */
export function fromJsonObject(value: unknown, prefix = ''): { event?: CloudEvent; errors: FieldError[] } {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { errors: [{ field: prefix || '(body)', code: 'invalid_format', message: 'a CloudEvent in JSON format must be a JSON object' }] };
  }
  const src = value as Record<string, unknown>;
  const event: Record<string, unknown> = {};
  let hasData = false;
  let data: unknown;
  let base64: unknown;
  for (const key in src) {
    const v = src[key];
    if (key === 'data') {
      hasData = true;
      data = v;
    } else if (key === 'data_base64') {
      base64 = v;
    } else if (v !== null) {
      event[key] = v;
    }
  }
  const errors = validateCloudEvent(event, prefix);
  if (base64 !== undefined && base64 !== null) {
    if (hasData) errors.push({ field: `${prefix}data_base64`, code: 'invalid_format', message: 'data and data_base64 must not both be present' });
    else if (typeof base64 !== 'string' || !isBase64(base64)) {
      errors.push({ field: `${prefix}data_base64`, code: 'invalid_format', message: 'data_base64 must be a base64 string (RFC 4648)' });
    } else event.data = new Uint8Array(Buffer.from(base64, 'base64'));
  } else if (hasData) {
    const ct = typeof event.datacontenttype === 'string' ? parseMediaType(event.datacontenttype) : undefined;
    const json = event.datacontenttype === undefined || (ct !== undefined && isJsonMediaType(ct));
    if (!json && typeof data !== 'string' && data !== null) {
      errors.push({ field: `${prefix}data`, code: 'invalid_format', message: `data must be a string for datacontenttype ${String(event.datacontenttype)}` });
    } else if (json || data !== null) event.data = data;
  }
  if (typeof event.datacontenttype === 'string' && event.datacontenttype !== '' && parseMediaType(event.datacontenttype) === undefined) {
    errors.push({ field: `${prefix}datacontenttype`, code: 'invalid_value', message: 'datacontenttype must be a media type (RFC 2046)' });
  }
  return errors.length ? { errors } : { event: event as CloudEvent, errors };
}

/** CloudEvent → the JSON format's object: JSON data as a value, text as a string, bytes as `data_base64`. */
export function toJsonObject(event: CloudEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in event) {
    const v = event[key];
    if (v === undefined) continue;
    if (key !== 'data') out[key] = v;
    else if (v instanceof Uint8Array) out.data_base64 = Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
    else out.data = v;
  }
  return out;
}

export function parseJsonEvent(text: string): CloudEvent {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CloudEventError(400, 'malformed_json', `the body is not valid JSON: ${(e as Error).message}`);
  }
  const { event, errors } = fromJsonObject(value);
  if (!event) throw CloudEventError.invalid(errors);
  return event;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function isBase64(s: string): boolean {
  return BASE64.test(s);
}
