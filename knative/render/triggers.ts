import { compileRouting } from '../../eventing/model/compile.ts';
import type { EventBindingResource, EventResource, Trigger } from '../../eventing/model/types.ts';
import { RenderError } from './service.ts';

export interface TriggerRenderOptions {
  /** The bot's namespace: Events and EventBindings that name none are in it, as `kubectl apply -n` would put them. */
  namespace: string;
  /** The Broker the Triggers hang on. */
  broker: string;
  /** Events and EventBindings declared beside the bot; bindings of other bots are left out. */
  events?: EventResource[];
  bindings?: EventBindingResource[];
}

export interface RenderedTriggers {
  triggers: Trigger[];
  /** Things that render but are probably not what was meant (a binding that selects no Event). */
  warnings: string[];
}

/**
 * The label that tells Triggers `knbot deploy` applied from those the operator made (which are owned by
 * an EventBinding and carry no such label): deploy prunes only its own. The Service carries it too.
 */
export const MANAGED_BY = { 'app.kubernetes.io/managed-by': 'knbot' } as const;

/** The label selector of the Triggers `knbot deploy` applied for `bot`. */
export function botTriggerSelector(bot: string): string {
  return `knbot.dev/bot=${bot},app.kubernetes.io/managed-by=knbot`;
}

/**
 * The Triggers of one bot (DESIGN §5, §10), compiled by the same compiler as the operator's and the
 * local broker's: per EventBinding of the bot, its Trigger (and one per canned reply), or with no
 * binding the bot's default Trigger (its `chatbot`, but not bot output). The operator's Triggers are
 * these plus an owner reference to their EventBinding; these carry {@link MANAGED_BY} instead. Pure.
 */
export function renderTriggers(bot: string, options: TriggerRenderOptions): RenderedTriggers {
  const { namespace, broker } = options;
  const inNamespace = <T extends { metadata: { namespace?: string } }>(o: T): T => (o.metadata.namespace ? o : { ...o, metadata: { ...o.metadata, namespace } });
  const events = (options.events ?? []).map(inNamespace);
  const bindings = (options.bindings ?? []).filter((b) => b.spec.botRef.name === bot).map(inNamespace);
  const elsewhere = bindings.filter((b) => b.metadata.namespace !== namespace);
  if (elsewhere.length) {
    throw new RenderError(elsewhere.map((b) => `EventBinding/${b.metadata.name}: metadata.namespace: is ${b.metadata.namespace}, but ${bot} deploys to ${namespace}`).join('\n'));
  }
  const compiled = compileRouting({ bots: [{ name: bot, namespace, broker }], events, bindings });
  const warnings = compiled.bindings
    .filter((b) => b.boundEvents.length === 0)
    .map((b) => `EventBinding/${b.binding} selects no Event in ${namespace}: it makes no Trigger, and ${bot} gets no events through it`);
  const triggers = compiled.triggers.map((t) => ({ ...t, metadata: { ...t.metadata, labels: { ...t.metadata.labels, ...MANAGED_BY } } }));
  return { triggers, warnings };
}
