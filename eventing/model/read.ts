import { CORE_SCHEMA, loadAll } from 'js-yaml';
import type { EventBindingResource, EventResource, ModelError } from './types.ts';
import { API_VERSION } from './types.ts';
import { validateResource } from './validate.ts';

export interface ModelDocuments {
  events: EventResource[];
  bindings: EventBindingResource[];
  errors: ModelError[];
}

/**
 * The Events and EventBindings in a YAML text (several documents allowed). Documents of other API
 * groups are left alone (a file may hold Knative objects too); knbot documents are validated, and
 * every error names the file, the object and the field.
 */
export function readModelYaml(text: string, file: string): ModelDocuments {
  const out: ModelDocuments = { events: [], bindings: [], errors: [] };
  let docs: unknown[];
  try {
    docs = loadAll(text, null, { schema: CORE_SCHEMA, filename: file }) as unknown[];
  } catch (e) {
    out.errors.push({ object: file, field: '(document)', message: `not valid YAML: ${(e as Error).message}` });
    return out;
  }
  for (const doc of docs) {
    if (doc === null || doc === undefined) continue;
    const d = doc as { apiVersion?: unknown; kind?: unknown };
    if (d.apiVersion !== API_VERSION) continue;
    const errors = validateResource(doc);
    if (errors.length) {
      out.errors.push(...errors.map((e) => ({ ...e, object: `${file}: ${e.object}` })));
      continue;
    }
    if (d.kind === 'Event') out.events.push(doc as EventResource);
    else out.bindings.push(doc as EventBindingResource);
  }
  return out;
}
