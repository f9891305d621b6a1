import { parseInteger } from './cast.ts';

export type Keyword = 'AND' | 'OR' | 'XOR' | 'NOT' | 'LIKE' | 'IN' | 'EXISTS' | 'TRUE' | 'FALSE';
export type Punctuation = '(' | ')' | ',' | '+' | '-' | '*' | '/' | '%' | '=' | '!=' | '<>' | '<' | '<=' | '>' | '>=';

/**
 * `identifier`: letters and digits (CESQLLexer IDENTIFIER, IDENTIFIER_WITH_NUMBER), an attribute name
 * or, letters only, a function name. `function`: letters and underscores with at least one underscore
 * (FUNCTION_IDENTIFIER_WITH_UNDERSCORE), only ever a function name.
 */
export type TokenType = Keyword | Punctuation | 'integer' | 'string' | 'identifier' | 'function' | 'eof';

export interface Token {
  readonly type: TokenType;
  /** The source text; for a string, its value with the quotes and quote escapes removed. */
  readonly text: string;
  /** Offset in the expression, for messages. */
  readonly pos: number;
  /** An integer literal's value. */
  readonly value?: number;
}

export type LexOutcome = { ok: true; tokens: Token[] } | { ok: false; message: string };

// CESQL §2: keywords are case-insensitive.
const KEYWORDS = new Map<string, Keyword>(
  (['AND', 'OR', 'XOR', 'NOT', 'LIKE', 'IN', 'EXISTS', 'TRUE', 'FALSE'] as const).map((k) => [k, k]),
);

const TWO_CHAR = new Set(['!=', '<>', '<=', '>=']);
const ONE_CHAR = new Set(['(', ')', ',', '+', '-', '*', '/', '%', '=', '<', '>']);

/** Tokens after which a `+` or `-` is a binary operator rather than the sign of an integer literal. */
const ENDS_OPERAND = new Set<TokenType>(['integer', 'string', 'identifier', 'TRUE', 'FALSE', ')']);

const WORD_CHAR = /[A-Za-z0-9_]/;
const DIGITS = /^[0-9]+$/;
const FUNCTION_NAME = /^[A-Za-z][A-Za-z_]*$/;

/**
 * Splits an expression into tokens (CESQLLexer.g4). One departure from the ANTLR lexer: there, a sign
 * always belongs to the integer that follows, so `5 -1` and `5-1` are two integers side by side and
 * fail to parse. Here a sign starts an integer literal only where an operand is expected, which keeps
 * every expression the grammar accepts meaning the same (`-2147483648` is one literal, `--10` is 10)
 * and lets `5-1` mean 4.
 */
export function tokenize(source: string): LexOutcome {
  const tokens: Token[] = [];
  let i = 0;
  const n = source.length;
  while (i < n) {
    const c = source[i]!;
    // CESQLLexer SPACE: only these four are skipped.
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
      continue;
    }
    const start = i;
    if (c === "'" || c === '"') {
      const end = stringEnd(source, i);
      if (end < 0) return { ok: false, message: `unterminated string literal at column ${start + 1}` };
      tokens.push({ type: 'string', text: unquote(source.slice(i + 1, end - 1), c), pos: start });
      i = end;
      continue;
    }
    const previous = tokens.length ? tokens[tokens.length - 1]!.type : 'eof';
    const signed = (c === '+' || c === '-') && !ENDS_OPERAND.has(previous) && isDigit(source.charCodeAt(i + 1));
    if (signed || WORD_CHAR.test(c)) {
      let end = signed ? i + 1 : i;
      while (end < n && WORD_CHAR.test(source[end]!)) end++;
      const word = source.slice(signed ? i + 1 : i, end);
      if (signed && !DIGITS.test(word)) {
        // `-1abc`: the sign is an operator before a name, not part of a literal.
        tokens.push({ type: c as Punctuation, text: c, pos: start });
        i++;
        continue;
      }
      const token = wordToken(source.slice(i, end), start);
      if (typeof token === 'string') return { ok: false, message: token };
      tokens.push(token);
      i = end;
      continue;
    }
    const two = source.slice(i, i + 2);
    if (TWO_CHAR.has(two)) {
      tokens.push({ type: two as Punctuation, text: two, pos: start });
      i += 2;
    } else if (ONE_CHAR.has(c)) {
      tokens.push({ type: c as Punctuation, text: c, pos: start });
      i++;
    } else {
      return { ok: false, message: `unexpected character ${JSON.stringify(c)} at column ${start + 1}` };
    }
  }
  tokens.push({ type: 'eof', text: '', pos: n });
  return { ok: true, tokens };
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** A word (optionally signed digits) as a token, or the message saying why it is not one. */
function wordToken(word: string, pos: number): Token | string {
  const first = word[0]!;
  if (first === '+' || first === '-' || DIGITS.test(word)) {
    // CESQL §2.2: integer literals MUST be valid 32-bit signed integers.
    const value = parseInteger(word);
    if (value === undefined) return `integer literal ${word} at column ${pos + 1} is outside the 32-bit range`;
    return { type: 'integer', text: word, pos, value };
  }
  const keyword = KEYWORDS.get(word.toUpperCase());
  if (keyword) return { type: keyword, text: word, pos };
  if (!word.includes('_')) return { type: 'identifier', text: word, pos };
  if (FUNCTION_NAME.test(word)) return { type: 'function', text: word, pos };
  return `${JSON.stringify(word)} at column ${pos + 1} is neither a name (letters and digits) nor a function name (letters and underscores)`;
}

/**
 * The offset just past the closing quote of the string literal opening at `start`, or -1. As in
 * CESQLLexer's DQUOTA_STRING and SQUOTA_STRING, a backslash takes the next character with it and a
 * doubled quote stays inside the literal.
 */
function stringEnd(source: string, start: number): number {
  const quote = source[start];
  let i = start + 1;
  while (i < source.length) {
    const c = source[i];
    if (c === '\\') {
      i += 2;
    } else if (c === quote) {
      if (source[i + 1] !== quote) return i + 1;
      i += 2;
    } else {
      i++;
    }
  }
  return -1;
}

/**
 * A literal's value. CESQL §2.2 makes `\'` (in '…') and `\"` (in "…") the escapes of the enclosing
 * quote; the doubled quote CESQLLexer also admits means the same. Every other backslash stays in the
 * value, so LIKE patterns keep their `\%` and `\_` escapes.
 */
function unquote(body: string, quote: string): string {
  if (!body.includes('\\') && !body.includes(quote)) return body;
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    const next = body[i + 1];
    if ((c === '\\' || c === quote) && next === quote) {
      out += quote;
      i++;
    } else if (c === '\\' && next !== undefined) {
      out += c + next;
      i++;
    } else {
      out += c;
    }
  }
  return out;
}
