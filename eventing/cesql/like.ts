import { nextCodePoint } from './text.ts';

/** Does a whole string match a LIKE pattern? */
export type LikeMatcher = (text: string) => boolean;

/** `_`: exactly one character. */
const ONE = 0;
/** A run between `%`s: literal text and `_`s. */
type Segment = (string | typeof ONE)[];

/**
 * Compiles a LIKE pattern (CESQL §3.4.3): `%` is any run of characters, `_` one character, `\%` and
 * `\_` the literal characters. Any other character, a backslash included, matches itself, as the TCK
 * case `'ab\c' LIKE 'ab\c'` requires. Matching splits the pattern at `%` and places each piece as far
 * left as it fits, which is linear-ish in the text: no regular expression, so no catastrophic
 * backtracking on patterns with many `%`s.
 */
export function compileLike(pattern: string): LikeMatcher {
  const segments = splitPattern(pattern);
  if (segments.every((s) => s.every((part) => part !== ONE))) {
    return literalMatcher(segments.map((s) => s.join('')));
  }
  return (text) => matchSegments(text, segments);
}

function splitPattern(pattern: string): Segment[] {
  const segments: Segment[] = [];
  let segment: Segment = [];
  let literal = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    const next = pattern[i + 1];
    if (c === '\\' && (next === '%' || next === '_')) {
      literal += next;
      i++;
    } else if (c === '%' || c === '_') {
      if (literal) segment.push(literal);
      literal = '';
      if (c === '_') {
        segment.push(ONE);
      } else {
        segments.push(segment);
        segment = [];
      }
    } else {
      literal += c;
    }
  }
  if (literal) segment.push(literal);
  segments.push(segment);
  return segments;
}

/** Patterns without `_`: string comparisons only, the shapes filters use most (exact, prefix, suffix). */
function literalMatcher(pieces: string[]): LikeMatcher {
  const first = pieces[0]!;
  if (pieces.length === 1) return (text) => text === first;
  const last = pieces[pieces.length - 1]!;
  if (pieces.length === 2) {
    const min = first.length + last.length;
    return (text) => text.length >= min && text.startsWith(first) && text.endsWith(last);
  }
  const middle = pieces.slice(1, -1).filter((p) => p !== '');
  const min = pieces.reduce((sum, p) => sum + p.length, 0);
  return (text) => {
    if (text.length < min || !text.startsWith(first) || !text.endsWith(last)) return false;
    let pos = first.length;
    const end = text.length - last.length;
    for (const piece of middle) {
      const at = text.indexOf(piece, pos);
      if (at < 0 || at + piece.length > end) return false;
      pos = at + piece.length;
    }
    return true;
  };
}

function matchSegments(text: string, segments: Segment[]): boolean {
  const last = segments.length - 1;
  if (last === 0) return matchAt(text, 0, segments[0]!) === text.length;
  let pos = matchAt(text, 0, segments[0]!);
  if (pos < 0) return false;
  for (let i = 1; i < last; i++) {
    pos = findFrom(text, pos, segments[i]!);
    if (pos < 0) return false;
  }
  // The last piece must end where the text ends; `_` may span a surrogate pair, so try each start.
  const tail = segments[last]!;
  for (let start = pos; start <= text.length; start = nextCodePoint(text, start)) {
    if (matchAt(text, start, tail) === text.length) return true;
  }
  return false;
}

/** Where a segment placed at `pos` ends, or -1 when it does not match there. */
function matchAt(text: string, pos: number, segment: Segment): number {
  for (const part of segment) {
    if (part === ONE) {
      if (pos >= text.length) return -1;
      pos = nextCodePoint(text, pos);
    } else {
      if (!text.startsWith(part, pos)) return -1;
      pos += part.length;
    }
  }
  return pos;
}

/** The end of the leftmost placement of a segment at or after `pos`, or -1. */
function findFrom(text: string, pos: number, segment: Segment): number {
  for (let start = pos; start <= text.length; start = nextCodePoint(text, start)) {
    const end = matchAt(text, start, segment);
    if (end >= 0) return end;
  }
  return -1;
}
