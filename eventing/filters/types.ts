/**
 * One filter of a Knative Trigger's `spec.filters` (the CloudEvents Subscriptions API dialects).
 * Exactly one dialect per object.
 */
export interface SubscriptionsApiFilter {
  exact?: Record<string, string>;
  prefix?: Record<string, string>;
  suffix?: Record<string, string>;
  all?: SubscriptionsApiFilter[];
  any?: SubscriptionsApiFilter[];
  not?: SubscriptionsApiFilter;
  cesql?: string;
}

/** The legacy `spec.filter`: exact match on every attribute, `""` meaning present and non-empty. */
export interface AttributesFilter {
  attributes: Record<string, string>;
}

export type FilterSpec = SubscriptionsApiFilter[] | AttributesFilter;

export const DIALECTS = ['exact', 'prefix', 'suffix', 'all', 'any', 'not', 'cesql'] as const;
export type Dialect = (typeof DIALECTS)[number];

/** A problem with a filter, at a field path such as `[2].any[0].exact`. */
export interface FilterError {
  field: string;
  message: string;
}

export class FilterValidationError extends Error {
  readonly code = 'invalid_filter';
  readonly errors: readonly FilterError[];

  constructor(errors: readonly FilterError[]) {
    super(errors.map((e) => `${e.field}: ${e.message}`).join('; '));
    this.name = 'FilterValidationError';
    this.errors = errors;
  }
}

/** Attribute names a filter may name: Knative's webhook rule (`^[a-z][a-z0-9]*$`). */
export const FILTER_ATTRIBUTE_NAME = /^[a-z][a-z0-9]*$/;
