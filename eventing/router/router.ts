import { type EventMatcher, attributeText, compileFilters } from '../filters/compile.ts';
import type { FilterSpec, SubscriptionsApiFilter } from '../filters/types.ts';

/** A subscription: its filters and what it delivers to. */
export interface Route<T> {
  id: string;
  filters: FilterSpec;
  target: T;
}

/** Attributes whose exact values index routes: an event is only tested against routes that could match it. */
const INDEXED = ['chatbot', 'type', 'source'] as const;

interface Compiled<T> {
  order: number;
  route: Route<T>;
  matches: EventMatcher;
}

/**
 * Routes events to every route whose filters match, in route order. Routes that require an exact
 * `chatbot`, `type` or `source` (at the top level of their filters, where it is ANDed with the rest)
 * are indexed by that value; only those and the unindexable routes are evaluated for an event, which
 * gives the same answer as evaluating every route.
 */
export class Router<T> {
  readonly #byAttribute = new Map<string, Map<string, Compiled<T>[]>>();
  readonly #always: Compiled<T>[] = [];
  readonly #size: number;

  constructor(routes: readonly Route<T>[]) {
    for (const a of INDEXED) this.#byAttribute.set(a, new Map());
    const shared = new Map<string, EventMatcher>();
    routes.forEach((route, order) => {
      const c: Compiled<T> = { order, route, matches: compileFilters(route.filters, shared) };
      const key = indexKey(route.filters);
      if (!key) return void this.#always.push(c);
      const map = this.#byAttribute.get(key.attribute)!;
      const list = map.get(key.value);
      if (list) list.push(c);
      else map.set(key.value, [c]);
    });
    this.#size = routes.length;
  }

  get size(): number {
    return this.#size;
  }

  /** The routes matching `event`, in the order they were given. */
  match(event: Record<string, unknown>): Route<T>[] {
    let hits: Compiled<T>[] | undefined;
    const consider = (list: Compiled<T>[] | undefined) => {
      if (!list) return;
      for (const c of list) if (c.matches(event)) (hits ??= []).push(c);
    };
    for (const [attribute, map] of this.#byAttribute) {
      if (map.size === 0) continue;
      const v = attributeText(event, attribute);
      if (v !== undefined && v !== '') consider(map.get(v));
    }
    consider(this.#always);
    if (!hits) return [];
    if (hits.length > 1) hits.sort((a, b) => a.order - b.order);
    return hits.map((c) => c.route);
  }
}

/** The most selective exact-match requirement of a route's filters, if it has one. */
export function indexKey(spec: FilterSpec): { attribute: string; value: string } | undefined {
  const found = new Map<string, string>();
  if (Array.isArray(spec)) collect(spec, found);
  else for (const [k, v] of Object.entries(spec.attributes)) if (v !== '') found.set(k, v);
  for (const a of INDEXED) {
    const v = found.get(a);
    if (v !== undefined) return { attribute: a, value: v };
  }
  return undefined;
}

/** Exact requirements that every matching event must meet: top-level elements and nested `all`s. */
function collect(filters: readonly SubscriptionsApiFilter[], into: Map<string, string>): void {
  for (const f of filters) {
    if (f.exact) for (const [k, v] of Object.entries(f.exact)) into.set(k, v);
    if (f.all) collect(f.all, into);
  }
}
