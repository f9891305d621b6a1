import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileFilters, type SubscriptionsApiFilter } from '../../eventing/filters/index.ts';
import { indexKey, type Route, Router } from '../../eventing/router/index.ts';

const bots = ['faq', 'echo', 'llm', 'ops'];
const types = ['dev.knbot.chat.message.received', 'dev.knbot.slack.event.app_mention', 'dev.knbot.chat.action.invoked'];
const sources = ['/slack/T1/A1', '/telegram/1/2', '/ws/default/faq'];

const leaf: fc.Arbitrary<SubscriptionsApiFilter> = fc.oneof(
  fc.constantFrom(...bots).map((v) => ({ exact: { chatbot: v } })),
  fc.constantFrom(...types).map((v) => ({ exact: { type: v } })),
  fc.constantFrom(...sources).map((v) => ({ exact: { source: v } })),
  fc.constantFrom('/slack', '/tele', '/ws').map((v) => ({ prefix: { source: v } })),
  fc.constantFrom('.received', '.invoked').map((v) => ({ suffix: { type: v } })),
  fc.constantFrom("chatplatform = 'slack'", "subject LIKE 'C%'", 'EXISTS chatuser').map((v) => ({ cesql: v })),
);
const filter: fc.Arbitrary<SubscriptionsApiFilter> = fc.letrec<{ f: SubscriptionsApiFilter }>((tie) => ({
  f: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('f'), { minLength: 1, maxLength: 3 }).map((all) => ({ all })),
    fc.array(tie('f'), { minLength: 1, maxLength: 3 }).map((any) => ({ any })),
    tie('f').map((not) => ({ not })),
  ),
})).f;
const route = fc.record({ id: fc.uuid(), filters: fc.array(filter, { maxLength: 3 }), target: fc.nat() });
const event = fc.record(
  {
    specversion: fc.constant('1.0'),
    id: fc.string({ minLength: 1 }),
    source: fc.constantFrom(...sources),
    type: fc.constantFrom(...types),
    chatbot: fc.constantFrom(...bots),
    chatplatform: fc.constantFrom('slack', 'telegram', 'ws'),
    subject: fc.constantFrom('C1', 'D2/T3'),
    chatuser: fc.string(),
  },
  { requiredKeys: ['specversion', 'id', 'source', 'type'] },
);

describe('Router', () => {
  it('gives the same routes as evaluating every filter one by one', () => {
    fc.assert(
      fc.property(fc.array(route, { maxLength: 40 }), fc.array(event, { minLength: 1, maxLength: 20 }), (routes, events) => {
        const router = new Router<number>(routes as Route<number>[]);
        const naive = routes.map((r) => ({ r, m: compileFilters(r.filters) }));
        for (const e of events) {
          expect(router.match(e).map((r) => r.id)).toEqual(naive.filter((x) => x.m(e)).map((x) => x.r.id));
        }
      }),
      { numRuns: 500 },
    );
  });

  it('indexes the exact chatbot, type or source a route requires at its top level', () => {
    expect(indexKey([{ exact: { type: 't' } }, { exact: { chatbot: 'faq' } }])).toEqual({ attribute: 'chatbot', value: 'faq' });
    expect(indexKey([{ all: [{ exact: { source: '/s' } }] }])).toEqual({ attribute: 'source', value: '/s' });
    expect(indexKey([{ any: [{ exact: { chatbot: 'a' } }, { exact: { chatbot: 'b' } }] }])).toBeUndefined();
    expect(indexKey({ attributes: { chatbot: 'faq' } })).toEqual({ attribute: 'chatbot', value: 'faq' });
    expect(indexKey({ attributes: { chatbot: '' } })).toBeUndefined();
  });
});
