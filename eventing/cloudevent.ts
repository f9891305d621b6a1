import type { FieldError } from './errors.ts';

/** A CloudEvents extension attribute value (spec §3.1: String, Integer, Boolean; others travel as strings). */
export type ExtensionValue = string | number | boolean;

/**
 * A CloudEvent in memory: the context attributes exactly as received (nothing invented, nothing
 * re-formatted) plus `data`. `data` is a JSON value when `datacontenttype` declares JSON (or is absent
 * in a structured event), a string for text, and a `Uint8Array` for anything else.
 */
export interface CloudEvent {
  specversion: string;
  id: string;
  source: string;
  type: string;
  datacontenttype?: string;
  dataschema?: string;
  subject?: string;
  time?: string;
  data?: unknown;
  [extension: string]: unknown;
}

export const SPEC_VERSION = '1.0';
export const REQUIRED_ATTRIBUTES = ['id', 'source', 'specversion', 'type'] as const;
export const OPTIONAL_ATTRIBUTES = ['datacontenttype', 'dataschema', 'subject', 'time'] as const;
const CORE = new Set<string>([...REQUIRED_ATTRIBUTES, ...OPTIONAL_ATTRIBUTES]);

export function isCoreAttribute(name: string): boolean {
  return CORE.has(name);
}

/** Extension names: lower-case ASCII letters and digits, at most 20 (spec §3.1.1, enforced). */
export const EXTENSION_NAME = /^[a-z0-9]{1,20}$/;

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** RFC 3986 URI-reference characters, with `%` only in `%XX`. */
const URI_REFERENCE = /^(?:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$/;
const URI_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

export function isUriReference(value: string): boolean {
  return URI_REFERENCE.test(value);
}

export function isAbsoluteUri(value: string): boolean {
  return URI_SCHEME.test(value) && URI_REFERENCE.test(value);
}

/** RFC 3339 `date-time`, with calendar ranges checked (leap years, leap second 60). */
export function isTimestamp(value: string): boolean {
  const m = RFC3339.exec(value);
  if (!m) return false;
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) || h > 23 || mi > 59 || s > 60) return false;
  return m[8] === undefined || (Number(m[8]) <= 23 && Number(m[9]) <= 59);
}

function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

export function isInteger32(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX;
}

/**
 * Checks an event's context attributes against CloudEvents 1.0.2 §3: required attributes present and
 * non-empty, types of the core attributes, extension names and value types. `prefix` goes before each
 * field (`[3].` inside a batch). Returns every problem, empty when the event is valid.
 */
export function validateCloudEvent(event: Record<string, unknown>, prefix = ''): FieldError[] {
  const errors: FieldError[] = [];
  const fail = (field: string, code: string, message: string) => errors.push({ field: prefix + field, code, message });

  for (const name of REQUIRED_ATTRIBUTES) {
    const v = event[name];
    if (v === undefined) fail(name, 'missing_attribute', `the required attribute ${name} is missing`);
    else if (typeof v !== 'string') fail(name, 'invalid_type', `${name} must be a string, got ${typeName(v)}`);
    else if (v === '') fail(name, 'empty_attribute', `${name} must not be empty`);
  }
  if (typeof event.specversion === 'string' && event.specversion !== '' && event.specversion !== SPEC_VERSION) {
    fail('specversion', 'unsupported_specversion', `specversion ${JSON.stringify(event.specversion)} is not supported (only ${SPEC_VERSION})`);
  }
  if (typeof event.source === 'string' && event.source !== '' && !isUriReference(event.source)) {
    fail('source', 'invalid_value', 'source must be a URI-reference (RFC 3986)');
  }
  for (const name of OPTIONAL_ATTRIBUTES) {
    const v = event[name];
    if (v === undefined) continue;
    if (typeof v !== 'string') fail(name, 'invalid_type', `${name} must be a string, got ${typeName(v)}`);
    else if (v === '') fail(name, 'empty_attribute', `${name} must not be empty when present`);
    else if (name === 'time' && !isTimestamp(v)) fail(name, 'invalid_value', 'time must be an RFC 3339 timestamp');
    else if (name === 'dataschema' && !isAbsoluteUri(v)) fail(name, 'invalid_value', 'dataschema must be an absolute URI');
  }
  for (const name in event) {
    if (CORE.has(name) || name === 'data') continue;
    if (!EXTENSION_NAME.test(name)) {
      fail(name, 'invalid_extension_name', `extension name ${JSON.stringify(name)} must be 1–20 lower-case letters or digits`);
      continue;
    }
    const v = event[name];
    if (v === undefined) continue;
    if (typeof v === 'number' && !isInteger32(v)) fail(name, 'invalid_type', `extension ${name} must be a 32-bit integer, got ${v}`);
    else if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      fail(name, 'invalid_type', `extension ${name} must be a string, integer or boolean, got ${typeName(v)}`);
    }
  }
  return errors;
}

/** The extension attributes of an event, in insertion order. */
export function extensionsOf(event: CloudEvent): Record<string, ExtensionValue> {
  const out: Record<string, ExtensionValue> = {};
  for (const name in event) {
    if (CORE.has(name) || name === 'data') continue;
    const v = event[name];
    if (v !== undefined) out[name] = v as ExtensionValue;
  }
  return out;
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}
