// CESQL beyond the TCK: precedence, 32-bit integers, LIKE, literals, names, errors, functions, the
// compile-once API, and properties over random input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CesqlErrorKind, type CesqlResult, type CompiledCesql, compileCesql, evaluateCesql } from '../../eventing/index.ts';

const MIN = -2147483648;
const MAX = 2147483647;

const EVENT: Record<string, unknown> = {
  specversion: '1.0',
  id: 'evt-1',
  source: 'https://example.com/src',
  type: 'dev.knbot.test',
  subject: 'Hello',
  time: '2024-05-01T12:00:00Z',
  data: { text: 'payload' },
  myint: 10,
  mybool: true,
  mystr: '5',
};

/** [expression, value, kind of the first error (none when absent)] */
type Row = [string, unknown, CesqlErrorKind?];

function expectResult(result: CesqlResult, value: unknown, error?: CesqlErrorKind): void {
  expect(result.value).toBe(value); // toBe is Object.is: a -0 would fail
  if (error) expect(result.errors[0]?.kind).toBe(error);
  else expect(result.errors).toEqual([]);
}

function check(expression: string, value: unknown, error?: CesqlErrorKind, event: Record<string, unknown> = EVENT): void {
  expectResult(evaluateCesql(expression, event), value, error);
}

describe('precedence and associativity', () => {
  it.each<Row>([
    ['1 + 2 * 3', 7],
    ['(1 + 2) * 3', 9],
    ['10 - 4 - 3', 3],
    ['100 / 10 / 5', 2],
    ['2 * 3 % 4', 2],
    ['7 % 4 * 2', 6],
    ['- 5 + 1', -4],
    ['-(5 + 1)', -6],
    ['LENGTH("abc") * 2', 6],
    ['-LENGTH("abc")', -3],
    // LIKE and IN bind tighter than arithmetic: 2 + ('3' LIKE '3'), 1 + (1 IN (1)).
    ['2 + 3 LIKE "3"', 3],
    ['1 + 1 IN (1)', 2],
    // Unary operators bind tighter than LIKE: (NOT 'yes') LIKE 'yes' casts 'yes' to Boolean and fails.
    ['NOT "yes" LIKE "yes"', false, 'cast'],
    ['NOT TRUE AND FALSE', false],
    ['1 < 2 = TRUE', true],
    ['3 > 2 > 1', false],
    ['1 + 1 = 2', true],
    ['1 = 1 AND 2 = 2', true],
    // CESQL §3.6: AND, OR and XOR share a precedence level and go left to right.
    ['FALSE AND TRUE OR TRUE', true],
    ['TRUE OR TRUE AND FALSE', false],
    ['TRUE OR (TRUE AND FALSE)', true],
    ['TRUE XOR TRUE XOR TRUE', true],
    ['TRUE XOR TRUE AND FALSE', false],
    ['EXISTS id AND EXISTS subject', true],
    ['NOT EXISTS missing', true],
    ['1 IN (1) = TRUE', true],
    ['2 NOT IN (1, 3) AND "b" NOT LIKE "a%"', true],
  ])('%s is %j', (expression, value, error) => check(expression, value, error));

  it.each<Row>([
    ['5-1', 4],
    ['5 -1', 4],
    ['5--1', 6],
    ['5 - -1', 6],
    ['--10', 10],
    ['-2147483648', MIN],
    ['+7', 7],
    ['myint-1', 9],
    ['(1)-1', 0],
  ])('reads a sign after an operand as an operator: %s is %j', (expression, value, error) => check(expression, value, error));
});

describe('32-bit integers', () => {
  it.each<Row>([
    ['2147483647', MAX],
    ['007', 7],
    ['2147483647 + 1', 0, 'math'],
    ['-2147483648 - 1', 0, 'math'],
    ['65536 * 65536', 0, 'math'],
    ['46341 * 46341', 0, 'math'],
    ['46340 * 46340', 2147395600],
    ['-2147483648 * -1', 0, 'math'],
    ['-2147483648 / -1', 0, 'math'],
    ['--2147483648', 0, 'math'],
    ['-(-2147483648)', 0, 'math'],
    ['-2147483648 % -1', 0],
    ['-7 / 2', -3],
    ['7 / -2', -3],
    ['-7 % 3', -1],
    ['7 % -3', 1],
    ['0 * -1', 0],
    ['-1 / 5', 0],
    ['-5 % 5', 0],
    ['-0', 0],
    ['- 0', 0],
    ['ABS(-2147483648)', MAX, 'math'],
    ['ABS(-5)', 5],
    ['INT("2147483648")', 0, 'cast'],
    ['INT("-2147483648")', MIN],
    ['INT("+12")', 12],
    ['INT("-0")', 0],
    ['INT(" 12")', 0, 'cast'],
    ['INT("1.5")', 0, 'cast'],
    ['INT("")', 0, 'cast'],
  ])('%s is %j', (expression, value, error) => check(expression, value, error));

  it.each(['2147483648', '-2147483649', '1 + 99999999999'])('rejects the out-of-range literal in %s', (expression) => {
    expect(compileCesql(expression).errors[0]?.kind).toBe('parse');
  });
});

describe('LIKE', () => {
  /** [attribute value, pattern as written in CESQL, matches] */
  it.each<[string, string, boolean]>([
    ['abc', `'abc'`, true],
    ['abc', `'ab'`, false],
    ['ABC', `'abc'`, false],
    ['abc', `'a%'`, true],
    ['abc', `'%c'`, true],
    ['abc', `'%b%'`, true],
    ['abc', `'%'`, true],
    ['', `'%'`, true],
    ['', `'_'`, false],
    ['abc', `'___'`, true],
    ['abc', `'__'`, false],
    ['abc', `'a_c'`, true],
    ['aXbXc', `'a%b%c'`, true],
    ['abcab', `'%abc%abc'`, false],
    ['mississippi', `'%iss%ppi'`, true],
    ['mississippi', `'m%iss%iss%iss%'`, false],
    ['mississippi', `'m_ss%s_pp_'`, true],
    ['a%c', String.raw`'a\%c'`, true],
    ['abc', String.raw`'a\%c'`, false],
    ['a_c', String.raw`'a\_c'`, true],
    ['abc', String.raw`'a\_c'`, false],
    ['100%', String.raw`'%\%'`, true],
    ['100', String.raw`'%\%'`, false],
    // A backslash before anything but % and _ is itself.
    [String.raw`a\c`, String.raw`'a\c'`, true],
    ['ac', String.raw`'a\c'`, false],
    // Pattern characters that mean something to regular expressions mean nothing here.
    ['a.c', `'a.c'`, true],
    ['abc', `'a.c'`, false],
    ['(x+)', `'(%+)'`, true],
    ['^$', `'^$'`, true],
    // `_` is one character, a code point: an emoji is one, not two UTF-16 units.
    ['a😀b', `'a_b'`, true],
    ['😀', `'_'`, true],
    ['😀', `'__'`, false],
    ['x😀', `'%_'`, true],
    ['😀x😀', `'_x%'`, true],
    ['it\'s', `'it''s'`, true],
    ['say "hi"', `"say %""hi"""`, true],
  ])('%j LIKE %s is %j', (text, pattern, matches) => {
    check(`v LIKE ${pattern}`, matches, undefined, { ...EVENT, v: text });
    check(`v NOT LIKE ${pattern}`, !matches, undefined, { ...EVENT, v: text });
  });

  it('matches a many-wildcard pattern against a long text without backtracking blow-up', () => {
    const started = performance.now();
    check(`v LIKE '%a%a%a%a%a%a%a%a%a%a%b'`, false, undefined, { ...EVENT, v: 'a'.repeat(20_000) });
    check(`v LIKE '%a_a%a_a%a_a%b'`, false, undefined, { ...EVENT, v: 'a'.repeat(20_000) });
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('agrees with a regular-expression reading of random patterns', () => {
    const unit = fc.constantFrom('a', 'b', '%', '_', String.raw`\%`, String.raw`\_`, '😀', '.');
    const char = fc.constantFrom('a', 'b', '%', '_', '😀', '.', '\\');
    fc.assert(
      fc.property(fc.array(unit, { maxLength: 8 }), fc.array(char, { maxLength: 10 }), (units, chars) => {
        const source = units
          .map((u) => (u === '%' ? '.*' : u === '_' ? '.' : u === '.' ? '\\.' : u.startsWith('\\') ? u[1] : u))
          .join('');
        const expected = new RegExp(`^${source}$`, 'su').test(chars.join(''));
        const result = evaluateCesql(`v LIKE '${units.join('')}'`, { ...EVENT, v: chars.join('') });
        expect(result).toEqual({ value: expected, errors: [] });
      }),
      { numRuns: 3000 },
    );
  });
});

describe('IN', () => {
  it('gives the same answer and errors for a constant set as for the same values read from attributes', () => {
    const value = fc.oneof(fc.integer({ min: -2, max: 2 }), fc.boolean(), fc.constantFrom('1', '0', 'true', 'TRUE', 'x', ''));
    const literal = (v: unknown) => (typeof v === 'string' ? `'${v}'` : String(v));
    fc.assert(
      fc.property(value, fc.array(value, { minLength: 1, maxLength: 5 }), fc.boolean(), (x, set, negated) => {
        const op = negated ? 'NOT IN' : 'IN';
        const event = { ...EVENT, ...Object.fromEntries(set.map((v, i) => [`e${i}`, v])) };
        const constant = evaluateCesql(`${literal(x)} ${op} (${set.map(literal).join(', ')})`, event);
        const dynamic = evaluateCesql(`${literal(x)} ${op} (${set.map((_, i) => `e${i}`).join(', ')})`, event);
        expect(constant).toEqual(dynamic);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('string literals', () => {
  it.each<[string, string]>([
    [`'abc'`, 'abc'],
    [`''`, ''],
    [`""`, ''],
    [`'it''s'`, "it's"],
    [`"say ""hi"""`, 'say "hi"'],
    [String.raw`'a\'b'`, "a'b"],
    [String.raw`"a\"b"`, 'a"b'],
    [`'a"b'`, 'a"b'],
    [`"a'b"`, "a'b"],
    // Only the quote escapes are decoded; other backslash pairs stay as written, for LIKE's sake.
    [String.raw`'a\\b'`, String.raw`a\\b`],
    [String.raw`'a\nb'`, String.raw`a\nb`],
    [String.raw`'a\"b'`, String.raw`a\"b`],
    [`'ünïcödé 😀'`, 'ünïcödé 😀'],
    ["'tab\there'", 'tab\there'],
  ])('%s is %j', (expression, value) => check(expression, value));
});

describe('case-insensitive keywords, attribute names and function names', () => {
  it.each<Row>([
    ['ID', 'evt-1'],
    ['Id', 'evt-1'],
    ['TYPE', 'dev.knbot.test'],
    ['MyInt + 1', 11],
    ['EXISTS SUBJECT', true],
    ['exists MyBool', true],
    ['lower("ABC")', 'abc'],
    ['LoWeR("ABC")', 'abc'],
    ['concat_ws("-", "a", "b")', 'a-b'],
    ['Concat_Ws("-", "a")', 'a'],
    ['substring("abc", 2)', 'bc'],
    ['true and tRuE', true],
    ['1 in (1)', true],
    ['"a" not like "b"', true],
    ['not false', true],
    ['1 = 1 xor 1 = 2', true],
    ['int("1") = Int(1)', true],
  ])('%s is %j', (expression, value, error) => check(expression, value, error));
});

describe('attribute values (CESQL §3.2)', () => {
  const event = {
    ...EVENT,
    big: 2 ** 40,
    frac: 1.5,
    bin: new Uint8Array([1, 2, 3]),
    when: new Date(0),
    nothing: null,
  };
  it.each<Row>([
    ['myint', 10],
    ['mybool', true],
    ['mystr', '5'],
    ['mystr + 1', 6],
    ['mystr = 5', true],
    ['myint = "10"', true],
    ['mybool = "true"', true],
    ['big', '1099511627776'],
    ['big + 0', 0, 'cast'],
    ['frac', '1.5'],
    ['bin', 'AQID'],
    ['when', '1970-01-01T00:00:00.000Z'],
    ['nothing', false, 'missingAttribute'],
    ['EXISTS nothing', false],
    // `data` is the payload, not a context attribute.
    ['data', false, 'missingAttribute'],
    ['EXISTS data', false],
    // Names that objects inherit are not attributes.
    ['constructor', false, 'missingAttribute'],
    ['EXISTS constructor', false],
  ])('%s is %j', (expression, value, error) => check(expression, value, error, event));

  it('answers EXISTS for the required attributes without looking (CESQL §3.4.4)', () => {
    check('EXISTS id AND EXISTS source AND EXISTS specversion AND EXISTS type', true, undefined, {});
  });
});

describe('errors: the failing sub-expression gives its zero value, evaluation goes on', () => {
  it.each<Row>([
    ['missing', false, 'missingAttribute'],
    ['missing + 1', 0, 'missingAttribute'],
    ['-missing', 0, 'missingAttribute'],
    ['LENGTH(missing)', 0, 'missingAttribute'],
    ['UPPER(missing)', '', 'missingAttribute'],
    ['missing IN (1, 2)', false, 'missingAttribute'],
    ['1 IN (2, missing, 1)', false, 'missingAttribute'],
    ['NOT (missing = 1)', false, 'missingAttribute'],
    ['missing = missing', false, 'missingAttribute'],
    ['missing OR TRUE', false, 'missingAttribute'],
    ['TRUE OR missing', true],
    ['FALSE AND missing', false],
    ['missing AND TRUE', false, 'missingAttribute'],
    ['missing XOR TRUE', false, 'missingAttribute'],
    ["'abc' + 1", 0, 'cast'],
    ["'abc' = 1", false, 'cast'],
    ["1 = 'abc'", false],
    ["TRUE AND 'yes'", false, 'cast'],
    ["'yes' < 1", false, 'cast'],
    ["NOT 'yes'", false, 'cast'],
    // IN reads as `x = y1 OR x = y2 …`: the first match ends it, an earlier failure makes it false.
    ["1 IN ('abc', 1)", false, 'cast'],
    ["1 IN (1, 'abc')", true],
    ['1 IN (1, missing)', true],
    ['1 NOT IN (1, missing)', false],
    ['1 NOT IN (2, missing)', false, 'missingAttribute'],
    ['myint IN (missing, myint)', false, 'missingAttribute'],
    ['myint IN (myint, missing)', true],
    ["LEFT('abc', 'x')", '', 'cast'],
    ['1 / 0 = 0', false, 'math'],
    ['FOO()', false, 'missingFunction'],
    ['NOT FOO(1)', false, 'missingFunction'],
    ['LENGTH()', false, 'missingFunction'],
    ['LENGTH("a", "b")', false, 'missingFunction'],
    ['SUBSTRING("abc")', false, 'missingFunction'],
    ['ABS(1, 2)', false, 'missingFunction'],
    ['LENGTH(LEFT("abc", -1))', 0, 'functionEvaluation'],
  ])('%s is %j', (expression, value, error) => check(expression, value, error));

  it('collects every error, in evaluation order', () => {
    expect(evaluateCesql('(1 / 0) XOR missing XOR INT("x")', EVENT)).toEqual({
      value: false,
      errors: [
        { kind: 'math', message: expect.any(String) },
        { kind: 'missingAttribute', message: expect.stringContaining('missing') },
        { kind: 'cast', message: expect.stringContaining('"x"') },
      ],
    });
    expect(evaluateCesql('one + two', EVENT).errors.map((e) => e.kind)).toEqual(['missingAttribute', 'missingAttribute']);
  });
});

describe('built-in functions', () => {
  it.each<Row>([
    ['LENGTH("😀a")', 2],
    ['LEFT("😀ab", 1)', '😀'],
    ['RIGHT("ab😀", 1)', '😀'],
    ['LEFT("abc", 0)', ''],
    ['RIGHT("abc", 0)', ''],
    ['RIGHT("abc", -1)', 'abc', 'functionEvaluation'],
    ['SUBSTRING("a😀b", 2, 1)', '😀'],
    ['SUBSTRING("abc", 3)', 'c'],
    ['SUBSTRING("abc", -3)', 'abc'],
    ['SUBSTRING("abc", 4)', '', 'functionEvaluation'],
    ['SUBSTRING("abc", -4)', '', 'functionEvaluation'],
    ['SUBSTRING("abc", 1, -1)', '', 'functionEvaluation'],
    ['SUBSTRING("abc", 2, 0)', ''],
    ['SUBSTRING("abc", 2, 100)', 'bc'],
    ['SUBSTRING("abc", -2, 1)', 'b'],
    ['SUBSTRING("", 0)', ''],
    ['SUBSTRING("", 1)', '', 'functionEvaluation'],
    ['CONCAT(1, TRUE, "x")', '1truex'],
    ['CONCAT_WS(1, 2, 3)', '213'],
    ['CONCAT_WS("", "a", "b")', 'ab'],
    ['UPPER(CONCAT(LOWER("A"), "b"))', 'AB'],
    ['LOWER("ÀÉ")', 'àé'],
    // TRIM removes Unicode White_Space (NEL and ideographic space too), not U+FEFF or controls.
    ['TRIM("\u0085\u3000 x\u00a0\t")', 'x'],
    ['TRIM("\ufeffx")', '\ufeffx'],
    ['TRIM("\u0001x")', '\u0001x'],
    ['TRIM("   ")', ''],
    ['BOOL("tRuE")', true],
    ['BOOL(" true")', false, 'cast'],
    ['STRING(-5)', '-5'],
    ['STRING(myint)', '10'],
    ['INT(mybool)', 1],
  ])('%s is %j', (expression, value, error) => check(expression, value, error));
});

describe('parse errors', () => {
  it.each([
    '', '   ', '1 +', '(1', '1)', '1 2', 'x LIKE y', 'x LIKE 1', 'x IN ()', 'x IN 1', 'x IN (1,)', 'EXISTS',
    'EXISTS 1', 'EXISTS TRUE', 'EXISTS "id"', 'NOT', "'abc", '"abc', String.raw`'abc\'`, 'a = = b', 'a == b',
    'a ! b', 'a NOT b', 'a NOT', 'foo_bar', 'foo_bar1(1)', 'LOG10(1)', 'f(1,)', 'f(,1)', 'TRUE(1)', '_a', 'a.b',
    '1.5', '+ 1', '+a', '@', 'x LIKE "a" "b"', 'a\u00a0= 1', 'a\f= 1',
  ])('rejects %j', (expression) => {
    const compiled = compileCesql(expression);
    expect(compiled.errors).toHaveLength(1);
    expect(compiled.errors[0]).toEqual({ kind: 'parse', message: expect.any(String) });
    expect(compiled.evaluate(EVENT)).toEqual({ value: undefined, errors: [compiled.errors[0]] });
  });

  it('bounds nesting, so deep input neither overflows the stack nor throws', () => {
    check('('.repeat(250) + '1' + ')'.repeat(250), 1);
    check('NOT '.repeat(250) + 'TRUE', true);
    check('ABS('.repeat(250) + '-1' + ')'.repeat(250), 1);
    check('1' + ' + 1'.repeat(250), 251);
    for (const deep of ['('.repeat(100_000), 'NOT '.repeat(100_000) + 'TRUE', '-'.repeat(100_000) + '1', '1' + ' * 1'.repeat(100_000)]) {
      expect(compileCesql(deep).errors[0]?.message).toMatch(/nests deeper/);
    }
  });

  it('takes runs of AND and OR and IN sets of 200,000 operands', () => {
    const ids = Array.from({ length: 200_000 }, (_, i) => `'evt-${i}'`);
    check(ids.map((id) => `id = ${id}`).join(' OR '), true);
    check(ids.map((id) => `id = ${id}`).join(' AND '), false);
    check(`id IN (${ids.join(', ')})`, true);
    check(`id IN (${ids.map(() => 'type').join(', ')})`, false);
  });

  it('rejects an expression that is not a string, as YAML can hand over', () => {
    expect(compileCesql(true as unknown as string).errors[0]?.kind).toBe('parse');
  });
});

describe('compileCesql', () => {
  const expression = "type LIKE 'dev.knbot.%' AND myint % 3 = 0 OR subject IN ('a', 'b') OR LENGTH(missing) > 0";
  const events = Array.from({ length: 300 }, (_, i) => ({
    ...EVENT,
    type: i % 2 ? 'dev.knbot.message' : 'com.example.other',
    myint: i,
    subject: ['a', 'b', 'c'][i % 3],
  }));

  it('compiles once and gives, event after event, what evaluateCesql gives', () => {
    const compiled = compileCesql(expression);
    expect(compiled.expression).toBe(expression);
    expect(compiled.errors).toEqual([]);
    const values = new Set<unknown>();
    for (const event of events) {
      const result = compiled.evaluate(event);
      expect(result).toEqual(evaluateCesql(expression, event));
      values.add(result.value);
    }
    expect(values).toEqual(new Set([true, false]));
  });

  it('hands every evaluation a result of its own', () => {
    const compiled = compileCesql('missing = 1');
    const first = compiled.evaluate(EVENT);
    first.errors.length = 0;
    expect(compiled.evaluate(EVENT).errors).toHaveLength(1);
  });
});

describe('never throws', () => {
  const TOKENS = [
    '(', ')', ',', '+', '-', '*', '/', '%', '=', '!=', '<>', '<', '<=', '>', '>=', 'AND', 'or', 'XOR', 'NOT',
    'LIKE', 'in', 'EXISTS', 'TRUE', 'false', '0', '1', '-1', '2147483647', '-2147483648', '2147483648', "'a'",
    '"b"', String.raw`'%\_'`, "''", "'", '"', '\\', 'id', 'missing', 'myint', 'mystr', 'mybool', 'data',
    'constructor', 'LENGTH', 'CONCAT', 'CONCAT_WS', 'SUBSTRING', 'LEFT', 'ABS', 'INT', 'BOOL', 'STRING', 'TRIM',
    'foo_bar', ' ', '😀', '\n',
  ];
  const attributeValue = fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.integer({ min: MIN, max: MAX }),
    fc.constantFrom(0, -1, MIN, MAX, 2 ** 40, 1.5, Number.NaN),
    fc.boolean(),
  );
  const events = fc
    .dictionary(fc.constantFrom('myint', 'mystr', 'mybool', 'subject', 'missing', 'x'), attributeValue)
    .map((extra) => ({ ...EVENT, ...extra }));

  function expectWellFormed(compiled: CompiledCesql, result: CesqlResult): void {
    expect(Array.isArray(result.errors)).toBe(true);
    for (const error of result.errors) {
      expect(['parse', 'math', 'cast', 'missingAttribute', 'missingFunction', 'functionEvaluation']).toContain(error.kind);
      expect(typeof error.message).toBe('string');
    }
    if (compiled.errors.length) {
      expect(result.value).toBeUndefined();
      expect(result.errors[0]!.kind).toBe('parse');
    } else if (typeof result.value === 'number') {
      expect(Number.isInteger(result.value) && result.value >= MIN && result.value <= MAX && !Object.is(result.value, -0)).toBe(true);
    } else {
      expect(['boolean', 'string']).toContain(typeof result.value);
    }
  }

  function run(expression: string, event: Record<string, unknown>): void {
    const compiled = compileCesql(expression);
    const result = compiled.evaluate(event);
    expectWellFormed(compiled, result);
    expect(evaluateCesql(expression, event)).toEqual(result);
  }

  it('on random strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 60 }), events, run), { numRuns: 3000 });
    const cesqlish = fc.string({ unit: fc.constantFrom(...'()\'"\\,+-*/%=!<> _aAnNdDoOrR019%'), maxLength: 40 });
    fc.assert(fc.property(cesqlish, events, run), { numRuns: 3000 });
  });

  it('on random token soups', () => {
    const soup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 30 });
    fc.assert(fc.property(soup, fc.constantFrom(' ', ''), events, (tokens, glue, event) => run(tokens.join(glue), event)), {
      numRuns: 5000,
    });
  });

  it('on random well-formed expressions, which always parse', () => {
    const text = fc.string({ maxLength: 6 }).map((s) => `'${s.replaceAll('\\', '/').replaceAll("'", "''")}'`);
    const { expr } = fc.letrec<{ expr: string; atom: string }>((tie) => ({
      expr: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        tie('atom'),
        fc.tuple(fc.constantFrom('NOT ', '-'), tie('expr')).map(([op, e]) => `${op}(${e})`),
        fc
          .tuple(tie('expr'), fc.constantFrom('+', '-', '*', '/', '%', '=', '!=', '<>', '<', '<=', '>', '>=', 'AND', 'OR', 'XOR'), tie('expr'))
          .map(([a, op, b]) => `(${a}) ${op} (${b})`),
        fc.tuple(tie('expr'), fc.constantFrom('LIKE', 'NOT LIKE'), text).map(([e, op, p]) => `(${e}) ${op} ${p}`),
        fc.tuple(tie('expr'), fc.constantFrom('IN', 'NOT IN'), fc.array(tie('expr'), { minLength: 1, maxLength: 3 }))
          .map(([e, op, set]) => `(${e}) ${op} (${set.join(', ')})`),
        fc.tuple(fc.constantFrom('LENGTH', 'CONCAT', 'CONCAT_WS', 'LOWER', 'TRIM', 'LEFT', 'RIGHT', 'SUBSTRING', 'ABS', 'INT', 'BOOL', 'STRING', 'NOPE'), fc.array(tie('expr'), { maxLength: 3 }))
          .map(([name, args]) => `${name}(${args.join(', ')})`),
      ),
      atom: fc.oneof(
        fc.integer({ min: MIN, max: MAX }).map(String),
        fc.constantFrom('TRUE', 'false', 'id', 'myint', 'mystr', 'mybool', 'missing', 'EXISTS subject', 'EXISTS missing'),
        text,
      ),
    }));
    fc.assert(
      fc.property(expr, events, (expression, event) => {
        expect(compileCesql(expression).errors).toEqual([]);
        run(expression, event);
      }),
      { numRuns: 3000 },
    );
  });
});
