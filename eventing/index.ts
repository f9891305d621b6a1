export * from './codec.ts';
export {
  CARRIED_EXTENSIONS,
  type Conversation,
  MESSAGE_RECEIVED,
  REPLY_CHUNK,
  REPLY_SEND,
  STREAM_EXTENSION,
  TYPING_START,
  chatChunkEvent,
  chatReplyEvent,
  conversationKey,
  conversationOfEvent,
  keywordOf,
  parseConversationKey,
} from './chat.ts';
export { compileCesql, evaluateCesql, type CesqlError, type CesqlErrorKind, type CesqlResult, type CompiledCesql } from './cesql/index.ts';
export {
  attributeText,
  compileFilters,
  type AttributesFilter,
  type EventMatcher,
  type FilterError,
  type FilterSpec,
  FilterValidationError,
  type SubscriptionsApiFilter,
  validateFilters,
} from './filters/index.ts';
export * from './model/index.ts';
export { type Route, Router } from './router/index.ts';
export { type BrokerOptions, type BrokerRoute, LocalBroker, type ResolveDestination, brokerRoutes } from './broker/index.ts';
