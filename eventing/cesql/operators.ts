// The operators of CESQL §3.4 as closures over their compiled operands.
//
// Error rule, used throughout: an operator evaluates all the operands it must (left to right, AND and
// OR short-circuiting), and if any of them, or the implicit cast of any of them (§3.7), reported an
// error, it returns the zero value of its own return type (§3.3, and §3.2's "the subexpression
// referencing the missing attribute MUST evaluate to the zero value for the return type of the
// subexpression"). So `true AND (1 != 1 / 0)` is false with a MathError, as the TCK has it. Errors are
// detected by the sink's length changing, which costs no allocation.

import type { ArithmeticOperator, ComparisonOperator } from './ast.ts';
import { INT32_MAX, INT32_MIN, toBoolean, toInteger, toText } from './cast.ts';
import { raise } from './errors.ts';
import type { LikeMatcher } from './like.ts';
import type { CesqlError, ErrorSink, Evaluator, Value } from './types.ts';

/** `NOT x: Boolean -> Boolean` (§3.4.1). */
export function notOperator(operand: Evaluator): Evaluator {
  return (event, out) => {
    const errors = out.errors;
    const n = errors.length;
    const v = operand(event, out);
    if (errors.length !== n) return false;
    const b = typeof v === 'boolean' ? v : toBoolean(v, out);
    return errors.length === n && !b;
  };
}

/** `-x: Integer -> Integer` (§3.4.1); -INT32_MIN overflows. */
export function negateOperator(operand: Evaluator): Evaluator {
  return (event, out) => {
    const errors = out.errors;
    const n = errors.length;
    const v = operand(event, out);
    if (errors.length !== n) return 0;
    const x = typeof v === 'number' ? v : toInteger(v, out);
    if (errors.length !== n) return 0;
    if (x === INT32_MIN) {
      raise(out, 'math', `-(${x}) overflows 32 bits`);
      return 0;
    }
    return 0 - x; // not -x, which makes -0 of 0
  };
}

type IntegerFunction = (x: number, y: number, out: ErrorSink) => number;

/** An integer result outside 32 bits is a MathError with the zero value (§3.1, §3.3). */
function checked(result: number, out: ErrorSink, x: number, op: string, y: number): number {
  if (result > INT32_MAX || result < INT32_MIN) {
    raise(out, 'math', `${x} ${op} ${y} overflows 32 bits`);
    return 0;
  }
  return result + 0; // -0 (from 0 * -1) becomes 0
}

const ARITHMETIC: Record<ArithmeticOperator, IntegerFunction> = {
  '+': (x, y, out) => checked(x + y, out, x, '+', y),
  '-': (x, y, out) => checked(x - y, out, x, '-', y),
  // Exact below 2^53; any product the double rounds is far outside 32 bits anyway.
  '*': (x, y, out) => checked(x * y, out, x, '*', y),
  // §3.4.2: rounded towards 0; `x / 0` is 0 and a MathError.
  '/': (x, y, out) => {
    if (y === 0) return divisionByZero(out, x, '/');
    return checked(Math.trunc(x / y), out, x, '/', y);
  },
  // §3.4.2: the remainder has the sign of x, which is JavaScript's `%`.
  '%': (x, y, out) => (y === 0 ? divisionByZero(out, x, '%') : (x % y) + 0),
};

function divisionByZero(out: ErrorSink, x: number, op: string): number {
  raise(out, 'math', `${x} ${op} 0 divides by zero`);
  return 0;
}

/** `x op y: Integer x Integer -> Integer` for + - * / % (§3.4.2). */
export function arithmeticOperator(op: ArithmeticOperator, left: Evaluator, right: Evaluator): Evaluator {
  const apply = ARITHMETIC[op];
  return (event, out) => {
    const errors = out.errors;
    const n = errors.length;
    const a = left(event, out);
    const b = right(event, out);
    if (errors.length !== n) return 0;
    const x = typeof a === 'number' ? a : toInteger(a, out);
    const y = typeof b === 'number' ? b : toInteger(b, out);
    if (errors.length !== n) return 0;
    return apply(x, y, out);
  };
}

const COMPARISON: Record<ComparisonOperator, (x: number, y: number) => boolean> = {
  '<': (x, y) => x < y,
  '<=': (x, y) => x <= y,
  '>': (x, y) => x > y,
  '>=': (x, y) => x >= y,
};

/** `x op y: Integer x Integer -> Boolean` for < <= > >= (§3.4.2): defined on Integers only. */
export function comparisonOperator(op: ComparisonOperator, left: Evaluator, right: Evaluator): Evaluator {
  const compare = COMPARISON[op];
  return (event, out) => {
    const errors = out.errors;
    const n = errors.length;
    const a = left(event, out);
    const b = right(event, out);
    if (errors.length !== n) return false;
    const x = typeof a === 'number' ? a : toInteger(a, out);
    const y = typeof b === 'number' ? b : toInteger(b, out);
    return errors.length === n && compare(x, y);
  };
}

/**
 * `=` is ambiguous, defined on String, Integer and Boolean alike, so §3.7 picks the definition by the
 * type of the right operand and casts the left one to it.
 */
export function castEquals(x: Value, y: Value, out: ErrorSink): boolean {
  if (typeof x === typeof y) return x === y;
  if (typeof y === 'string') return toText(x) === y;
  if (typeof y === 'number') return toInteger(x, out) === y;
  return toBoolean(x, out) === y;
}

/** `x = y`, and `x != y` / `x <> y` as "NOT (x = y)" (§3.4.2). */
export function equalityOperator(left: Evaluator, right: Evaluator, negated: boolean): Evaluator {
  return (event, out) => {
    const errors = out.errors;
    const n = errors.length;
    const a = left(event, out);
    const b = right(event, out);
    if (errors.length !== n) return false;
    const equal = castEquals(a, b, out);
    return errors.length === n && equal !== negated;
  };
}

/** `x = constant`, the commonest filter: the right operand is not called. */
export function equalsConstant(left: Evaluator, constant: Value, negated: boolean): Evaluator {
  return (event, out) => {
    const errors = out.errors;
    const n = errors.length;
    const a = left(event, out);
    if (errors.length !== n) return false;
    const equal = typeof a === typeof constant ? a === constant : castEquals(a, constant, out);
    return errors.length === n && equal !== negated;
  };
}

/** A run of ANDs; §3.6: the first false operand ends it. */
export function andOperator(operands: readonly Evaluator[]): Evaluator {
  return (event, out) => {
    const errors = out.errors;
    const n = errors.length;
    for (let i = 0; i < operands.length; i++) {
      const v = operands[i]!(event, out);
      if (errors.length !== n) return false;
      const b = typeof v === 'boolean' ? v : toBoolean(v, out);
      if (!b || errors.length !== n) return false;
    }
    return true;
  };
}

/**
 * A run of ORs; §3.6: the first true operand ends it. An operand that failed counts as false, so the
 * rest are still evaluated (as `(a OR b) OR c` would), but the answer is then false.
 */
export function orOperator(operands: readonly Evaluator[]): Evaluator {
  return (event, out) => {
    const errors = out.errors;
    const n = errors.length;
    for (let i = 0; i < operands.length; i++) {
      const v = operands[i]!(event, out);
      if (errors.length !== n) continue;
      const b = typeof v === 'boolean' ? v : toBoolean(v, out);
      if (b && errors.length === n) return true;
    }
    return false;
  };
}

/** A run of XORs: every operand is evaluated. */
export function xorOperator(operands: readonly Evaluator[]): Evaluator {
  return (event, out) => {
    const errors = out.errors;
    const n = errors.length;
    let result = false;
    for (let i = 0; i < operands.length; i++) {
      const v = operands[i]!(event, out);
      if (errors.length === n) result = result !== (typeof v === 'boolean' ? v : toBoolean(v, out));
    }
    return errors.length === n && result;
  };
}

/** `x [NOT] LIKE pattern` (§3.4.3): x is cast to String, which cannot fail. */
export function likeOperator(operand: Evaluator, matches: LikeMatcher, negated: boolean): Evaluator {
  return (event, out) => {
    const errors = out.errors;
    const n = errors.length;
    const v = operand(event, out);
    if (errors.length !== n) return false;
    return matches(typeof v === 'string' ? v : toText(v)) !== negated;
  };
}

/**
 * `x [NOT] IN (y1, …)` (§3.4.5): `=` semantics, but §3.7's special rule casts each element to the type
 * of x. Read as `x = y1 OR x = y2 …`: the first match ends it; an element that fails (or cannot be
 * cast) counts as no match, the rest are still evaluated, and the answer is then false. sdk-go, and so
 * Knative, also stop at the first match.
 */
export function inOperator(operand: Evaluator, set: readonly Evaluator[], negated: boolean): Evaluator {
  return (event, out) => {
    const errors = out.errors;
    const n = errors.length;
    const x = operand(event, out);
    const failed = errors.length !== n;
    for (let i = 0; i < set.length; i++) {
      const before = errors.length;
      const y = set[i]!(event, out);
      if (failed || errors.length !== before) continue;
      const equal = typeof x === typeof y ? x === y : castEquals(y, x, out);
      if (equal && errors.length === n) return !negated;
    }
    return errors.length === n && negated;
  };
}

/**
 * A constant set cast to one type of x: where each value first occurs, and from which element on the
 * cast fails (with the errors of all elements that fail).
 */
export interface CastSet {
  readonly first: ReadonlyMap<Value, number>;
  readonly firstFailure: number;
  readonly errors: readonly CesqlError[];
}

/**
 * `x [NOT] IN (constants…)`, the set cast to each possible type of x when compiled: one hash lookup
 * per evaluation, with the same answers and errors as `inOperator`.
 */
export function inConstantSet(
  operand: Evaluator,
  sets: { readonly string: CastSet; readonly number: CastSet; readonly boolean: CastSet },
  negated: boolean,
): Evaluator {
  return (event, out) => {
    const errors = out.errors;
    const n = errors.length;
    const x = operand(event, out);
    if (errors.length !== n) return false;
    const set = sets[typeof x as 'string' | 'number' | 'boolean'];
    const at = set.first.get(x);
    if (at !== undefined && at < set.firstFailure) return !negated;
    if (set.errors.length === 0) return negated;
    for (const error of set.errors) errors.push(error);
    return false;
  };
}
