import type { CesqlError, CesqlErrorKind, ErrorSink } from './types.ts';

/**
 * An error whose message is known when the expression is compiled (a missing attribute, a missing
 * function). Frozen, so every evaluation can push the same object without one sharing state with another.
 */
export function fixedError(kind: CesqlErrorKind, message: string): CesqlError {
  return Object.freeze({ kind, message });
}

export function raise(out: ErrorSink, kind: CesqlErrorKind, message: string): void {
  out.errors.push({ kind, message });
}

const QUOTED_LIMIT = 40;

/** A value for an error message: strings quoted and cut short, so a large attribute cannot bloat errors. */
export function describe(value: string | number | boolean): string {
  if (typeof value !== 'string') return String(value);
  const text = value.length > QUOTED_LIMIT ? `${value.slice(0, QUOTED_LIMIT)}…` : value;
  return JSON.stringify(text);
}
