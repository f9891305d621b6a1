import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileFilters } from '../../eventing/filters/index.ts';
import { type BotRoute, compileRouting, readModelYaml, selects, triggerName, validateResource } from '../../eventing/model/index.ts';
import { crdSchema, validateAgainst } from '../openapi.ts';
import { sharedDir } from '../shared.ts';

const MODEL = `
apiVersion: knbot.dev/v1alpha1
kind: Event
metadata: { name: slack-mentions, labels: { bot: faq, tier: chat } }
spec:
  platforms: [slack]
  types: [dev.knbot.slack.event.app_mention, dev.knbot.chat.message.received]
---
apiVersion: knbot.dev/v1alpha1
kind: Event
metadata: { name: hello, labels: { bot: faq } }
spec:
  keywords: [hello, hi]
  reply: { text: "Hello! Ask me anything." }
---
apiVersion: knbot.dev/v1alpha1
kind: Event
metadata: { name: urgent, labels: { bot: faq, tier: ops } }
spec:
  filters:
    - cesql: "subject LIKE 'ops/%'"
---
apiVersion: knbot.dev/v1alpha1
kind: Event
metadata: { name: other-bot, labels: { bot: other } }
spec: { types: [x] }
---
apiVersion: knbot.dev/v1alpha1
kind: EventBinding
metadata: { name: faq-chat }
spec:
  botRef: { name: faq }
  eventSelector:
    matchLabels: { bot: faq }
    matchExpressions: [{ key: tier, operator: NotIn, values: [ops] }]
  delivery: { retry: 3, backoffPolicy: exponential, backoffDelay: PT0.2S, deadLetterSink: { uri: "http://dls.example/" } }
  ordering: conversation
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: { name: ignored }
`;

const bots: BotRoute[] = [
  { name: 'faq', namespace: 'default', broker: 'default' },
  { name: 'lonely', namespace: 'default', broker: 'default' },
];

describe('the Event / EventBinding model', () => {
  const model = readModelYaml(MODEL, 'model.yaml');

  it('reads Events and EventBindings from YAML and leaves other kinds alone', () => {
    expect(model.errors).toEqual([]);
    expect(model.events.map((e) => e.metadata.name)).toEqual(['slack-mentions', 'hello', 'urgent', 'other-bot']);
    expect(model.bindings.map((b) => b.metadata.name)).toEqual(['faq-chat']);
  });

  it('compiles a binding to the Trigger of DESIGN §5, a canned reply to the router, a lone bot to its default', () => {
    const { triggers, bindings } = compileRouting({ bots, ...model });
    expect(bindings).toEqual([{ binding: 'faq-chat', namespace: 'default', bot: 'faq', boundEvents: ['hello', 'slack-mentions'], triggers: ['faq-chat', 'faq-chat-reply-hello'] }]);
    const main = triggers.find((t) => t.metadata.name === 'faq-chat')!;
    expect(main.spec).toEqual({
      broker: 'default',
      filters: [
        { exact: { chatbot: 'faq' } },
        { all: [{ exact: { chatplatform: 'slack' } }, { any: [{ exact: { type: 'dev.knbot.slack.event.app_mention' } }, { exact: { type: 'dev.knbot.chat.message.received' } }] }] },
        { not: { any: [{ exact: { chatkeyword: 'hello' } }, { exact: { chatkeyword: 'hi' } }] } },
      ],
      subscriber: { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'faq' } },
      delivery: { retry: 3, backoffPolicy: 'exponential', backoffDelay: 'PT0.2S', deadLetterSink: { uri: 'http://dls.example/' } },
    });
    expect(main.metadata.annotations).toEqual({ 'knbot.dev/ordering': 'conversation' });
    const reply = triggers.find((t) => t.metadata.name === 'faq-chat-reply-hello')!;
    expect(reply.spec.subscriber).toEqual({ ref: { apiVersion: 'v1', kind: 'Service', name: 'knbot-gateway' }, uri: '/v1/replies/default/hello' });
    const lonely = triggers.find((t) => t.metadata.name === 'lonely-default')!.spec.filters;
    expect(lonely[0]).toEqual({ exact: { chatbot: 'lonely' } });
    const toLonely = compileFilters(lonely);
    const message = { specversion: '1.0', id: '1', source: '/ws/default/lonely', type: 'dev.knbot.chat.message.received', chatbot: 'lonely' };
    expect(toLonely(message)).toBe(true);
    // Its own replies and chunks carry `chatbot: lonely` too, and must not come back to it.
    for (const type of ['dev.knbot.chat.reply.send', 'dev.knbot.chat.reply.chunk', 'dev.knbot.chat.typing.start']) expect(toLonely({ ...message, type })).toBe(false);
    // Word that its reply arrived does not wake it either; word that it failed does.
    expect(toLonely({ ...message, type: 'dev.knbot.chat.reply.delivered' })).toBe(false);
    expect(toLonely({ ...message, type: 'dev.knbot.chat.reply.failed' })).toBe(true);
  });

  it('routes a slack mention to the bot, and a keyword to the canned reply only', () => {
    const { triggers } = compileRouting({ bots, ...model });
    const match = (name: string, event: Record<string, unknown>) => compileFilters(triggers.find((t) => t.metadata.name === name)!.spec.filters)(event);
    const mention = { specversion: '1.0', id: '1', source: '/slack/T1/A1', type: 'dev.knbot.slack.event.app_mention', chatbot: 'faq', chatplatform: 'slack' };
    expect(match('faq-chat', mention)).toBe(true);
    expect(match('faq-chat', { ...mention, chatbot: 'other' })).toBe(false);
    expect(match('faq-chat', { ...mention, chatkeyword: 'hello' })).toBe(false);
    expect(match('faq-chat-reply-hello', { ...mention, chatkeyword: 'hello' })).toBe(true);
  });

  it.skipIf(!sharedDir())('makes Triggers that validate against the Trigger CRD schema', () => {
    const schema = crdSchema(join(sharedDir()!, 'knative/eventing/trigger.yaml'), 'v1');
    const { triggers } = compileRouting({ bots, ...model });
    expect(triggers.length).toBe(3);
    for (const t of triggers) expect(validateAgainst(schema, t)).toEqual([]);
    // The validator has teeth: a field the CRD does not know is reported.
    expect(validateAgainst(schema, { ...triggers[0], spec: { ...triggers[0]!.spec, subscriber: { ref: { nme: 'x' } } } })).toEqual(['.spec.subscriber.ref.nme: unknown field']);
  });

  it.each([
    ['an Event that matches everything', { kind: 'Event', metadata: { name: 'e' }, spec: {} }, 'spec'],
    ['an Event with a bad platform', { kind: 'Event', metadata: { name: 'e' }, spec: { platforms: ['Slack Inc'] } }, 'spec.platforms[0]'],
    ['an Event with two dialects in one filter', { kind: 'Event', metadata: { name: 'e' }, spec: { filters: [{ exact: { type: 'a' }, prefix: { type: 'b' } }] } }, 'spec.filters[0]'],
    ['an Event whose CESQL does not parse', { kind: 'Event', metadata: { name: 'e' }, spec: { filters: [{ cesql: 'type = ' }] } }, 'spec.filters[0].cesql'],
    ['a binding without a bot', { kind: 'EventBinding', metadata: { name: 'b' }, spec: { eventSelector: {} } }, 'spec.botRef.name'],
    ['a selector with a bad operator', { kind: 'EventBinding', metadata: { name: 'b' }, spec: { botRef: { name: 'x' }, eventSelector: { matchExpressions: [{ key: 'a', operator: 'Has' }] } } }, 'spec.eventSelector.matchExpressions[0].operator'],
    ['In without values', { kind: 'EventBinding', metadata: { name: 'b' }, spec: { botRef: { name: 'x' }, eventSelector: { matchExpressions: [{ key: 'a', operator: 'In', values: [] }] } } }, 'spec.eventSelector.matchExpressions[0].values'],
    ['a backoff that is not ISO 8601', { kind: 'EventBinding', metadata: { name: 'b' }, spec: { botRef: { name: 'x' }, eventSelector: {}, delivery: { backoffDelay: '200ms' } } }, 'spec.delivery.backoffDelay'],
    ['a name that is not DNS-1123', { kind: 'Event', metadata: { name: 'Bad_Name' }, spec: { types: ['t'] } }, 'metadata.name'],
  ])('rejects %s, naming %s', (_, doc, field) => {
    const errors = validateResource({ apiVersion: 'knbot.dev/v1alpha1', ...doc });
    expect(errors.map((e) => e.field)).toContain(field);
  });

  it('names the file, the object and the field of an invalid document', () => {
    const out = readModelYaml('apiVersion: knbot.dev/v1alpha1\nkind: Event\nmetadata: {name: e}\nspec: {types: [""]}\n', 'events.yaml');
    expect(out.errors).toEqual([{ object: 'events.yaml: Event/e', field: 'spec.types[0]', message: 'must not be empty' }]);
  });

  it.each([
    [{ matchLabels: { a: '1' } }, { a: '1', b: '2' }, true],
    [{ matchLabels: { a: '1' } }, { a: '2' }, false],
    [{ matchExpressions: [{ key: 'a', operator: 'In', values: ['1', '2'] }] }, { a: '2' }, true],
    [{ matchExpressions: [{ key: 'a', operator: 'In', values: ['1'] }] }, {}, false],
    [{ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['1'] }] }, {}, true],
    [{ matchExpressions: [{ key: 'a', operator: 'Exists' }] }, { a: '' }, true],
    [{ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }, { a: 'x' }, false],
    [{}, { anything: 'x' }, true],
  ] as const)('selector %j over labels %j → %s', (selector, labels, want) => {
    expect(selects(selector as never, labels)).toBe(want);
  });

  it('keeps Trigger names valid DNS-1123 labels of at most 63', () => {
    const long = triggerName(`${'a'.repeat(60)}-reply-${'b'.repeat(30)}`);
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(triggerName('short-name')).toBe('short-name');
  });
});
