export { attributeText, compileFilters, type EventMatcher } from './compile.ts';
export { validateFilters } from './validate.ts';
export {
  type AttributesFilter,
  type Dialect,
  DIALECTS,
  FILTER_ATTRIBUTE_NAME,
  type FilterError,
  type FilterSpec,
  FilterValidationError,
  type SubscriptionsApiFilter,
} from './types.ts';
