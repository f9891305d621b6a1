export { type BrokerOptions, type BrokerRoute, LocalBroker } from './broker.ts';
export { DEFAULT_TIMEOUT_MS, type DeliveryPolicy, MAX_TTL, TTL_ATTRIBUTE, backoffMs, classify, deadLetterEvent, deliveryPolicy, nextTtl } from './delivery.ts';
export { DLS_SUFFIX } from './dispatcher.ts';
