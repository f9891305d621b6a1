import type { Value } from './types.ts';

export type ArithmeticOperator = '+' | '-' | '*' | '/' | '%';
export type ComparisonOperator = '<' | '<=' | '>' | '>=';
export type LogicalOperator = 'AND' | 'OR' | 'XOR';

/**
 * A parsed expression. Names are already normalised: attribute names lower-case (CloudEvents names
 * are), function names upper-case, so evaluation never re-cases anything.
 */
export type Node =
  | { readonly kind: 'literal'; readonly value: Value }
  | { readonly kind: 'attribute'; readonly name: string }
  | { readonly kind: 'exists'; readonly name: string }
  | { readonly kind: 'not'; readonly operand: Node }
  | { readonly kind: 'negate'; readonly operand: Node }
  | { readonly kind: 'arithmetic'; readonly op: ArithmeticOperator; readonly left: Node; readonly right: Node }
  | { readonly kind: 'comparison'; readonly op: ComparisonOperator; readonly left: Node; readonly right: Node }
  /** `=`, and `!=` / `<>` as its negation (CESQL §3.4.2 "Same as NOT (x = y)"). */
  | { readonly kind: 'equality'; readonly negated: boolean; readonly left: Node; readonly right: Node }
  /** A left-to-right run of one logical operator, flattened so long chains do not nest deeply. */
  | { readonly kind: 'logical'; readonly op: LogicalOperator; readonly operands: Node[] }
  | { readonly kind: 'like'; readonly negated: boolean; readonly operand: Node; readonly pattern: string }
  | { readonly kind: 'in'; readonly negated: boolean; readonly operand: Node; readonly set: readonly Node[] }
  | { readonly kind: 'call'; readonly name: string; readonly args: readonly Node[] };
