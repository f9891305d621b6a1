// A structural validator for the OpenAPI v3 schemas of Kubernetes CRDs (the subset CRDs use: type,
// properties, required, items, enum, additionalProperties, nullable, x-kubernetes-preserve-unknown-fields,
// x-kubernetes-int-or-string). Unknown fields are errors unless the schema preserves them, as a
// structural schema with pruning off would report them. For tests: is what we render what the API
// server would accept?
import { readFileSync } from 'node:fs';
import { load } from 'js-yaml';

export interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: unknown[];
  additionalProperties?: Schema | boolean;
  nullable?: boolean;
  format?: string;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
}

/** The schema of `version` of the CRD in `file`. */
export function crdSchema(file: string, version: string): Schema {
  const crd = load(readFileSync(file, 'utf8')) as { spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] } };
  const v = crd.spec.versions.find((x) => x.name === version);
  if (!v) throw new Error(`${file} has no version ${version}`);
  return v.schema.openAPIV3Schema;
}

export function validateAgainst(schema: Schema, value: unknown, path = ''): string[] {
  const errors: string[] = [];
  const at = path || '(root)';
  if (value === null) {
    if (!schema.nullable) errors.push(`${at}: null is not allowed`);
    return errors;
  }
  if (schema['x-kubernetes-int-or-string']) {
    if (typeof value !== 'string' && !Number.isInteger(value)) errors.push(`${at}: must be an integer or a string`);
    return errors;
  }
  switch (schema.type) {
    case 'object': {
      if (typeof value !== 'object' || Array.isArray(value)) return [`${at}: must be an object`];
      const obj = value as Record<string, unknown>;
      for (const r of schema.required ?? []) if (obj[r] === undefined) errors.push(`${path}.${r}: is required`);
      for (const [k, v] of Object.entries(obj)) {
        // Every object the API server stores has these at its root, whatever its schema lists; the root
        // metadata is ObjectMeta, which the API server checks itself (a CRD schema cannot describe it).
        if (path === '' && (k === 'metadata' || ((k === 'apiVersion' || k === 'kind') && !schema.properties?.[k]))) continue;
        const child = schema.properties?.[k];
        if (child) errors.push(...validateAgainst(child, v, `${path}.${k}`));
        else if (typeof schema.additionalProperties === 'object') errors.push(...validateAgainst(schema.additionalProperties, v, `${path}.${k}`));
        else if (!schema['x-kubernetes-preserve-unknown-fields'] && schema.additionalProperties !== true) errors.push(`${path}.${k}: unknown field`);
      }
      break;
    }
    case 'array':
      if (!Array.isArray(value)) return [`${at}: must be an array`];
      value.forEach((v, i) => schema.items && errors.push(...validateAgainst(schema.items, v, `${path}[${i}]`)));
      break;
    case 'string':
      if (typeof value !== 'string') errors.push(`${at}: must be a string`);
      break;
    case 'integer':
      if (!Number.isInteger(value)) errors.push(`${at}: must be an integer`);
      break;
    case 'number':
      if (typeof value !== 'number') errors.push(`${at}: must be a number`);
      break;
    case 'boolean':
      if (typeof value !== 'boolean') errors.push(`${at}: must be a boolean`);
      break;
  }
  if (schema.enum && !schema.enum.includes(value)) errors.push(`${at}: must be one of ${schema.enum.join(', ')}`);
  return errors;
}
