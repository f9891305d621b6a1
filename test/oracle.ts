// The Knative oracles: Go programs under test/oracle/ that answer with the verdicts of Knative's own
// code, for differential tests. One JSON request per line in, one JSON response per line out, in order.
// This file holds the machinery they share (find go, build into node_modules/.cache/knbot-oracle/
// keyed by a hash, spawn, ask in batches) and the Eventing oracle (test/oracle/eventing/:
// knative.dev/eventing v0.49.2 = Knative 1.22.2, cloudevents sdk-go sql/v2) for knbot's filters,
// validation and CESQL. The Serving oracle is in oracle-serving.ts.
import { spawn, execFile } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './shared.ts';

const CACHE_DIR = join(ROOT, 'node_modules', '.cache', 'knbot-oracle');
// .ci/run warms Go's build cache with the same flags, so that the build here only links.
const BUILD_ARGS = ['build', '-buildvcs=false'];

/** A Trigger `spec.filter` as the request carries it (any JSON; Knative decodes it). */
export interface TriggerFilterJson {
  attributes?: Record<string, string>;
}

/**
 * `encoding: 'binary'` sends the event through an HTTP binary-mode hop before filtering, as Knative's
 * data path does between broker ingress and broker filter (extensions then arrive as strings).
 */
export type EventEncoding = 'structured' | 'binary';

/** Decide one event against a Trigger's `spec.filters` / `spec.filter` as broker-filter does. */
export interface FilterRequest {
  id: string;
  op: 'filter';
  filters?: unknown[] | null;
  filter?: TriggerFilterJson | null;
  /** A JSON-format CloudEvent; it must pass sdk-go's event.Validate(), as broker ingress requires. */
  event: unknown;
  encoding?: EventEncoding;
}

/** Validate `spec.filters` and/or `spec.filter` with the Trigger webhook's code. */
export interface ValidateRequest {
  id: string;
  op: 'validate';
  filters?: unknown[] | null;
  filter?: TriggerFilterJson | null;
}

/** Parse and evaluate a CESQL expression with sdk-go sql/v2 (event used as parsed, not validated). */
export interface CesqlRequest {
  id: string;
  op: 'cesql';
  expression: string;
  event: unknown;
  encoding?: EventEncoding;
}

export type OracleRequest = FilterRequest | ValidateRequest | CesqlRequest;

/** `error`: the trigger or the event did not decode, or the event failed validation. */
export type FilterVerdict = 'pass' | 'fail' | 'nofilter' | 'panic' | 'error';

export interface FilterResponse {
  id: string;
  result: FilterVerdict;
  /** The panic message (`building filters: …` or `filtering: …`) or the decoding problem. */
  error?: string;
}

export interface ValidationError {
  /** Knative's flattened field path, e.g. `spec.filters[0].exact[Bad]`; may be `''`. */
  path: string;
  message: string;
  details?: string;
}

export interface ValidateResponse {
  id: string;
  /** One entry per (error, path), in Knative's merged and sorted order; empty when valid. */
  errors: ValidationError[];
  /** The webhook's decoder rejected the object (unknown field, wrong type) before validation. */
  decodeError?: string;
}

export type CesqlErrorKind =
  | 'parse'
  | 'math'
  | 'cast'
  | 'missingAttribute'
  | 'missingFunction'
  | 'functionEvaluation'
  | 'generic';

export interface CesqlResponse {
  id: string;
  /** Evaluate's value, also when it reports an error; null when the expression did not parse. */
  value: boolean | number | string | null;
  /** At most one: sdk-go evaluation is fail-fast. */
  errors: { kind: CesqlErrorKind; message: string }[];
  /** The parser or Evaluate panicked (also listed in errors, as parse or generic). */
  panic?: string;
  /** The request was unusable (no expression, event not parseable). */
  error?: string;
}

/** A line the oracle could not serve: not JSON, unknown field or op. */
export interface BadRequestResponse {
  id: unknown;
  error: string;
}

export type OracleResponse = FilterResponse | ValidateResponse | CesqlResponse | BadRequestResponse;

export interface EventingOracle {
  /**
   * Sends a batch and resolves with one response per request, in order. The type parameter is an
   * unchecked convenience for batches of one op.
   */
  ask<T extends OracleResponse = OracleResponse>(requests: readonly object[]): Promise<T[]>;
  close(): Promise<void>;
}

/**
 * Whether the oracle can run here: false, with a warning, where `go` is not on PATH; under CI=true
 * that is an error instead, since a skipped differential test passes silently.
 */
export async function eventingOracleAvailable(): Promise<boolean> {
  return goAvailable();
}

/**
 * Builds (or reuses) and starts the oracle; undefined where it cannot run (see eventingOracleAvailable).
 * The first build downloads Knative's modules and compiles them: allow minutes.
 */
export async function startEventingOracle(): Promise<EventingOracle | undefined> {
  return startGoOracle<OracleResponse>({ name: 'eventing' });
}

// ---- Shared machinery of the Go oracles ----------------------------------------------------------

/** A Go oracle: a `main` package in its own module at test/oracle/<name>/. */
export interface GoOracleSpec {
  /** The folder under test/oracle/, also the binary's name prefix in the cache. */
  readonly name: string;
  /** Command-line arguments for the started binary. */
  readonly args?: readonly string[];
}

/** A running Go oracle, answering batches in order; `R` is the union of its response shapes. */
export interface GoOracle<R extends { id: unknown }> {
  /**
   * Sends a batch (thousands are fine: it is written at once and streamed back) and resolves with
   * one response per request, in order. `T` is an unchecked convenience for batches of one op.
   */
  ask<T extends R = R>(requests: readonly object[]): Promise<T[]>;
  close(): Promise<void>;
}

/**
 * Whether `go` is on PATH: false, with a warning, where it is not; under CI=true that is an error
 * instead, since a skipped differential test passes silently.
 */
export async function goAvailable(): Promise<boolean> {
  if ((await findGo()) !== undefined) return true;
  if (process.env.CI === 'true') throw new Error('go is not on PATH; CI needs it for the Knative oracles');
  console.warn('skipping: go is not on PATH, so the Knative oracle tests cannot run');
  return false;
}

/** Builds (or reuses) and starts a Go oracle; undefined where `go` is missing (see goAvailable). */
export async function startGoOracle<R extends { id: unknown }>(spec: GoOracleSpec): Promise<GoOracle<R> | undefined> {
  const goVersion = await findGo();
  if (goVersion === undefined) {
    await goAvailable();
    return undefined;
  }
  const binary = await buildOracle(spec.name, goVersion);
  return OracleProcess.start<R>(binary, spec.args ?? [], `Knative ${spec.name} oracle`);
}

const execFileAsync = promisify(execFile);

async function findGo(): Promise<string | undefined> {
  try {
    const { stdout } = await execFileAsync('go', ['env', 'GOVERSION']);
    return stdout.trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The binary's path; its name hashes the sources and the Go version, so a hit needs no build. */
async function buildOracle(name: string, goVersion: string): Promise<string> {
  const moduleDir = join(ROOT, 'test', 'oracle', name);
  const names = (await readdir(moduleDir))
    .filter((n) => n === 'go.mod' || n === 'go.sum' || n.endsWith('.go'))
    .sort();
  const hash = createHash('sha256').update(`${goVersion}\0${BUILD_ARGS.join(' ')}\0`);
  for (const file of names) {
    hash.update(file).update('\0').update(await readFile(join(moduleDir, file))).update('\0');
  }
  const binary = join(CACHE_DIR, `${name}-${hash.digest('hex').slice(0, 16)}`);
  if (existsSync(binary)) return binary;

  await mkdir(CACHE_DIR, { recursive: true });
  // Build beside the target and rename: parallel test workers may build at once.
  const partial = `${binary}.${randomUUID()}.partial`;
  try {
    await execFileAsync('go', [...BUILD_ARGS, '-o', partial, '.'], {
      cwd: moduleDir,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    await rm(partial, { force: true });
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`go build of the Knative ${name} oracle failed in ${moduleDir}:\n${stderr}`, { cause: err });
  }
  await rename(partial, binary);
  // Older builds are 70 MB each; a worker still running one keeps its open file.
  const stale = new RegExp(`^${name}-[0-9a-f]{16}$`);
  for (const file of await readdir(CACHE_DIR)) {
    if (stale.test(file) && join(CACHE_DIR, file) !== binary) {
      await rm(join(CACHE_DIR, file), { force: true });
    }
  }
  return binary;
}

interface Batch<R> {
  readonly requests: readonly object[];
  readonly responses: R[];
  resolve(responses: R[]): void;
  reject(err: Error): void;
}

/** The running oracle: batches are written whole and answered in order through one queue. */
class OracleProcess<R extends { id: unknown }> implements GoOracle<R> {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #label: string;
  readonly #exited: Promise<void>;
  readonly #pending: Batch<R>[] = [];
  #partialLine = '';
  #stderr = '';
  #failure: Error | undefined;

  static start<R extends { id: unknown }>(binary: string, args: readonly string[], label: string): OracleProcess<R> {
    return new OracleProcess<R>(spawn(binary, args, { stdio: ['pipe', 'pipe', 'pipe'] }), label);
  }

  private constructor(child: ChildProcessWithoutNullStreams, label: string) {
    this.#child = child;
    this.#label = label;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => this.#onData(chunk));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-4000);
    });
    // A write after the process died fails here too; the exit handler reports it.
    child.stdin.on('error', () => {});
    this.#exited = new Promise((resolve) => {
      child.on('error', (err) => {
        this.#fail(new Error(`${label} failed: ${err.message}`, { cause: err }));
        resolve();
      });
      child.on('exit', (code, signal) => {
        this.#fail(new Error(`${label} exited (code ${code}, signal ${signal}): ${this.#stderr}`));
        resolve();
      });
    });
  }

  ask<T extends R = R>(requests: readonly object[]): Promise<T[]> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (requests.length === 0) return Promise.resolve([]);
    const text = requests.map((r) => JSON.stringify(r)).join('\n') + '\n';
    return new Promise<T[]>((resolve, reject) => {
      this.#pending.push({
        requests,
        responses: [],
        resolve: resolve as (responses: R[]) => void,
        reject,
      });
      // One write per batch keeps batches from interleaving; the stream buffers what the pipe cannot take yet.
      this.#child.stdin.write(text);
    });
  }

  async close(): Promise<void> {
    this.#child.stdin.end();
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    await this.#exited;
    clearTimeout(timer);
  }

  #onData(chunk: string): void {
    const lines = (this.#partialLine + chunk).split('\n');
    this.#partialLine = lines.pop()!;
    for (const line of lines) {
      if (line.trim() !== '') this.#onLine(line);
    }
  }

  #onLine(line: string): void {
    const batch = this.#pending[0];
    if (!batch) {
      this.#fail(new Error(`${this.#label} answered with no request pending: ${line}`));
      return;
    }
    let response: R;
    try {
      response = JSON.parse(line) as R;
    } catch {
      this.#fail(new Error(`${this.#label} wrote a line that is not JSON: ${line}`));
      return;
    }
    const request = batch.requests[batch.responses.length] as { id?: unknown };
    if (request.id !== undefined && response.id !== request.id) {
      this.#fail(new Error(`${this.#label} answered id ${JSON.stringify(response.id)} for ${JSON.stringify(request.id)}`));
      return;
    }
    batch.responses.push(response);
    if (batch.responses.length === batch.requests.length) {
      this.#pending.shift();
      batch.resolve(batch.responses);
    }
  }

  /** Out of step or dead: every pending and later batch fails. */
  #fail(err: Error): void {
    this.#failure ??= err;
    for (const batch of this.#pending.splice(0)) batch.reject(this.#failure);
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill();
  }
}
