export { type BrokerOptions, type BrokerRoute, LocalBroker } from './broker.ts';
export { DEFAULT_TIMEOUT_MS, type DeliveryPolicy, MAX_TTL, TTL_ATTRIBUTE, backoffMs, classify, deadLetterEvent, deliveryPolicy, nextTtl } from './delivery.ts';
export { CANNED_REPLY_SOURCE, DLS_SUFFIX } from './dispatcher.ts';
export { type ResolveDestination, brokerRoutes } from './routes.ts';
