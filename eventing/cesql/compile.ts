import { compileTree } from './evaluate.ts';
import { parse } from './parser.ts';
import type { CesqlError, CesqlResult, CompiledCesql } from './types.ts';

const NO_ERRORS: readonly CesqlError[] = Object.freeze([]);

/**
 * Parses a CESQL expression once, for evaluating against any number of events. Never throws: an
 * expression that does not parse has its parse errors in `errors`, and evaluates to an undefined value
 * with those errors.
 */
export function compileCesql(expression: string): CompiledCesql {
  // Callers pass text from YAML or JSON, where `cesql: true` arrives as a boolean.
  const parsed = typeof expression === 'string'
    ? parse(expression)
    : { ok: false as const, error: Object.freeze<CesqlError>({ kind: 'parse', message: `the expression is a ${typeof expression}, not a string` }) };
  if (!parsed.ok) {
    const errors = Object.freeze([parsed.error]);
    return { expression, errors, evaluate: () => ({ value: undefined, errors: [...errors] }) };
  }
  const root = compileTree(parsed.ast);
  return {
    expression,
    errors: NO_ERRORS,
    evaluate(event) {
      // The result is the error sink too, so an evaluation allocates this object and its array only.
      const result: CesqlResult = { value: undefined, errors: [] };
      result.value = root(event, result);
      return result;
    },
  };
}

// Bounded so that expressions built from event data cannot grow it without limit; the oldest entry
// goes first, which is enough for the few expressions a process evaluates over and over.
const CACHE_LIMIT = 256;
const cache = new Map<string, CompiledCesql>();

/** Compiles (or reuses a recent compilation of) `expression` and evaluates it. Never throws. */
export function evaluateCesql(expression: string, event: Record<string, unknown>): CesqlResult {
  let compiled = cache.get(expression);
  if (compiled === undefined) {
    compiled = compileCesql(expression);
    if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value!);
    cache.set(expression, compiled);
  }
  return compiled.evaluate(event);
}
