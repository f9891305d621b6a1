export { type BindingOutcome, type CompileOptions, type CompiledRouting, DEFAULT_COMPILE_OPTIONS, compileRouting, eventFilter, triggerName } from './compile.ts';
export { parseDuration } from './duration.ts';
export { type LabelSelector, type LabelSelectorRequirement, selects, validateSelector } from './selector.ts';
export {
  API_VERSION,
  type BotRoute,
  type DeliverySpec,
  type Destination,
  type EventBindingResource,
  type EventBindingSpec,
  type EventResource,
  type EventSpec,
  type ModelError,
  type ObjectMeta,
  type Trigger,
} from './types.ts';
export { validateResource } from './validate.ts';
export { type ModelDocuments, readModelYaml } from './read.ts';
