import { compileCesql } from '../cesql/index.ts';
import { DIALECTS, FILTER_ATTRIBUTE_NAME, type FilterError, type SubscriptionsApiFilter } from './types.ts';

/**
 * Checks a Trigger's `spec.filters` (an array) or a legacy `{attributes}` filter. Knative's webhook
 * rules (one dialect per filter, attribute names `^[a-z][a-z0-9]*$`, CESQL that parses), and what
 * Knative lets through but then ignores, so a Trigger meant to filter would match everything: empty
 * values or maps in exact/prefix/suffix, empty `all`/`any` lists, a filter object with no dialect.
 * Returns every problem, empty when valid.
 */
export function validateFilters(spec: unknown): FilterError[] {
  const errors: FilterError[] = [];
  if (Array.isArray(spec)) spec.forEach((f, i) => validateOne(f, `[${i}]`, errors));
  else if (isObject(spec) && 'attributes' in spec) validateAttributes(spec.attributes, 'attributes', errors);
  else errors.push({ field: '(filters)', message: 'must be an array of filters (spec.filters) or {attributes} (spec.filter)' });
  return errors;
}

function validateAttributes(attrs: unknown, field: string, errors: FilterError[]): void {
  if (!isObject(attrs)) return void errors.push({ field, message: 'must be a map of attribute name to value' });
  for (const [name, value] of Object.entries(attrs)) {
    if (!FILTER_ATTRIBUTE_NAME.test(name)) errors.push({ field: `${field}.${name}`, message: 'attribute names are lower-case letters and digits, starting with a letter' });
    if (typeof value !== 'string') errors.push({ field: `${field}.${name}`, message: 'must be a string ("" for present and non-empty)' });
  }
}

function validateOne(filter: unknown, field: string, errors: FilterError[]): void {
  if (!isObject(filter)) return void errors.push({ field, message: 'a filter must be an object with one dialect' });
  const dialects = Object.keys(filter).filter((k) => filter[k] !== undefined && filter[k] !== null);
  const unknown = dialects.filter((k) => !(DIALECTS as readonly string[]).includes(k));
  for (const k of unknown) errors.push({ field: `${field}.${k}`, message: `unknown dialect (known: ${DIALECTS.join(', ')})` });
  const known = dialects.filter((k) => (DIALECTS as readonly string[]).includes(k));
  if (known.length === 0 && unknown.length === 0) return void errors.push({ field, message: 'a filter needs exactly one dialect, got none' });
  if (known.length > 1) return void errors.push({ field, message: `a filter has exactly one dialect, got ${known.join(', ')}` });
  const f = filter as SubscriptionsApiFilter;
  const [dialect] = known;
  switch (dialect) {
    case 'exact':
    case 'prefix':
    case 'suffix':
      return validateAttributeMap(f[dialect], `${field}.${dialect}`, errors);
    case 'all':
    case 'any': {
      const list = f[dialect];
      if (!Array.isArray(list)) return void errors.push({ field: `${field}.${dialect}`, message: 'must be an array of filters' });
      if (list.length === 0) return void errors.push({ field: `${field}.${dialect}`, message: 'must not be empty (an empty list would decide nothing)' });
      list.forEach((child, i) => validateOne(child, `${field}.${dialect}[${i}]`, errors));
      return;
    }
    case 'not':
      return validateOne(f.not, `${field}.not`, errors);
    case 'cesql': {
      if (typeof f.cesql !== 'string' || f.cesql.trim() === '') return void errors.push({ field: `${field}.cesql`, message: 'must be a CESQL expression' });
      const compiled = compileCesql(f.cesql);
      for (const e of compiled.errors) errors.push({ field: `${field}.cesql`, message: `does not parse: ${e.message}` });
      return;
    }
  }
}

function validateAttributeMap(map: unknown, field: string, errors: FilterError[]): void {
  if (!isObject(map)) return void errors.push({ field, message: 'must be a map of attribute names to values' });
  const entries = Object.entries(map);
  if (entries.length === 0) return void errors.push({ field, message: 'must name at least one attribute (an empty map would decide nothing)' });
  for (const [name, value] of entries) {
    if (!FILTER_ATTRIBUTE_NAME.test(name)) errors.push({ field: `${field}.${name}`, message: 'attribute names are lower-case letters and digits, starting with a letter' });
    if (typeof value !== 'string' || value === '') errors.push({ field: `${field}.${name}`, message: 'must be a non-empty string' });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

