import type { SubscriptionsApiFilter } from '../filters/types.ts';
import type { LabelSelector } from './selector.ts';

export const API_VERSION = 'knbot.dev/v1alpha1';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  generation?: number;
}

/** A named, reusable match on chat events (DESIGN §5). Every given part must hold (AND). */
export interface EventSpec {
  /** `chatplatform` is one of these. */
  platforms?: string[];
  /** The CloudEvent `type` is one of these. */
  types?: string[];
  /** The message's first word, lower case (the `chatkeyword` extension the gateway sets), is one of these. */
  keywords?: string[];
  /** Knative filter dialects, ANDed. */
  filters?: SubscriptionsApiFilter[];
  /** A canned answer: the router replies itself and the bot is not woken. */
  reply?: { text: string };
}

export interface EventResource {
  apiVersion: typeof API_VERSION;
  kind: 'Event';
  metadata: ObjectMeta;
  spec: EventSpec;
}

/** A Knative Destination: a reference to an addressable, a URI, or a URI relative to the reference. */
export interface Destination {
  ref?: { apiVersion: string; kind: string; name: string; namespace?: string };
  uri?: string;
}

/** Knative's DeliverySpec. Durations are ISO 8601 (`PT0.2S`). */
export interface DeliverySpec {
  retry?: number;
  backoffPolicy?: 'exponential' | 'linear';
  backoffDelay?: string;
  timeout?: string;
  deadLetterSink?: Destination;
}

export interface EventBindingSpec {
  botRef: { name: string };
  eventSelector: LabelSelector;
  delivery?: DeliverySpec;
  /** `conversation`: events of one conversation (`partitionkey`) are delivered one at a time, in order. */
  ordering?: 'none' | 'conversation';
}

export interface EventBindingResource {
  apiVersion: typeof API_VERSION;
  kind: 'EventBinding';
  metadata: ObjectMeta;
  spec: EventBindingSpec;
}

/** What routing needs to know of a Bot. */
export interface BotRoute {
  name: string;
  namespace: string;
  /** The Broker its Triggers hang on. */
  broker: string;
}

/** A Knative `eventing.knative.dev/v1` Trigger, as the compiler makes it. */
export interface Trigger {
  apiVersion: 'eventing.knative.dev/v1';
  kind: 'Trigger';
  metadata: { name: string; namespace: string; labels: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    broker: string;
    filters: SubscriptionsApiFilter[];
    subscriber: Destination;
    delivery?: DeliverySpec;
  };
}

export interface ModelError {
  /** `<kind>/<name>` of the object at fault. */
  object: string;
  field: string;
  message: string;
}
