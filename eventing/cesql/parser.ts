import type { Node } from './ast.ts';
import { tokenize, type Token, type TokenType } from './lexer.ts';
import type { CesqlError } from './types.ts';

/**
 * How deeply sub-expressions may nest. Evaluation recurses once per level, so this bounds the stack an
 * expression can take; runs of AND, OR or XOR are flattened and do not count level by level.
 */
export const MAX_DEPTH = 256;

export type ParseOutcome = { ok: true; ast: Node } | { ok: false; error: CesqlError };

// Binding powers, highest first, from CESQLParser.g4's order of alternatives and CESQL §3.6: function
// invocations, unary NOT and -, LIKE, (EXISTS is an operand), IN, * / %, + -, comparisons, logic.
const PREFIX_POWER = 70;
const LIKE_POWER = 60;
const IN_POWER = 50;
const BINARY_POWER: Partial<Record<TokenType, number>> = {
  '*': 40, '/': 40, '%': 40,
  '+': 30, '-': 30,
  '=': 20, '!=': 20, '<>': 20, '<': 20, '<=': 20, '>': 20, '>=': 20,
  AND: 10, OR: 10, XOR: 10,
};

/** Parses an expression into a tree, or says why it is not CESQL; bad input never throws. */
export function parse(expression: string): ParseOutcome {
  const lexed = tokenize(expression);
  if (!lexed.ok) return failure(lexed.message);
  try {
    return { ok: true, ast: new Parser(lexed.tokens).root() };
  } catch (e) {
    if (e instanceof ParseFailure) return failure(e.message);
    throw e;
  }
}

function failure(message: string): ParseOutcome {
  return { ok: false, error: Object.freeze({ kind: 'parse', message }) };
}

/** Unwinds the recursive descent to `parse`; never leaves this module. */
class ParseFailure extends Error {}

/** Precedence climbing over the token list; one instance per parse. */
class Parser {
  private readonly tokens: Token[];
  private index = 0;
  private nesting = 0;
  private readonly depths = new Map<Node, number>();

  constructor(tokens: Token[]) {
    this.tokens = tokens;
  }

  root(): Node {
    const node = this.expression(0);
    const next = this.peek();
    if (next.type !== 'eof') this.fail(`unexpected ${describeToken(next)}`, next);
    return node;
  }

  private expression(minPower: number): Node {
    let left = this.operand();
    for (;;) {
      const token = this.peek();
      if (token.type === 'NOT' || token.type === 'LIKE' || token.type === 'IN') {
        const negated = token.type === 'NOT';
        const operator = negated ? this.peek(1) : token;
        if (operator.type !== 'LIKE' && operator.type !== 'IN') {
          this.fail(`expected LIKE or IN after NOT, found ${describeToken(operator)}`, operator);
        }
        if ((operator.type === 'LIKE' ? LIKE_POWER : IN_POWER) < minPower) return left;
        this.index += negated ? 2 : 1;
        left = operator.type === 'LIKE' ? this.like(left, negated) : this.in(left, negated);
        continue;
      }
      const power = BINARY_POWER[token.type];
      if (power === undefined || power < minPower) return left;
      this.index++;
      // CESQL §3.6: equal precedence evaluates left to right, so the right operand binds tighter.
      left = this.binary(token, left, this.expression(power + 1));
    }
  }

  private operand(): Node {
    const token = this.next();
    switch (token.type) {
      case 'integer':
        return { kind: 'literal', value: token.value! };
      case 'string':
        return { kind: 'literal', value: token.text };
      case 'TRUE':
      case 'FALSE':
        return { kind: 'literal', value: token.type === 'TRUE' };
      case 'NOT':
      case '-': {
        this.enter(token);
        const operand = this.expression(PREFIX_POWER);
        this.nesting--;
        return this.make({ kind: token.type === 'NOT' ? 'not' : 'negate', operand }, [operand]);
      }
      case '(': {
        this.enter(token);
        const inner = this.expression(0);
        this.expect(')', 'to close the parenthesis');
        this.nesting--;
        return inner;
      }
      case 'EXISTS': {
        const name = this.next();
        if (name.type !== 'identifier') this.fail(`EXISTS needs an attribute name, found ${describeToken(name)}`, name);
        return { kind: 'exists', name: name.text.toLowerCase() };
      }
      case 'identifier':
        if (this.peek().type === '(') return this.call(token);
        // CESQL §3.2 and the TCK (`EXISTS SOURCE`): attribute names are matched case-insensitively.
        return { kind: 'attribute', name: token.text.toLowerCase() };
      case 'function':
        if (this.peek().type !== '(') this.fail(`expected ( after the function name ${token.text}`, this.peek());
        return this.call(token);
      default:
        return this.fail(`expected a literal, an attribute name, a function call, EXISTS, NOT, - or (, found ${describeToken(token)}`, token);
    }
  }

  private call(name: Token): Node {
    // CESQL §2.4: function-identifier ::= char ( "_" | char )*, so no digits.
    if (/[0-9]/.test(name.text)) this.fail(`${name.text} is not a function name: function names have no digits`, name);
    this.enter(name);
    this.index++;
    const args: Node[] = [];
    if (this.peek().type === ')') {
      this.index++;
    } else {
      args.push(this.expression(0));
      while (this.peek().type === ',') {
        this.index++;
        args.push(this.expression(0));
      }
      this.expect(')', `to close the arguments of ${name.text}`);
    }
    this.nesting--;
    return this.make({ kind: 'call', name: name.text.toUpperCase(), args }, args);
  }

  private like(operand: Node, negated: boolean): Node {
    const pattern = this.next();
    // CESQL §3.4.3: the pattern MUST be a string literal, otherwise a parse error.
    if (pattern.type !== 'string') this.fail(`LIKE needs a string literal pattern, found ${describeToken(pattern)}`, pattern);
    return this.make({ kind: 'like', negated, operand, pattern: pattern.text }, [operand]);
  }

  private in(operand: Node, negated: boolean): Node {
    const open = this.expect('(', 'after IN');
    this.enter(open);
    // CESQLParser setExpression: empty sets are not allowed.
    const set = [this.expression(0)];
    while (this.peek().type === ',') {
      this.index++;
      set.push(this.expression(0));
    }
    this.expect(')', 'to close the IN set');
    this.nesting--;
    return this.make({ kind: 'in', negated, operand, set }, [operand, ...set]);
  }

  private binary(token: Token, left: Node, right: Node): Node {
    switch (token.type) {
      case '+': case '-': case '*': case '/': case '%':
        return this.make({ kind: 'arithmetic', op: token.type, left, right }, [left, right]);
      case '<': case '<=': case '>': case '>=':
        return this.make({ kind: 'comparison', op: token.type, left, right }, [left, right]);
      case '=': case '!=': case '<>':
        return this.make({ kind: 'equality', negated: token.type !== '=', left, right }, [left, right]);
      case 'AND': case 'OR': case 'XOR':
        if (left.kind === 'logical' && left.op === token.type) {
          left.operands.push(right);
          this.depths.set(left, Math.max(this.depthOf(left), 1 + this.depthOf(right)));
          return left;
        }
        return this.make({ kind: 'logical', op: token.type, operands: [left, right] }, [left, right]);
      default:
        return this.fail(`unexpected ${describeToken(token)}`, token);
    }
  }

  /** Records a node's depth, failing past MAX_DEPTH. Children come as an array: an IN set can be huge. */
  private make(node: Node, children: readonly Node[]): Node {
    let depth = 1;
    for (const child of children) depth = Math.max(depth, 1 + this.depthOf(child));
    if (depth > MAX_DEPTH) this.fail(`the expression nests deeper than ${MAX_DEPTH} levels`, this.peek());
    this.depths.set(node, depth);
    return node;
  }

  private depthOf(node: Node): number {
    return this.depths.get(node) ?? 1;
  }

  private enter(token: Token): void {
    if (++this.nesting > MAX_DEPTH) this.fail(`the expression nests deeper than ${MAX_DEPTH} levels`, token);
  }

  private expect(type: TokenType, why: string): Token {
    const token = this.next();
    if (token.type !== type) this.fail(`expected ${type} ${why}, found ${describeToken(token)}`, token);
    return token;
  }

  private peek(ahead = 0): Token {
    return this.tokens[Math.min(this.index + ahead, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const token = this.peek();
    if (token.type !== 'eof') this.index++;
    return token;
  }

  private fail(message: string, at: Token): never {
    // At the end of the input the message already says where it stopped.
    throw new ParseFailure(at.type === 'eof' ? message : `${message} at column ${at.pos + 1}`);
  }
}

function describeToken(token: Token): string {
  if (token.type === 'eof') return 'the end of the expression';
  if (token.type === 'string') return 'a string literal';
  return JSON.stringify(token.text);
}
