import { describe, raise } from './errors.ts';
import type { CesqlType, ErrorSink, Value } from './types.ts';

export const INT32_MIN = -2147483648;
export const INT32_MAX = 2147483647;

const INTEGER_TEXT = /^[+-]?[0-9]+$/;

/** CESQL §3.1: the zero value of a type, what an operator or function returns on error (§3.3). */
export function zeroOf(type: CesqlType): Value {
  return type === 'String' ? '' : type === 'Integer' ? 0 : false;
}

/**
 * CESQL §3.7 String -> Integer: base 10 with an optional leading sign, within 32 bits. Undefined when
 * the text is not such an integer. Shared with the lexer, which reads integer literals the same way.
 */
export function parseInteger(text: string): number | undefined {
  if (!INTEGER_TEXT.test(text)) return undefined;
  const n = Number(text);
  // `| 0` turns the -0 of "-0" into 0; within the range it changes nothing else.
  return n >= INT32_MIN && n <= INT32_MAX ? n | 0 : undefined;
}

/** CESQL §3.7 casts to Integer; a failed cast is a CastError and 0. */
export function toInteger(value: Value, out: ErrorSink): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  const n = parseInteger(value);
  if (n !== undefined) return n;
  raise(out, 'cast', `cannot cast ${describe(value)} to Integer`);
  return 0;
}

/** CESQL §3.7 casts to Boolean; a failed cast is a CastError and false. */
export function toBoolean(value: Value, out: ErrorSink): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0;
  // "the lower case representation of the string is exactly "true" or "false"": nothing longer than
  // five characters can lower-case to either, so long attribute values are not lower-cased in full.
  if (value.length <= 5) {
    const lower = value.toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
  }
  raise(out, 'cast', `cannot cast ${describe(value)} to Boolean`);
  return false;
}

/** CESQL §3.7 casts to String, which cannot fail. */
export function toText(value: Value): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return String(value);
}

export function castTo(type: CesqlType, value: Value, out: ErrorSink): Value {
  return type === 'String' ? toText(value) : type === 'Integer' ? toInteger(value, out) : toBoolean(value, out);
}
