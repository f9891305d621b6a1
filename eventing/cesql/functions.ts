import { INT32_MAX, INT32_MIN, toBoolean, toInteger, toText } from './cast.ts';
import { describe, raise } from './errors.ts';
import { codePointLength, sliceCodePoints, trimWhiteSpace } from './text.ts';
import type { CesqlType, ErrorSink, Value } from './types.ts';

/** A parameter's type; `Any` takes the argument as it comes (the explicit casts do their own casting). */
export type ParameterType = CesqlType | 'Any';

/**
 * One overload of a function (CESQL §3.5). The engine casts each argument to its parameter type before
 * `call` (§3.7); `call` gets the arguments cast, and reports its own errors to `out` while still
 * returning a value of `returns` (§3.5.3).
 */
export interface FunctionDefinition {
  readonly name: string;
  readonly params: readonly ParameterType[];
  /** Present on a variadic overload: the type of each argument after `params`. */
  readonly rest?: ParameterType;
  readonly returns: CesqlType;
  call(args: readonly Value[], out: ErrorSink): Value;
}

const str = (v: Value | undefined) => v as string;
const int = (v: Value | undefined) => v as number;

const BUILT_INS: readonly FunctionDefinition[] = [
  // CESQL §3.5.1 string manipulation.
  { name: 'LENGTH', params: ['String'], returns: 'Integer', call: ([x]) => codePointLength(str(x)) },
  { name: 'CONCAT', params: [], rest: 'String', returns: 'String', call: (args) => args.join('') },
  {
    name: 'CONCAT_WS', params: ['String'], rest: 'String', returns: 'String',
    call: (args) => args.slice(1).join(str(args[0])),
  },
  { name: 'LOWER', params: ['String'], returns: 'String', call: ([x]) => str(x).toLowerCase() },
  { name: 'UPPER', params: ['String'], returns: 'String', call: ([x]) => str(x).toUpperCase() },
  { name: 'TRIM', params: ['String'], returns: 'String', call: ([x]) => trimWhiteSpace(str(x)) },
  { name: 'LEFT', params: ['String', 'Integer'], returns: 'String', call: ([x, y], out) => left(str(x), int(y), out) },
  { name: 'RIGHT', params: ['String', 'Integer'], returns: 'String', call: ([x, y], out) => right(str(x), int(y), out) },
  {
    name: 'SUBSTRING', params: ['String', 'Integer'], returns: 'String',
    call: ([x, pos], out) => substring(str(x), int(pos), undefined, out),
  },
  {
    name: 'SUBSTRING', params: ['String', 'Integer', 'Integer'], returns: 'String',
    call: ([x, pos, len], out) => substring(str(x), int(pos), int(len), out),
  },
  // CESQL §3.5.2 math.
  { name: 'ABS', params: ['Integer'], returns: 'Integer', call: ([x], out) => abs(int(x), out) },
  // The explicit casts the spec names in §3.7 ("the same semantics of INT") and the TCK calls: each
  // takes any type and fails as a cast does, with a CastError.
  { name: 'INT', params: ['Any'], returns: 'Integer', call: ([x], out) => toInteger(x!, out) },
  { name: 'BOOL', params: ['Any'], returns: 'Boolean', call: ([x], out) => toBoolean(x!, out) },
  { name: 'STRING', params: ['Any'], returns: 'String', call: ([x]) => toText(x!) },
];

const OVERLOADS = new Map<string, FunctionDefinition[]>();
for (const definition of BUILT_INS) {
  const list = OVERLOADS.get(definition.name) ?? [];
  list.push(definition);
  OVERLOADS.set(definition.name, list);
}

/**
 * The overload of `name` (upper-case) that takes `arity` arguments: the fixed-arity one, else the
 * variadic one (CESQL §3.5 keeps the two from overlapping). Undefined means a MissingFunctionError.
 */
export function resolveFunction(name: string, arity: number): FunctionDefinition | undefined {
  const overloads = OVERLOADS.get(name);
  if (!overloads) return undefined;
  return (
    overloads.find((f) => f.rest === undefined && f.params.length === arity) ??
    overloads.find((f) => f.rest !== undefined && arity >= f.params.length)
  );
}

/** Whether any overload of `name` exists, for a clearer message when only the arity is wrong. */
export function isKnownFunction(name: string): boolean {
  return OVERLOADS.has(name);
}

function left(x: string, y: number, out: ErrorSink): string {
  if (y < 0) {
    raise(out, 'functionEvaluation', `LEFT: the length ${y} is negative`);
    return x;
  }
  return y >= codePointLength(x) ? x : sliceCodePoints(x, 0, y);
}

function right(x: string, y: number, out: ErrorSink): string {
  if (y < 0) {
    raise(out, 'functionEvaluation', `RIGHT: the length ${y} is negative`);
    return x;
  }
  const length = codePointLength(x);
  return y >= length ? x : sliceCodePoints(x, length - y, length);
}

/**
 * CESQL §3.5.1 SUBSTRING: `pos` counts from 1, or from the end when negative; 0 gives "". Errors
 * (returning "") for `pos` beyond either end or a negative `len`.
 */
function substring(x: string, pos: number, len: number | undefined, out: ErrorSink): string {
  const length = codePointLength(x);
  if (pos > length || pos < -length) {
    raise(out, 'functionEvaluation', `SUBSTRING: the position ${pos} is outside ${describe(x)}`);
    return '';
  }
  if (len !== undefined && len < 0) {
    raise(out, 'functionEvaluation', `SUBSTRING: the length ${len} is negative`);
    return '';
  }
  if (pos === 0) return '';
  const start = pos > 0 ? pos - 1 : length + pos;
  const end = len === undefined ? length : Math.min(length, start + len);
  return sliceCodePoints(x, start, end);
}

/** CESQL §3.5.2: |INT32_MIN| does not fit, so ABS gives INT32_MAX and a MathError. */
function abs(x: number, out: ErrorSink): number {
  if (x === INT32_MIN) {
    raise(out, 'math', `ABS(${x}) overflows 32 bits`);
    return INT32_MAX;
  }
  return x < 0 ? -x : x;
}
