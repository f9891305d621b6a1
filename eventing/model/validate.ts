import { validateFilters } from '../filters/validate.ts';
import { parseDuration } from './duration.ts';
import { validateSelector } from './selector.ts';
import { API_VERSION, type ModelError } from './types.ts';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const TOKEN = /^[a-z0-9][a-z0-9._-]*$/;

type Check = (field: string, message: string) => void;

/** Checks an Event or an EventBinding read from YAML or the API server; every error names its field. */
export function validateResource(doc: unknown): ModelError[] {
  const errors: ModelError[] = [];
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return [{ object: '(document)', field: '(document)', message: 'must be an object' }];
  const d = doc as Record<string, unknown>;
  const meta = (d.metadata ?? {}) as Record<string, unknown>;
  const object = `${String(d.kind)}/${typeof meta.name === 'string' ? meta.name : '?'}`;
  const fail: Check = (field, message) => errors.push({ object, field, message });
  if (d.apiVersion !== API_VERSION) fail('apiVersion', `must be ${API_VERSION}`);
  if (typeof meta.name !== 'string' || !DNS1123_LABEL.test(meta.name)) fail('metadata.name', 'must be a DNS-1123 label (lower-case letters, digits and -, at most 63)');
  if (meta.namespace !== undefined && (typeof meta.namespace !== 'string' || !DNS1123_LABEL.test(meta.namespace))) fail('metadata.namespace', 'must be a DNS-1123 label');
  if (meta.labels !== undefined && !stringMap(meta.labels)) fail('metadata.labels', 'must be a map of strings');
  const spec = d.spec;
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) {
    fail('spec', 'is required');
    return errors;
  }
  if (d.kind === 'Event') validateEventSpec(spec as Record<string, unknown>, fail);
  else if (d.kind === 'EventBinding') validateBindingSpec(spec as Record<string, unknown>, fail);
  else fail('kind', 'must be Event or EventBinding');
  return errors;
}

function validateEventSpec(spec: Record<string, unknown>, fail: Check): void {
  const known = ['platforms', 'types', 'keywords', 'filters', 'reply'];
  for (const k of Object.keys(spec)) if (!known.includes(k)) fail(`spec.${k}`, `unknown field (known: ${known.join(', ')})`);
  if (!['platforms', 'types', 'keywords', 'filters'].some((k) => spec[k] !== undefined)) {
    fail('spec', 'an Event needs at least one of platforms, types, keywords, filters (an Event that matches everything is a mistake)');
  }
  stringList(spec.platforms, 'spec.platforms', fail, (v) => TOKEN.test(v) || 'must be a platform name in lower case (slack, telegram, …)');
  stringList(spec.types, 'spec.types', fail, (v) => v !== '' || 'must not be empty');
  stringList(spec.keywords, 'spec.keywords', fail, (v) => (v !== '' && v === v.toLowerCase() && !/\s/.test(v)) || 'must be one lower-case word');
  if (spec.filters !== undefined) {
    if (!Array.isArray(spec.filters) || spec.filters.length === 0) fail('spec.filters', 'must be a non-empty list of filters');
    else for (const e of validateFilters(spec.filters)) fail(`spec.filters${e.field}`, e.message);
  }
  if (spec.reply !== undefined) {
    const r = spec.reply as Record<string, unknown> | null;
    if (r === null || typeof r !== 'object' || typeof r.text !== 'string' || r.text === '') fail('spec.reply.text', 'must be a non-empty string');
  }
}

function validateBindingSpec(spec: Record<string, unknown>, fail: Check): void {
  const known = ['botRef', 'eventSelector', 'delivery', 'ordering'];
  for (const k of Object.keys(spec)) if (!known.includes(k)) fail(`spec.${k}`, `unknown field (known: ${known.join(', ')})`);
  const bot = spec.botRef as Record<string, unknown> | undefined;
  if (!bot || typeof bot !== 'object' || typeof bot.name !== 'string' || !DNS1123_LABEL.test(bot.name)) fail('spec.botRef.name', 'is required: the name of a Bot');
  if (spec.eventSelector === undefined) fail('spec.eventSelector', 'is required (a label selector over Events; {} selects all)');
  else for (const e of validateSelector(spec.eventSelector, 'spec.eventSelector')) fail(e.field, e.message);
  if (spec.ordering !== undefined && spec.ordering !== 'none' && spec.ordering !== 'conversation') fail('spec.ordering', 'must be none or conversation');
  if (spec.delivery !== undefined) validateDelivery(spec.delivery, 'spec.delivery', fail);
}

function validateDelivery(value: unknown, field: string, fail: Check): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return fail(field, 'must be an object');
  const d = value as Record<string, unknown>;
  if (d.retry !== undefined && (!Number.isInteger(d.retry) || (d.retry as number) < 0)) fail(`${field}.retry`, 'must be a whole number ≥ 0');
  if (d.backoffPolicy !== undefined && d.backoffPolicy !== 'exponential' && d.backoffPolicy !== 'linear') fail(`${field}.backoffPolicy`, 'must be exponential or linear');
  for (const k of ['backoffDelay', 'timeout'] as const) {
    if (d[k] === undefined) continue;
    const ms = typeof d[k] === 'string' ? parseDuration(d[k] as string) : undefined;
    if (ms === undefined || ms <= 0) fail(`${field}.${k}`, 'must be a positive ISO 8601 duration such as PT0.2S');
  }
  if (d.deadLetterSink !== undefined) {
    const s = d.deadLetterSink as Record<string, unknown> | null;
    const ref = s?.ref as Record<string, unknown> | undefined;
    if (!s || typeof s !== 'object' || (s.ref === undefined && s.uri === undefined)) fail(`${field}.deadLetterSink`, 'needs a ref or a uri');
    else {
      if (ref !== undefined && (typeof ref.kind !== 'string' || typeof ref.name !== 'string' || typeof ref.apiVersion !== 'string')) {
        fail(`${field}.deadLetterSink.ref`, 'needs apiVersion, kind and name');
      }
      if (s.uri !== undefined && (typeof s.uri !== 'string' || (ref === undefined && !URL.canParse(s.uri)))) fail(`${field}.deadLetterSink.uri`, 'must be an absolute URL (or relative to ref)');
    }
  }
}

function stringList(value: unknown, field: string, fail: Check, check: (v: string) => true | string): void {
  if (value === undefined) return;
  if (!Array.isArray(value) || value.length === 0) return fail(field, 'must be a non-empty list');
  value.forEach((v, i) => {
    const ok = typeof v === 'string' ? check(v) : 'must be a string';
    if (ok !== true) fail(`${field}[${i}]`, ok);
  });
}

function stringMap(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}
