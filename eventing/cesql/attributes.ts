import { INT32_MAX, INT32_MIN } from './cast.ts';
import { fixedError } from './errors.ts';
import type { Evaluator, Value } from './types.ts';

// CESQL §3.4.4: EXISTS MUST be true for the REQUIRED attributes, the input event being assumed valid.
const REQUIRED = new Set(['specversion', 'id', 'source', 'type']);

/**
 * Reads the context attribute `name` (lower-case) of an event. CESQL §3.2: a missing attribute is a
 * MissingAttributeError, and its sub-expression's value is the zero value of a type the engine cannot
 * determine here, so Boolean: false. Operators above it return their own zero value.
 */
export function attributeReader(name: string): Evaluator {
  const missing = fixedError('missingAttribute', `the event has no attribute ${JSON.stringify(name)}`);
  // `data` is the event's payload, not a context attribute (CloudEvents §3.1).
  if (name === 'data') {
    return (_event, out) => {
      out.errors.push(missing);
      return false;
    };
  }
  const inherited = name in Object.prototype;
  return (event, out) => {
    const raw = inherited && !Object.hasOwn(event, name) ? undefined : event[name];
    if (typeof raw === 'string') return raw;
    if (raw === undefined || raw === null) {
      out.errors.push(missing);
      return false;
    }
    return attributeValue(raw);
  };
}

/** `EXISTS name` (CESQL §3.4.4). */
export function existenceTest(name: string): Evaluator {
  if (REQUIRED.has(name)) return () => true;
  if (name === 'data') return () => false;
  const inherited = name in Object.prototype;
  return (event) => {
    if (inherited && !Object.hasOwn(event, name)) return false;
    const raw = event[name];
    return raw !== undefined && raw !== null;
  };
}

/**
 * CESQL §3.2: a value that is not a CESQL primitive is represented as a String, written the way
 * CloudEvents writes the type as a string (§3.1.1 of the CloudEvents spec): Binary in base64,
 * Timestamp in RFC 3339. Numbers outside the Integer range or with fractions are Strings too.
 */
function attributeValue(raw: unknown): Value {
  switch (typeof raw) {
    case 'boolean':
      return raw;
    case 'number':
      return Number.isInteger(raw) && raw >= INT32_MIN && raw <= INT32_MAX ? raw | 0 : String(raw);
    case 'bigint':
      return raw >= INT32_MIN && raw <= INT32_MAX ? Number(raw) : String(raw);
    case 'object':
      if (raw === null) return String(raw);
      if (raw instanceof Uint8Array) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64');
      if (raw instanceof Date) return Number.isNaN(raw.getTime()) ? String(raw) : raw.toISOString();
      return objectText(raw);
    default:
      return String(raw);
  }
}

/** An object that is no CloudEvents type (a URL, say) by its own string form, JSON when it has none. */
function objectText(raw: object): string {
  try {
    const text = String(raw);
    return text === '[object Object]' ? (JSON.stringify(raw) ?? text) : text;
  } catch {
    return Object.prototype.toString.call(raw);
  }
}
