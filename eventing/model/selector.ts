// Kubernetes label selectors (metav1.LabelSelector): matchLabels AND matchExpressions.

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface SelectorError {
  field: string;
  message: string;
}

const OPERATORS = ['In', 'NotIn', 'Exists', 'DoesNotExist'];
/** A label key: optional DNS subdomain prefix and `/`, then a name of at most 63 characters. */
const LABEL_KEY = /^(?:[a-z0-9](?:[-a-z0-9]{0,251}[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)*\/)?[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

export function validateSelector(selector: unknown, field: string): SelectorError[] {
  const errors: SelectorError[] = [];
  if (selector === null || typeof selector !== 'object' || Array.isArray(selector)) return [{ field, message: 'must be a label selector {matchLabels, matchExpressions}' }];
  const s = selector as Record<string, unknown>;
  for (const k of Object.keys(s)) if (k !== 'matchLabels' && k !== 'matchExpressions') errors.push({ field: `${field}.${k}`, message: 'unknown field' });
  if (s.matchLabels !== undefined) {
    if (s.matchLabels === null || typeof s.matchLabels !== 'object' || Array.isArray(s.matchLabels)) errors.push({ field: `${field}.matchLabels`, message: 'must be a map' });
    else {
      for (const [k, v] of Object.entries(s.matchLabels)) {
        if (!LABEL_KEY.test(k)) errors.push({ field: `${field}.matchLabels.${k}`, message: 'not a valid label key' });
        if (typeof v !== 'string' || !LABEL_VALUE.test(v)) errors.push({ field: `${field}.matchLabels.${k}`, message: 'not a valid label value' });
      }
    }
  }
  if (s.matchExpressions !== undefined) {
    if (!Array.isArray(s.matchExpressions)) errors.push({ field: `${field}.matchExpressions`, message: 'must be a list' });
    else {
      s.matchExpressions.forEach((r: unknown, i) => {
        const f = `${field}.matchExpressions[${i}]`;
        const req = (r ?? {}) as Record<string, unknown>;
        if (typeof req.key !== 'string' || !LABEL_KEY.test(req.key)) errors.push({ field: `${f}.key`, message: 'not a valid label key' });
        if (typeof req.operator !== 'string' || !OPERATORS.includes(req.operator)) {
          errors.push({ field: `${f}.operator`, message: `must be one of ${OPERATORS.join(', ')}` });
          return;
        }
        const values = req.values;
        const set = req.operator === 'In' || req.operator === 'NotIn';
        if (set && (!Array.isArray(values) || values.length === 0)) errors.push({ field: `${f}.values`, message: `${req.operator} needs at least one value` });
        if (!set && values !== undefined && (!Array.isArray(values) || values.length > 0)) errors.push({ field: `${f}.values`, message: `${req.operator} takes no values` });
        if (Array.isArray(values)) values.forEach((v, j) => typeof v === 'string' && LABEL_VALUE.test(v) || errors.push({ field: `${f}.values[${j}]`, message: 'not a valid label value' }));
      });
    }
  }
  return errors;
}

/** True when `labels` satisfy every part of `selector`; an empty selector selects everything. */
export function selects(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const r of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, r.key);
    switch (r.operator) {
      case 'In':
        if (!has || !r.values!.includes(labels[r.key]!)) return false;
        break;
      case 'NotIn':
        if (has && r.values!.includes(labels[r.key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}
