import { describe, expect, it } from 'vitest';
import { compileFilters, type FilterSpec, FilterValidationError, validateFilters } from '../../eventing/filters/index.ts';

const event = {
  specversion: '1.0',
  id: 'e1',
  source: '/slack/T1/A1',
  type: 'dev.knbot.chat.message.received',
  subject: 'C1/T9',
  chatbot: 'faq',
  chatplatform: 'slack',
  count: 5,
  flag: true,
  empty: '',
  data: { text: 'hello' },
};

describe('compileFilters', () => {
  it.each([
    ['no filters match everything', [], true],
    ['exact', [{ exact: { type: 'dev.knbot.chat.message.received' } }], true],
    ['exact on two attributes needs both', [{ exact: { type: 'dev.knbot.chat.message.received', chatbot: 'x' } }], false],
    ['exact is case-sensitive', [{ exact: { chatbot: 'FAQ' } }], false],
    ['exact on a missing attribute fails', [{ exact: { chatuser: 'u' } }], false],
    ['exact compares integers as text', [{ exact: { count: '5' } }], true],
    ['exact compares booleans as text', [{ exact: { flag: 'true' } }], true],
    ['prefix', [{ prefix: { source: '/slack/' } }], true],
    ['suffix', [{ suffix: { type: '.received' } }], true],
    ['suffix that does not hold', [{ suffix: { type: '.sent' } }], false],
    ['top level is AND', [{ exact: { chatbot: 'faq' } }, { exact: { chatplatform: 'telegram' } }], false],
    ['all', [{ all: [{ prefix: { source: '/slack' } }, { exact: { chatbot: 'faq' } }] }], true],
    ['any', [{ any: [{ exact: { chatbot: 'x' } }, { exact: { chatbot: 'faq' } }] }], true],
    ['any with none holding', [{ any: [{ exact: { chatbot: 'x' } }, { exact: { chatbot: 'y' } }] }], false],
    ['not', [{ not: { exact: { chatbot: 'x' } } }], true],
    ['cesql true', [{ cesql: "chatbot = 'faq' AND subject LIKE 'C1/%'" }], true],
    ['cesql false', [{ cesql: "chatplatform = 'telegram'" }], false],
    ['cesql that does not yield a Boolean is false', [{ cesql: 'type' }], false],
    ['cesql with an evaluation error is false', [{ cesql: 'count / 0 = 0' }], false],
    ['data is not an attribute', [{ exact: { data: 'x' } }], false],
    ['an unset core attribute fails', [{ prefix: { dataschema: 'http' } }], false],
  ] as [string, FilterSpec, boolean][])('%s', (_, filters, want) => {
    expect(compileFilters(filters)(event)).toBe(want);
  });

  it.each([
    [{ attributes: { chatbot: 'faq', type: 'dev.knbot.chat.message.received' } }, true],
    [{ attributes: { chatbot: '' } }, true],
    [{ attributes: { empty: '' } }, false],
    [{ attributes: { missing: '' } }, false],
    [{ attributes: { subject: '' } }, true],
    [{ attributes: { dataschema: '' } }, false],
    [{ attributes: {} }, true],
  ] as [FilterSpec, boolean][])('legacy filter %j → %s ("" is present and non-empty)', (spec, want) => {
    expect(compileFilters(spec)(event)).toBe(want);
  });
});

describe('validateFilters', () => {
  it.each([
    ['two dialects', [{ exact: { a: 'x' }, prefix: { a: 'y' } }], '[0]', /exactly one dialect/],
    ['no dialect', [{}], '[0]', /got none/],
    ['an unknown dialect', [{ regex: { a: '.*' } }], '[0].regex', /unknown dialect/],
    ['an empty exact', [{ exact: {} }], '[0].exact', /at least one attribute/],
    ['an empty exact value (Knative would drop the filter and match all)', [{ exact: { type: '' } }], '[0].exact.type', /non-empty/],
    ['an upper-case attribute name', [{ prefix: { Type: 'x' } }], '[0].prefix.Type', /lower-case/],
    ['an empty any', [{ any: [] }], '[0].any', /must not be empty/],
    ['a nested error', [{ all: [{ exact: { a: 'x' } }, { not: { cesql: 'a = ' } }] }], '[0].all[1].not.cesql', /does not parse/],
    ['a legacy name with a dash', { attributes: { 'my-ext': 'x' } }, 'attributes.my-ext', /lower-case/],
    ['neither an array nor attributes', { exact: { a: 'b' } }, '(filters)', /array/],
  ] as [string, unknown, string, RegExp][])('rejects %s at %s', (_, spec, field, message) => {
    const errors = validateFilters(spec);
    expect(errors.map((e) => e.field)).toContain(field);
    expect(errors.find((e) => e.field === field)!.message).toMatch(message);
    expect(() => compileFilters(spec as FilterSpec)).toThrow(FilterValidationError);
  });

  it('accepts valid filters', () => {
    expect(validateFilters([{ exact: { chatbot: 'faq' } }, { any: [{ cesql: "type LIKE 'dev.%'" }, { not: { suffix: { source: '/x' } } }] }])).toEqual([]);
  });
});
