// The Knative Serving oracle: a Go program (test/oracle/serving/) that runs a serving.knative.dev/v1
// Service through Knative's own code (knative.dev/serving v0.49.1 = Knative 1.22.1) as the serving
// webhook does on create: `(*Service).SetDefaults`, then `(*Service).Validate`, in a context made
// with `apis.WithinCreate` and `config.ToContext` carrying the cluster's ConfigMaps, read from
// ../shared/knative/serving/{defaults,features,autoscaler}.yaml. One JSON request per line in, one
// JSON response per line out, in order; the build, cache and process machinery is oracle.ts's.
//
// Not covered, because the webhook is not where it happens: the API server's CRD schema (types,
// pruning of unknown fields; Knative decodes with unknown fields allowed and Go's case-insensitive
// key matching), the dry-run-only PodSpec check (`features.knative.dev/podspec-dryrun`), and updates.
import { join } from 'node:path';
import { goAvailable, startGoOracle } from './oracle.ts';
import type { BadRequestResponse, GoOracle, ValidationError } from './oracle.ts';
import { sharedDir } from './shared.ts';

export type { BadRequestResponse, ValidationError } from './oracle.ts';

/** The ConfigMaps the serving webhook's config store carries into SetDefaults and Validate. */
export type ServingConfigMapName = 'config-defaults' | 'config-features' | 'config-autoscaler';

/** Default and validate one Service as the webhook does on create. */
export interface ServingValidateRequest {
  id: string;
  op: 'validate';
  /** A Service as JSON (apiVersion and kind are not checked: the API server routes by them). */
  object: unknown;
  /**
   * Data keys laid over the loaded ConfigMaps for this request only, e.g.
   * `{ 'config-features': { 'kubernetes.podspec-securitycontext': 'enabled' } }`.
   */
  config?: Partial<Record<ServingConfigMapName, Record<string, string>>>;
  /**
   * The requesting user: SetDefaults then writes it into the `serving.knative.dev/creator` and
   * `serving.knative.dev/lastModifier` annotations, as the webhook does for every real request.
   * Left out, the context carries no user and those annotations are not added.
   */
  user?: string;
}

export interface ServingValidateResponse {
  id: string;
  /**
   * The object after SetDefaults, as Go marshals it (so `status: {}` appears and zero-valued fields
   * without omitempty, e.g. `containerConcurrency: 0`, are written out). Validate ran on this.
   */
  defaulted: Record<string, unknown>;
  /** Error-level diagnostics, one entry per (error, path), in Knative's merged and sorted order; empty when valid. */
  errors: ValidationError[];
  /** Warning-level diagnostics (e.g. "Kubernetes default value is insecure…"); they do not reject. */
  warnings: ValidationError[];
}

/** The webhook's decoder rejected the object (a field of the wrong type, not an object): denied before defaulting. */
export interface ServingDecodeErrorResponse {
  id: string;
  decodeError: string;
}

export type ServingOracleResponse = ServingValidateResponse | ServingDecodeErrorResponse | BadRequestResponse;

export type ServingOracle = GoOracle<ServingOracleResponse>;

/** The folder of the ConfigMap files, or undefined (with a warning; an error under CI=true) without ../shared. */
function configDir(): string | undefined {
  const shared = sharedDir();
  return shared === undefined ? undefined : join(shared, 'knative', 'serving');
}

/**
 * Whether the oracle can run here: it needs `go` on PATH and ../shared (for the ConfigMaps). False,
 * with a warning, where either is missing; under CI=true that is an error instead.
 */
export async function servingOracleAvailable(): Promise<boolean> {
  return (await goAvailable()) && configDir() !== undefined;
}

/**
 * Builds (or reuses) and starts the oracle; undefined where it cannot run (see servingOracleAvailable).
 * The first build downloads Knative's modules and compiles them: allow minutes.
 */
export async function startServingOracle(): Promise<ServingOracle | undefined> {
  const dir = configDir();
  if (dir === undefined) return undefined;
  return startGoOracle<ServingOracleResponse>({ name: 'serving', args: ['-config-dir', dir] });
}

/** Narrows a response to a completed validation (neither a decode error nor a bad request). */
export function isValidated(response: ServingOracleResponse): response is ServingValidateResponse {
  return 'errors' in response;
}
