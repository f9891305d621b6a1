export * from './codec.ts';
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
export { type BrokerOptions, type BrokerRoute, LocalBroker } from './broker/index.ts';
