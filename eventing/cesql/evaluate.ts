import type { Node } from './ast.ts';
import { attributeReader, existenceTest } from './attributes.ts';
import { castTo, zeroOf } from './cast.ts';
import { fixedError } from './errors.ts';
import { type FunctionDefinition, isKnownFunction, type ParameterType, resolveFunction } from './functions.ts';
import { compileLike } from './like.ts';
import {
  andOperator,
  arithmeticOperator,
  type CastSet,
  comparisonOperator,
  equalityOperator,
  equalsConstant,
  inConstantSet,
  inOperator,
  likeOperator,
  negateOperator,
  notOperator,
  orOperator,
  xorOperator,
} from './operators.ts';
import type { CesqlError, Evaluator, Value } from './types.ts';

/** A compiled sub-expression; `constant` when it needs no event and evaluates without error. */
type Compiled = { readonly fn: Evaluator; readonly constant: false } | { readonly fn: Evaluator; readonly constant: true; readonly value: Value };

const NO_EVENT: Record<string, unknown> = Object.freeze({});

/**
 * Turns a parsed expression into one closure per node, built once. Sub-expressions without
 * attributes are folded into constants when they evaluate cleanly (one that fails, such as `1 / 0`,
 * stays, to report its error on every evaluation).
 */
export function compileTree(node: Node): Evaluator {
  return compile(node).fn;
}

function compile(node: Node): Compiled {
  switch (node.kind) {
    case 'literal':
      return constant(node.value);
    case 'attribute':
      return { fn: attributeReader(node.name), constant: false };
    case 'exists':
      return { fn: existenceTest(node.name), constant: false };
    case 'not': {
      const operand = compile(node.operand);
      return fold(notOperator(operand.fn), [operand]);
    }
    case 'negate': {
      const operand = compile(node.operand);
      return fold(negateOperator(operand.fn), [operand]);
    }
    case 'arithmetic': {
      const left = compile(node.left);
      const right = compile(node.right);
      return fold(arithmeticOperator(node.op, left.fn, right.fn), [left, right]);
    }
    case 'comparison': {
      const left = compile(node.left);
      const right = compile(node.right);
      return fold(comparisonOperator(node.op, left.fn, right.fn), [left, right]);
    }
    case 'equality': {
      const left = compile(node.left);
      const right = compile(node.right);
      const fn = right.constant ? equalsConstant(left.fn, right.value, node.negated) : equalityOperator(left.fn, right.fn, node.negated);
      return fold(fn, [left, right]);
    }
    case 'logical': {
      const operands = node.operands.map(compile);
      const fns = operands.map((o) => o.fn);
      const fn = node.op === 'AND' ? andOperator(fns) : node.op === 'OR' ? orOperator(fns) : xorOperator(fns);
      return fold(fn, operands);
    }
    case 'like': {
      const operand = compile(node.operand);
      return fold(likeOperator(operand.fn, compileLike(node.pattern), node.negated), [operand]);
    }
    case 'in':
      return compileIn(node.operand, node.set, node.negated);
    case 'call':
      return compileCall(node.name, node.args);
  }
}

function constant(value: Value): Compiled {
  return { fn: () => value, constant: true, value };
}

/** `fn` as a constant when all its operands are and it evaluates without error. */
function fold(fn: Evaluator, operands: readonly Compiled[]): Compiled {
  if (!operands.every((o) => o.constant)) return { fn, constant: false };
  const scratch = { errors: [] as CesqlError[] };
  const value = fn(NO_EVENT, scratch);
  return scratch.errors.length ? { fn, constant: false } : constant(value);
}

function compileIn(operandNode: Node, setNodes: readonly Node[], negated: boolean): Compiled {
  const operand = compile(operandNode);
  const set = setNodes.map(compile);
  const values: Value[] = [];
  for (const element of set) if (element.constant) values.push(element.value);
  if (values.length < set.length) {
    return fold(inOperator(operand.fn, set.map((e) => e.fn), negated), [operand, ...set]);
  }
  const sets = { string: castSet(values, 'String'), number: castSet(values, 'Integer'), boolean: castSet(values, 'Boolean') };
  return fold(inConstantSet(operand.fn, sets, negated), [operand]);
}

function castSet(values: readonly Value[], type: 'String' | 'Integer' | 'Boolean'): CastSet {
  const scratch = { errors: [] as CesqlError[] };
  const first = new Map<Value, number>();
  let firstFailure = Infinity;
  values.forEach((value, i) => {
    const before = scratch.errors.length;
    const cast = castTo(type, value, scratch);
    if (scratch.errors.length !== before) firstFailure = Math.min(firstFailure, i);
    else if (!first.has(cast)) first.set(cast, i);
  });
  return { first, firstFailure, errors: scratch.errors.map((e) => Object.freeze(e)) };
}

function compileCall(name: string, argNodes: readonly Node[]): Compiled {
  const definition = resolveFunction(name, argNodes.length);
  if (!definition) {
    // CESQL §3.5: a call that cannot be dispatched is false and a MissingFunctionError. Reported when
    // evaluated, as the TCK expects, though known already.
    const error = fixedError(
      'missingFunction',
      isKnownFunction(name) ? `${name} does not take ${argNodes.length} argument(s)` : `there is no function ${name}`,
    );
    return {
      fn: (_event, out) => {
        out.errors.push(error);
        return false;
      },
      constant: false,
    };
  }
  const args = argNodes.map(compile);
  return fold(callFunction(definition, args.map((a) => a.fn)), args);
}

/**
 * Evaluates the arguments, casts each to its parameter type (§3.7: "cast all the arguments to the
 * corresponding parameter types") and calls the function; any error before the call makes the value
 * the zero value of the return type (§3.5.3).
 */
function callFunction(definition: FunctionDefinition, args: readonly Evaluator[]): Evaluator {
  const count = args.length;
  const types: ParameterType[] = args.map((_, i) => definition.params[i] ?? definition.rest ?? 'Any');
  const zero = zeroOf(definition.returns);
  // One argument array per call site, reused: evaluation is synchronous and a call site cannot be
  // re-entered, since functions do not call back into expressions.
  const values: Value[] = new Array<Value>(count).fill(false);
  return (event, out) => {
    const errors = out.errors;
    const n = errors.length;
    for (let i = 0; i < count; i++) values[i] = args[i]!(event, out);
    if (errors.length !== n) return zero;
    for (let i = 0; i < count; i++) {
      const type = types[i]!;
      if (type !== 'Any') values[i] = castTo(type, values[i]!, out);
    }
    if (errors.length !== n) return zero;
    return definition.call(values, out);
  };
}
