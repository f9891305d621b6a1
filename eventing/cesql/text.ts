// CESQL §3.1: a String is a sequence of Unicode characters, so LENGTH, LEFT, RIGHT, SUBSTRING and
// LIKE's `_` count code points, not UTF-16 code units. Text without surrogates (nearly all of it) takes
// the plain code-unit paths.

const SURROGATE = /[\uD800-\uDFFF]/;

export function codePointLength(text: string): number {
  if (!SURROGATE.test(text)) return text.length;
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/** `text.slice(start, end)` with code-point indices (0 <= start <= end <= length). */
export function sliceCodePoints(text: string, start: number, end: number): string {
  if (!SURROGATE.test(text)) return text.slice(start, end);
  return Array.from(text).slice(start, end).join('');
}

/** The code-unit index just after the code point at `pos`: a surrogate pair is one character. */
export function nextCodePoint(text: string, pos: number): number {
  const c = text.charCodeAt(pos);
  if (c >= 0xd800 && c <= 0xdbff && pos + 1 < text.length) {
    const d = text.charCodeAt(pos + 1);
    if (d >= 0xdc00 && d <= 0xdfff) return pos + 2;
  }
  return pos + 1;
}

/**
 * The Unicode White_Space property (PropList.txt). Not JavaScript's `trim` set: CESQL §3.5.1 TRIM
 * removes "whitespaces (as defined by unicode)", which includes U+0085 and excludes U+FEFF. All of them
 * are in the BMP, so a code unit is enough.
 */
function isWhiteSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0x85) return false;
  return (
    c === 0x85 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000
  );
}

export function trimWhiteSpace(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isWhiteSpace(text.charCodeAt(start))) start++;
  while (end > start && isWhiteSpace(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}
