import type { Destination, EventResource, Trigger } from '../model/types.ts';
import type { BrokerRoute } from './broker.ts';

/** Where a Destination is, locally: a URL, or undefined when nothing serves it. */
export type ResolveDestination = (destination: Destination, namespace: string) => string | undefined;

/**
 * The local broker's routes for compiled Triggers: each subscriber resolved to a URL, the Triggers of
 * canned replies (label `knbot.dev/event`) answered by the broker itself with the Event's reply, the
 * `knbot.dev/ordering: conversation` annotation as ordered delivery. Throws, naming the Trigger, when a
 * subscriber cannot be resolved.
 */
export function brokerRoutes(triggers: readonly Trigger[], events: readonly EventResource[], resolve: ResolveDestination): BrokerRoute[] {
  return triggers.map((t) => {
    const namespace = t.metadata.namespace;
    const id = `${namespace}/${t.metadata.name}`;
    const eventName = t.metadata.labels['knbot.dev/event'];
    const canned = eventName === undefined ? undefined : events.find((e) => e.metadata.name === eventName && (e.metadata.namespace ?? 'default') === namespace);
    const route: BrokerRoute = { id, filters: t.spec.filters };
    if (canned?.spec.reply) route.reply = { text: canned.spec.reply.text };
    else {
      const url = resolve(t.spec.subscriber, namespace);
      if (!url) throw new Error(`Trigger ${id}: its subscriber ${JSON.stringify(t.spec.subscriber)} is not served here`);
      route.url = url;
    }
    if (t.spec.delivery) {
      const { deadLetterSink, ...delivery } = t.spec.delivery;
      route.delivery = delivery;
      if (deadLetterSink) {
        const dls = resolve(deadLetterSink, namespace);
        if (!dls) throw new Error(`Trigger ${id}: its dead-letter sink ${JSON.stringify(deadLetterSink)} is not served here`);
        route.deadLetterUrl = dls;
      }
    }
    if (t.metadata.annotations?.['knbot.dev/ordering'] === 'conversation') route.ordered = true;
    return route;
  });
}
