import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileFilters } from '../../eventing/filters/index.ts';
import { type EventBindingResource, readModelYaml } from '../../eventing/model/index.ts';
import { MANAGED_BY, RenderError, botTriggerSelector, renderTriggers } from '../../knative/index.ts';
import { makeTriggers } from '../../knative/operator/resources.ts';
import { crdSchema, validateAgainst } from '../openapi.ts';
import { ROOT, sharedDir } from '../shared.ts';

const shared = sharedDir();
const schema = shared ? crdSchema(join(shared, 'knative/eventing/trigger.yaml'), 'v1') : undefined;
const examples = (...files: string[]) => readModelYaml(files.map((f) => readFileSync(join(ROOT, 'knative/examples', f), 'utf8')).join('\n---\n'), 'examples.yaml');

describe('renderTriggers', () => {
  it("gives a bot with no EventBinding its default Trigger: its chatbot, never its own output", () => {
    const { triggers, warnings } = renderTriggers('echo', { namespace: 'bots', broker: 'chat' });
    expect(warnings).toEqual([]);
    expect(triggers).toEqual([
      {
        apiVersion: 'eventing.knative.dev/v1',
        kind: 'Trigger',
        metadata: { name: 'echo-default', namespace: 'bots', labels: { 'knbot.dev/bot': 'echo', 'app.kubernetes.io/managed-by': 'knbot' } },
        spec: {
          broker: 'chat',
          filters: [
            { exact: { chatbot: 'echo' } },
            { not: { any: ['dev.knbot.chat.reply.send', 'dev.knbot.chat.reply.chunk', 'dev.knbot.chat.typing.start', 'dev.knbot.chat.reply.delivered'].map((type) => ({ exact: { type } })) } },
          ],
          subscriber: { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: 'echo' } },
        },
      },
    ]);
    const toEcho = compileFilters(triggers[0]!.spec.filters);
    const message = { specversion: '1.0', id: '1', source: '/ws/bots/echo', type: 'dev.knbot.chat.message.received', chatbot: 'echo' };
    expect(toEcho(message)).toBe(true);
    expect(toEcho({ ...message, chatbot: 'faq' })).toBe(false);
    expect(toEcho({ ...message, type: 'dev.knbot.chat.reply.send' })).toBe(false);
  });

  it("makes a binding's Triggers exactly as the operator does, but for the owner reference and knbot's label", () => {
    const model = examples('slack-binding.yaml', 'hello-event.yaml');
    expect(model.errors).toEqual([]);
    // The greeting Event is bound too, so that a canned reply gets its own Trigger to the router.
    const binding = { ...model.bindings[0]!, spec: { ...model.bindings[0]!.spec, eventSelector: {} } } as EventBindingResource;
    const { triggers, warnings } = renderTriggers('faq', { namespace: 'default', broker: 'default', events: model.events, bindings: [binding] });
    expect(warnings).toEqual([]);
    expect(triggers.map((t) => t.metadata.name)).toEqual(['faq-slack', 'faq-slack-reply-hello']);
    const operators = makeTriggers({ ...binding, metadata: { ...binding.metadata, uid: 'u-1' } }, model.events, 'default').triggers;
    expect(triggers).toEqual(operators.map(({ metadata: { ownerReferences: _, ...metadata }, ...t }) => ({ ...t, metadata: { ...metadata, labels: { ...metadata.labels, ...MANAGED_BY } } })));
    expect(triggers[0]!.spec.delivery).toMatchObject({ retry: 3, deadLetterSink: { ref: { kind: 'Service', name: 'knbot-dead-letters' } } });
  });

  it.skipIf(!schema)('renders Triggers that validate against the Trigger CRD schema', () => {
    const model = examples('slack-binding.yaml', 'hello-event.yaml');
    const binding = { ...model.bindings[0]!, spec: { ...model.bindings[0]!.spec, eventSelector: {} } } as EventBindingResource;
    const rendered = [
      ...renderTriggers('echo', { namespace: 'default', broker: 'default' }).triggers,
      ...renderTriggers('faq', { namespace: 'default', broker: 'default', events: model.events, bindings: [binding] }).triggers,
    ];
    expect(rendered.length).toBe(3);
    for (const t of rendered) expect(validateAgainst(schema!, t)).toEqual([]);
  });

  it("puts Events and EventBindings that name no namespace in the bot's, and leaves other bots' bindings out", () => {
    const model = examples('slack-binding.yaml');
    const other = { ...model.bindings[0]!, metadata: { name: 'llm-slack' }, spec: { ...model.bindings[0]!.spec, botRef: { name: 'llm' } } } as EventBindingResource;
    const { triggers } = renderTriggers('faq', { namespace: 'bots', broker: 'default', events: model.events, bindings: [...model.bindings, other] });
    expect(triggers.map((t) => [t.metadata.namespace, t.metadata.name])).toEqual([['bots', 'faq-slack']]);
    // Another bot's binding does not take the default Trigger away from a bot that has none.
    expect(renderTriggers('echo', { namespace: 'bots', broker: 'default', events: model.events, bindings: [other] }).triggers.map((t) => t.metadata.name)).toEqual(['echo-default']);
  });

  it('warns of a binding that selects no Event (the bot gets nothing through it)', () => {
    const model = examples('slack-binding.yaml');
    const { triggers, warnings } = renderTriggers('faq', { namespace: 'default', broker: 'default', events: [], bindings: model.bindings });
    expect(triggers).toEqual([]);
    expect(warnings).toEqual(['EventBinding/faq-slack selects no Event in default: it makes no Trigger, and faq gets no events through it']);
  });

  it("refuses a binding of the bot in another namespace than the bot's", () => {
    const model = examples('slack-binding.yaml');
    const elsewhere = { ...model.bindings[0]!, metadata: { name: 'faq-slack', namespace: 'other' } } as EventBindingResource;
    expect(() => renderTriggers('faq', { namespace: 'default', broker: 'default', events: model.events, bindings: [elsewhere] })).toThrow(RenderError);
    expect(() => renderTriggers('faq', { namespace: 'default', broker: 'default', events: model.events, bindings: [elsewhere] })).toThrow('EventBinding/faq-slack: metadata.namespace: is other, but faq deploys to default');
  });

  it("selects, by label, the Triggers deploy applied for a bot", () => {
    expect(botTriggerSelector('echo')).toBe('knbot.dev/bot=echo,app.kubernetes.io/managed-by=knbot');
  });
});
