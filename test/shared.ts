import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * `../shared` beside the project (specs, conformance data), or undefined in a clone without it. Under
 * CI=true its absence is an error: CI always has it, and a skipped conformance suite would pass silently.
 */
export function sharedDir(): string | undefined {
  const dir = resolve(ROOT, '..', 'shared');
  if (existsSync(join(dir, 'cloudevents'))) return dir;
  if (process.env.CI === 'true') throw new Error(`../shared is missing (looked in ${dir}); CI needs it for the conformance tests`);
  console.warn(`skipping: ../shared is not beside the project (${dir}), so the spec-driven tests cannot run`);
  return undefined;
}
