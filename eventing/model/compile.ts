import { createHash } from 'node:crypto';
import { REPLY_CHUNK, REPLY_DELIVERED, REPLY_SEND, TYPING_START } from '../chat.ts';
import type { SubscriptionsApiFilter } from '../filters/types.ts';
import { selects } from './selector.ts';
import type { BotRoute, Destination, EventBindingResource, EventResource, EventSpec, Trigger } from './types.ts';

export interface CompileOptions {
  /** Where Triggers for canned replies send: the always-on router that answers them (DESIGN §5). */
  replyRouter: Destination;
}

export const DEFAULT_COMPILE_OPTIONS: CompileOptions = {
  replyRouter: { ref: { apiVersion: 'v1', kind: 'Service', name: 'knbot-gateway' }, uri: '/v1/replies' },
};

export interface BindingOutcome {
  binding: string;
  namespace: string;
  bot: string;
  /** Names of the Events the selector picked, sorted. */
  boundEvents: string[];
  /** Names of the Triggers made from them. */
  triggers: string[];
}

export interface CompiledRouting {
  triggers: Trigger[];
  bindings: BindingOutcome[];
}

/**
 * A bot's own output carries its `chatbot` too (replies keep the message's extensions): a Trigger that
 * selects on `chatbot` alone would deliver every reply and chunk back to the bot that wrote it.
 */
// What a bot sends, and word that a reply reached its platform, carry `chatbot` too: neither wakes the
// bot. `reply.failed` does reach it, so it can answer another way (a WhatsApp template, say).
const NOT_BOT_OUTPUT: SubscriptionsApiFilter = { not: { any: [REPLY_SEND, REPLY_CHUNK, TYPING_START, REPLY_DELIVERED].map((type) => ({ exact: { type } })) } };

/** The filter of one Event: each given part must hold; a part with several values is any of them. */
export function eventFilter(spec: EventSpec): SubscriptionsApiFilter {
  const parts: SubscriptionsApiFilter[] = [];
  const oneOf = (attribute: string, values: string[] | undefined) => {
    if (!values?.length) return;
    const exacts = values.map((v) => ({ exact: { [attribute]: v } }));
    parts.push(exacts.length === 1 ? exacts[0]! : { any: exacts });
  };
  oneOf('chatplatform', spec.platforms);
  oneOf('type', spec.types);
  oneOf('chatkeyword', spec.keywords);
  parts.push(...(spec.filters ?? []));
  return parts.length === 1 ? parts[0]! : { all: parts };
}

function anyOf(filters: SubscriptionsApiFilter[]): SubscriptionsApiFilter {
  return filters.length === 1 ? filters[0]! : { any: filters };
}

/**
 * Compiles the model into Knative Triggers (DESIGN §5). Per EventBinding, one Trigger on the bot's
 * Broker with `filters: [{exact: {chatbot}}, {any: [each bound Event's filter]}]` and the bot's Service
 * as subscriber; bound Events with a canned `reply` get a Trigger each to the reply router instead,
 * and are excluded from the bot's Trigger so the bot is not woken for them. A bot with no binding gets
 * the events whose `chatbot` is its name, but for bot output (replies, chunks, typing) and delivery
 * receipts. Pure: the same model always gives the same Triggers.
 */
export function compileRouting(
  model: { bots: BotRoute[]; events: EventResource[]; bindings: EventBindingResource[] },
  options: CompileOptions = DEFAULT_COMPILE_OPTIONS,
): CompiledRouting {
  const triggers: Trigger[] = [];
  const outcomes: BindingOutcome[] = [];
  const bound = new Set<string>();
  const bindings = [...model.bindings].sort((a, b) => key(a).localeCompare(key(b)));
  for (const binding of bindings) {
    const namespace = binding.metadata.namespace ?? 'default';
    const bot = model.bots.find((b) => b.name === binding.spec.botRef.name && b.namespace === namespace);
    const outcome: BindingOutcome = { binding: binding.metadata.name, namespace, bot: binding.spec.botRef.name, boundEvents: [], triggers: [] };
    outcomes.push(outcome);
    if (!bot) continue;
    bound.add(`${namespace}/${bot.name}`);
    const events = model.events
      .filter((e) => (e.metadata.namespace ?? 'default') === namespace && selects(binding.spec.eventSelector, e.metadata.labels ?? {}))
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    outcome.boundEvents = events.map((e) => e.metadata.name);
    const routed = events.filter((e) => !e.spec.reply);
    const canned = events.filter((e) => e.spec.reply);
    const mine = { exact: { chatbot: bot.name } };
    const labels = { 'knbot.dev/bot': bot.name, 'knbot.dev/binding': binding.metadata.name };
    const annotations = binding.spec.ordering === 'conversation' ? { 'knbot.dev/ordering': 'conversation' } : undefined;
    if (routed.length) {
      const filters: SubscriptionsApiFilter[] = [mine, anyOf(routed.map((e) => eventFilter(e.spec)))];
      if (canned.length) filters.push({ not: anyOf(canned.map((e) => eventFilter(e.spec))) });
      triggers.push(trigger(triggerName(binding.metadata.name), namespace, bot.broker, filters, serviceOf(bot), labels, annotations, binding.spec.delivery));
    }
    for (const e of canned) {
      const router: Destination = { ...options.replyRouter, uri: `${options.replyRouter.uri ?? ''}/${namespace}/${e.metadata.name}` };
      const t = trigger(triggerName(`${binding.metadata.name}-reply-${e.metadata.name}`), namespace, bot.broker, [mine, eventFilter(e.spec)], router, { ...labels, 'knbot.dev/event': e.metadata.name });
      triggers.push(t);
    }
    outcome.triggers = triggers.filter((t) => t.metadata.labels['knbot.dev/binding'] === binding.metadata.name && t.metadata.namespace === namespace).map((t) => t.metadata.name);
  }
  for (const bot of [...model.bots].sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`))) {
    if (bound.has(`${bot.namespace}/${bot.name}`)) continue;
    triggers.push(trigger(triggerName(`${bot.name}-default`), bot.namespace, bot.broker, [{ exact: { chatbot: bot.name } }, NOT_BOT_OUTPUT], serviceOf(bot), { 'knbot.dev/bot': bot.name }));
  }
  return { triggers, bindings: outcomes };
}

function key(b: EventBindingResource): string {
  return `${b.metadata.namespace ?? 'default'}/${b.metadata.name}`;
}

function serviceOf(bot: BotRoute): Destination {
  return { ref: { apiVersion: 'serving.knative.dev/v1', kind: 'Service', name: bot.name } };
}

function trigger(
  name: string,
  namespace: string,
  broker: string,
  filters: SubscriptionsApiFilter[],
  subscriber: Destination,
  labels: Record<string, string>,
  annotations?: Record<string, string>,
  delivery?: Trigger['spec']['delivery'],
): Trigger {
  return {
    apiVersion: 'eventing.knative.dev/v1',
    kind: 'Trigger',
    metadata: { name, namespace, labels, ...(annotations ? { annotations } : {}) },
    spec: { broker, filters, subscriber, ...(delivery ? { delivery } : {}) },
  };
}

/** A DNS-1123 label of at most 63 characters: long names keep a prefix and get a short hash. */
export function triggerName(base: string): string {
  const clean = base.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '');
  if (clean.length <= 63) return clean;
  const hash = createHash('sha256').update(base).digest('hex').slice(0, 8);
  return `${clean.slice(0, 54).replace(/-+$/, '')}-${hash}`;
}
