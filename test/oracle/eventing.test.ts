// Known Knative Eventing verdicts (shared/notes/knative-eventing.md §2, §9), asked of the oracle that
// runs Knative's own Go code. If these fail, the oracle is wrong, not knbot.
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { eventingOracleAvailable, startEventingOracle } from '../oracle.ts';
import type { CesqlResponse, EventingOracle, FilterResponse, ValidateResponse } from '../oracle.ts';

// Only whether go exists is decided here; the (possibly long) build runs in beforeAll, under its timeout.
const available = await eventingOracleAvailable();

const event = {
  specversion: '1.0',
  id: 'e-1',
  source: '/knbot/test',
  type: 'dev.knbot.greeting',
  myext: 'hello',
};

describe.skipIf(!available)('Knative eventing oracle', () => {
  let knative: EventingOracle | undefined;

  beforeAll(async () => {
    // The first build downloads Knative's modules and compiles them: minutes on a fresh machine.
    knative = await startEventingOracle();
    if (!knative) throw new Error('go was on PATH, yet the oracle did not start');
  }, 600_000);

  afterAll(async () => {
    await knative?.close();
  });

  function filter(filters: unknown[] | null, attributes: Record<string, string> | null, e: object = event) {
    return { op: 'filter', filters, filter: attributes === null ? null : { attributes }, event: e };
  }

  const filterCases: [string, ReturnType<typeof filter>, FilterResponse['result']][] = [
    ['exact match passes', filter([{ exact: { type: 'dev.knbot.greeting' } }], null), 'pass'],
    ['exact mismatch fails', filter([{ exact: { type: 'dev.knbot.other' } }], null), 'fail'],
    ['a missing attribute fails exact', filter([{ exact: { missing: 'x' } }], null), 'fail'],
    ['attributes exact match passes', filter(null, { type: 'dev.knbot.greeting', myext: 'hello' }), 'pass'],
    ['attributes mismatch fails', filter(null, { type: 'dev.knbot.other' }), 'fail'],
    ['attributes "" passes a present, non-empty attribute', filter(null, { myext: '' }), 'pass'],
    ['attributes "" fails an absent attribute', filter(null, { missing: '' }), 'fail'],
    ['attributes "" fails an unset optional attribute', filter(null, { subject: '' }), 'fail'],
    ['non-empty filters override filter', filter([{ exact: { type: 'dev.knbot.greeting' } }], { type: 'nope' }), 'pass'],
    ['empty filters do not override filter', filter([], { type: 'nope' }), 'fail'],
    ['no filter at all is NoFilter', filter(null, null), 'nofilter'],
    ['any of all-NoFilter children is NoFilter', filter([{ any: [{ not: {} }, { not: {} }] }], null), 'nofilter'],
    ['a filter that fails to materialise is skipped', filter([{ exact: { type: '' } }], null), 'nofilter'],
    ['a boolean cesql result decides', filter([{ cesql: "myext = 'hello'" }], null), 'pass'],
    ['a non-boolean cesql result panics', filter([{ cesql: 'type' }], null), 'panic'],
    ['a cesql evaluation error fails', filter([{ cesql: 'missing = 1' }], null), 'fail'],
  ];

  it.each(filterCases)('%s', async (_name, request, expected) => {
    const [response] = await knative!.ask<FilterResponse>([{ id: 'only', ...request }]);
    expect(response).toMatchObject({ id: 'only', result: expected });
  });

  it('answers a large batch in order', async () => {
    const requests = Array.from({ length: 5000 }, (_, i) => ({
      id: `n${i}`,
      ...filter([{ exact: { type: i % 2 === 0 ? 'dev.knbot.greeting' : 'other' } }], null),
    }));
    const responses = await knative!.ask<FilterResponse>(requests);
    expect(responses.map((r) => r.id)).toEqual(requests.map((r) => r.id));
    expect(responses.map((r) => r.result)).toEqual(requests.map((_, i) => (i % 2 === 0 ? 'pass' : 'fail')));
  });

  it('rejects a filter with two dialects', async () => {
    const [response] = await knative!.ask<ValidateResponse>([
      { id: 'v', op: 'validate', filters: [{ exact: { type: 'a' }, prefix: { type: 'b' } }] },
    ]);
    expect(response!.errors.map((e) => e.message)).toEqual([
      'multiple dialects found, filters can have only one dialect set',
    ]);
  });

  it('rejects an invalid attribute key in filters and in filter.attributes', async () => {
    const [filters, attributes] = await knative!.ask<ValidateResponse>([
      { id: 'a', op: 'validate', filters: [{ exact: { 'Bad-Key': 'x' } }] },
      { id: 'b', op: 'validate', filter: { attributes: { Type: 'x', ok: '' } } },
    ]);
    expect(filters!.errors).toEqual([
      expect.objectContaining({ path: 'spec.filters[0].exact[Bad-Key]', message: 'invalid key name "Bad-Key"' }),
    ]);
    expect(attributes!.errors).toEqual([
      expect.objectContaining({ path: 'spec.filter.attributes[Type]', message: 'invalid key name "Type"' }),
    ]);
  });

  it('accepts valid filters', async () => {
    const [response] = await knative!.ask<ValidateResponse>([
      { id: 'ok', op: 'validate', filters: [{ any: [{ prefix: { type: 'dev.' } }, { cesql: "source LIKE '/%'" }] }] },
    ]);
    expect(response).toEqual({ id: 'ok', errors: [] });
  });

  it('reports a math error for division by zero with the value 0', async () => {
    const [response] = await knative!.ask<CesqlResponse>([{ id: 'm', op: 'cesql', expression: '5 / 0', event }]);
    expect(response).toMatchObject({ id: 'm', value: 0, errors: [{ kind: 'math' }] });
  });

  it('answers a malformed line and goes on', async () => {
    const responses = await knative!.ask([{ id: 'x', op: 'nope' }, { id: 'y', op: 'cesql', expression: 'TRUE', event }]);
    expect(responses).toMatchObject([{ id: 'x', error: expect.any(String) }, { id: 'y', value: true, errors: [] }]);
  });
});
