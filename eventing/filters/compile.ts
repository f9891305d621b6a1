import { compileCesql } from '../cesql/index.ts';
import { type FilterSpec, FilterValidationError, type SubscriptionsApiFilter } from './types.ts';
import { validateFilters } from './validate.ts';

/** A compiled filter: does this event pass? */
export type EventMatcher = (event: Record<string, unknown>) => boolean;

const CORE_OPTIONAL = new Set(['datacontenttype', 'dataschema', 'subject', 'time']);

/**
 * An attribute's value as filters compare it: a string (numbers and booleans as Go's `%v` prints
 * them), or undefined when the event does not carry it. Knative reads an unset optional core
 * attribute as "", which no filter accepts either (empty values are rejected), so the two agree.
 */
export function attributeText(event: Record<string, unknown>, name: string): string | undefined {
  if (name === 'data') return undefined;
  const v = event[name];
  if (v === undefined || v === null) return CORE_OPTIONAL.has(name) ? '' : undefined;
  return typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

/**
 * Compiles a Trigger's filters (DESIGN §5): `spec.filters` (AND of its elements) or the legacy
 * `{attributes}`. Knative's semantics, minus its flaws: an invalid filter throws
 * `FilterValidationError` instead of being skipped into match-all, and a CESQL expression that does
 * not yield true (an error, or a value that is not a Boolean) does not match. No filters: match all.
 */
export function compileFilters(spec: FilterSpec, shared?: Map<string, EventMatcher>): EventMatcher {
  const errors = validateFilters(spec);
  if (errors.length) throw new FilterValidationError(errors);
  if (!Array.isArray(spec)) return compileAttributes(spec.attributes);
  if (spec.length === 0) return () => true;
  const one = (f: SubscriptionsApiFilter) => compileOne(f, shared);
  return spec.length === 1 ? one(spec[0]!) : all(spec.map(one));
}

function compileAttributes(attrs: Record<string, string>): EventMatcher {
  const entries = Object.entries(attrs);
  return (event) => {
    for (const [name, want] of entries) {
      const have = attributeText(event, name);
      // TriggerAnyFilter: "" asks for the attribute to be present and non-empty.
      if (have === undefined || (want === '' ? have === '' : have !== want)) return false;
    }
    return true;
  };
}

/**
 * One filter. With `shared`, equal filters compile to one matcher: many bindings bind the same Events,
 * and a router over thousands of them then keeps one copy of each, warm in the CPU's caches.
 */
function compileOne(f: SubscriptionsApiFilter, shared?: Map<string, EventMatcher>): EventMatcher {
  if (!shared) return compileNew(f);
  const key = JSON.stringify(f);
  let m = shared.get(key);
  if (!m) shared.set(key, (m = compileNew(f, shared)));
  return m;
}

function compileNew(f: SubscriptionsApiFilter, shared?: Map<string, EventMatcher>): EventMatcher {
  const one = (c: SubscriptionsApiFilter) => compileOne(c, shared);
  if (f.exact) return attributeTest(f.exact, (have, want) => have === want);
  if (f.prefix) return attributeTest(f.prefix, (have, want) => have.startsWith(want));
  if (f.suffix) return attributeTest(f.suffix, (have, want) => have.endsWith(want));
  if (f.all) return all(f.all.map(one));
  if (f.any) return any(f.any.map(one));
  if (f.not) {
    const inner = one(f.not);
    return (event) => !inner(event);
  }
  const compiled = compileCesql(f.cesql!);
  return (event) => {
    const { value, errors } = compiled.evaluate(event);
    return errors.length === 0 && value === true;
  };
}

/** Every named attribute must be there and pass the test (the Subscriptions API's exact/prefix/suffix). */
function attributeTest(map: Record<string, string>, test: (have: string, want: string) => boolean): EventMatcher {
  const entries = Object.entries(map);
  return (event) => {
    for (const [name, want] of entries) {
      const have = attributeText(event, name);
      if (have === undefined || !test(have, want)) return false;
    }
    return true;
  };
}

function all(matchers: EventMatcher[]): EventMatcher {
  if (matchers.length === 1) return matchers[0]!;
  return (event) => {
    for (const m of matchers) if (!m(event)) return false;
    return true;
  };
}

function any(matchers: EventMatcher[]): EventMatcher {
  if (matchers.length === 1) return matchers[0]!;
  return (event) => {
    for (const m of matchers) if (m(event)) return true;
    return false;
  };
}
