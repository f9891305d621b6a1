// knbot's Trigger filters against Knative's own Go code (test/oracle/eventing), on 12,000 generated
// (filters, event) pairs: identical verdicts, apart from the differences knbot makes on purpose:
//   - a CESQL result that is not a Boolean is false here; Knative panics inside the request;
//   - invalid filters are rejected here (validateFilters) where Knative would skip them into
//     match-all, so only filters valid here are compared for verdicts, and every filter Knative's
//     webhook rejects must be rejected here too.
// Events go through a binary-mode hop on both sides, as they do between broker ingress and filter.
import * as fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileFilters, type FilterSpec, type SubscriptionsApiFilter, validateFilters } from '../../eventing/filters/index.ts';
import { type EventingOracle, eventingOracleAvailable, type FilterResponse, startEventingOracle, type ValidateResponse } from '../oracle.ts';

const available = await eventingOracleAvailable();

const ATTRS = ['type', 'source', 'subject', 'chatbot', 'chatplatform', 'chatuser', 'count', 'flag', 'missing', 'specversion', 'id'];
const VALUES = ['dev.knbot.chat.message.received', 'dev.knbot.', 'received', '/slack/T1/A1', '/slack', 'A1', 'C1/T9', 'C1', 'faq', 'fa', 'q', 'slack', 'u-1', '5', 'true', '1.0', 'x'];
const CESQL = [
  "type = 'dev.knbot.chat.message.received'",
  "source LIKE '/slack/%'",
  'EXISTS subject',
  'NOT EXISTS chatuser',
  "chatbot IN ('faq', 'echo')",
  "UPPER(chatplatform) = 'SLACK'",
  'LENGTH(source) > 10',
  'count + 1 = 6',
  'flag = TRUE',
  "CONCAT(chatbot, '-', chatplatform) = 'faq-slack'",
  "SUBSTRING(type, 1, 3) = 'dev'",
  "chatbot LIKE 'f_q'",
  "subject LIKE 'C1/%' OR chatplatform = 'telegram'",
  'type',
  'count / 0 = 0',
  'INT(chatuser) > 0',
  "TRIM('  x ') = 'x' AND ABS(-3) = 3",
  'id <> source',
];

const leaf: fc.Arbitrary<SubscriptionsApiFilter> = fc.oneof(
  fc.record({ d: fc.constantFrom('exact', 'prefix', 'suffix'), m: fc.dictionary(fc.constantFrom(...ATTRS), fc.constantFrom(...VALUES), { minKeys: 1, maxKeys: 2 }) }).map(({ d, m }) => ({ [d]: m })),
  fc.constantFrom(...CESQL).map((cesql) => ({ cesql })),
);
const filter = fc.letrec<{ f: SubscriptionsApiFilter }>((tie) => ({
  f: fc.oneof(
    { depthSize: 'small' },
    leaf,
    fc.array(tie('f'), { minLength: 1, maxLength: 3 }).map((all) => ({ all })),
    fc.array(tie('f'), { minLength: 1, maxLength: 3 }).map((any) => ({ any })),
    tie('f').map((not) => ({ not })),
  ),
})).f;
const spec: fc.Arbitrary<FilterSpec> = fc.oneof(
  fc.array(filter, { maxLength: 3 }),
  fc.dictionary(fc.constantFrom(...ATTRS), fc.constantFrom('', ...VALUES), { maxKeys: 3 }).map((attributes) => ({ attributes })),
);
// Binary mode carries every extension as text: that is what both sides filter.
const event = fc.record(
  {
    specversion: fc.constant('1.0'),
    id: fc.constantFrom('e-1', 'e-2', '/slack/T1/A1'),
    source: fc.constantFrom('/slack/T1/A1', '/telegram/1/2', '/ws/default/faq'),
    type: fc.constantFrom('dev.knbot.chat.message.received', 'dev.knbot.chat.action.invoked', 'com.example.other'),
    subject: fc.constantFrom('C1/T9', 'C2', 'ops/x'),
    time: fc.constant('2024-01-02T03:04:05Z'),
    chatbot: fc.constantFrom('faq', 'echo', 'fxq'),
    chatplatform: fc.constantFrom('slack', 'telegram'),
    chatuser: fc.constantFrom('u-1', '42'),
    count: fc.constantFrom('5', '7', 'five'),
    flag: fc.constantFrom('true', 'false'),
  },
  { requiredKeys: ['specversion', 'id', 'source', 'type'] },
);

describe.skipIf(!available)('filters against Knative', () => {
  let knative: EventingOracle | undefined;
  beforeAll(async () => {
    knative = await startEventingOracle();
  }, 600_000);
  afterAll(() => knative?.close());

  it('decides 12,000 (filters, event) pairs as Knative does', async () => {
    const cases = fc.sample(fc.tuple(spec, event), { numRuns: 40_000, seed: 20261125 }).filter(([s]) => validateFilters(s).length === 0).slice(0, 12_000);
    expect(cases.length).toBe(12_000);
    const answers = await knative!.ask<FilterResponse>(
      cases.map(([s, e], i) => ({ id: String(i), op: 'filter', ...(Array.isArray(s) ? { filters: s, filter: null } : { filters: null, filter: s }), event: e, encoding: 'binary' })),
    );
    const differences: unknown[] = [];
    let panics = 0;
    cases.forEach(([s, e], i) => {
      const theirs = answers[i]!;
      expect(theirs.result).not.toBe('error');
      const ours = compileFilters(s)(e);
      if (theirs.result === 'panic') {
        panics++;
        // Knative panics on a non-Boolean CESQL result; knbot says false (Subscriptions API §3.2.4.1.2).
        if (ours !== false && !JSON.stringify(s).includes('"cesql":"type"')) differences.push({ s, e, theirs, ours });
        return;
      }
      const want = theirs.result === 'pass' || theirs.result === 'nofilter';
      if (ours !== want) differences.push({ spec: s, event: e, knative: theirs.result, knbot: ours });
    });
    expect(differences.slice(0, 5)).toEqual([]);
    expect(panics).toBeGreaterThan(0);
  }, 120_000);

  it('rejects every filter that Knative\'s webhook rejects', async () => {
    const anyFilter = fc.oneof(
      filter,
      fc.constant({}),
      fc.constant({ exact: { a: 'x', b: 'y' } }),
      fc.constant({ exact: { Bad: 'x' } }),
      fc.constant({ prefix: { 'my-ext': 'x' } }),
      fc.constant({ exact: { type: 'x' }, suffix: { type: 'y' } }),
      fc.constant({ cesql: 'type = ' }),
      fc.constant({ cesql: "type LIKE 'a" }),
      fc.constant({ any: [] }),
      fc.constant({ exact: { type: '' } }),
    );
    const specs = fc.sample(fc.array(anyFilter, { minLength: 1, maxLength: 3 }), { numRuns: 3000, seed: 7 });
    const answers = await knative!.ask<ValidateResponse>(specs.map((filters, i) => ({ id: String(i), op: 'validate', filters })));
    const missed = specs.filter((s, i) => (answers[i]!.errors.length > 0 || answers[i]!.decodeError) && validateFilters(s).length === 0);
    expect(missed).toEqual([]);
    // And the other way: what knbot rejects beyond Knative is one of the documented holes.
    const stricter = specs.filter((s, i) => answers[i]!.errors.length === 0 && !answers[i]!.decodeError && validateFilters(s).length > 0);
    for (const s of stricter) expect(hasKnownHole(s), JSON.stringify(s)).toBe(true);
  }, 120_000);
});

/** Filters Knative's webhook lets through and its data plane then skips (matching everything). */
function hasKnownHole(value: unknown): boolean {
  if (Array.isArray(value)) return value.length === 0 || value.some(hasKnownHole);
  if (value === null || typeof value !== 'object') return value === '';
  const entries = Object.entries(value);
  return entries.length === 0 || entries.some(([, v]) => hasKnownHole(v));
}
