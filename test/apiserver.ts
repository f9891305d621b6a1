// A real Kubernetes API server for the deploy and operator tests: Debian's etcd plus
// k8s.io/apiextensions-apiserver (the generic API server with CRDs, no built-in kinds), started
// with the flags of its own integration fixture (shared/notes/test-apiserver.md). It serves CRDs,
// server-side apply, watch, /status and resourceVersion conflicts; it has no Namespaces, core kinds,
// RBAC, garbage collector or webhooks, so namespaced objects live under any namespace name.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { type RequestOptions, request } from 'node:https';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ApiextensionsV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { V1CustomResourceDefinition } from '@kubernetes/client-node';
import { CORE_SCHEMA, dump, loadAll } from 'js-yaml';
import { ROOT } from './shared.ts';

/**
 * The newest release the notes checked: its go.mod has no replace directives (so `go install` works)
 * and asks for Go 1.26.0. .ci/run installs the same version into the same directory.
 */
export const APISERVER_VERSION = 'v0.36.3';
const CACHE_DIR = join(ROOT, 'node_modules', '.cache', 'knbot-apiserver', APISERVER_VERSION);
const BINARY = join(CACHE_DIR, 'apiextensions-apiserver');
const FIELD_MANAGER = 'knbot-test-harness';

export interface TestApiServer {
  /** `https://127.0.0.1:<port>` */
  readonly url: string;
  /** A kubeconfig (client certificate in group system:masters, the test CA as cluster CA), e.g. for KUBECONFIG. */
  readonly kubeconfigPath: string;
  readonly kubeConfig: KubeConfig;
  /** Stops the API server and etcd and removes their files. */
  stop(): Promise<void>;
  /** Stops the API server (not etcd) and starts it again on the same port and data: clients must reconnect. */
  restart(): Promise<void>;
}

const execFileAsync = promisify(execFile);

/** The version line of a command, or undefined when it is not on PATH. */
async function probe(command: string, args: string[]): Promise<string | undefined> {
  try {
    const { stdout } = await execFileAsync(command, args);
    return stdout.split('\n')[0]?.trim() ?? '';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** What is missing to run the server here; empty when it can run (the binary may still need a build). */
async function missingPieces(): Promise<string[]> {
  const [etcd, openssl, go] = await Promise.all([
    probe('etcd', ['--version']),
    probe('openssl', ['version']),
    existsSync(BINARY) ? Promise.resolve('cached') : probe('go', ['env', 'GOVERSION']),
  ]);
  const missing: string[] = [];
  if (etcd === undefined) missing.push('etcd (apt-get install etcd-server)');
  if (openssl === undefined) missing.push('openssl (apt-get install openssl)');
  if (go === undefined) missing.push(`go, to build apiextensions-apiserver ${APISERVER_VERSION} (none cached in ${CACHE_DIR})`);
  return missing;
}

/**
 * Whether the test API server can run: etcd and openssl on PATH, and the apiextensions-apiserver
 * binary cached or `go` there to build it. The build itself waits for startApiServer (a test hook
 * with a long timeout). Missing pieces warn and answer false; under CI=true they throw, since a
 * skipped suite would pass silently.
 */
export async function apiServerAvailable(): Promise<boolean> {
  const missing = await missingPieces();
  if (missing.length === 0) return true;
  const message = `the Kubernetes API server tests cannot run: missing ${missing.join(', ')}`;
  if (process.env.CI === 'true') throw new Error(`${message}; .ci/run installs them`);
  console.warn(`skipping: ${message}`);
  return false;
}

/** The cached binary, built by `go install` on a miss: minutes and ~100 MB on a cold machine. */
async function apiServerBinary(): Promise<string> {
  if (existsSync(BINARY)) return BINARY;
  await mkdir(CACHE_DIR, { recursive: true });
  // Install into a private GOBIN and rename: parallel test workers may build at once.
  const staging = await mkdtemp(join(CACHE_DIR, '.partial-'));
  try {
    await execFileAsync('go', ['install', `k8s.io/apiextensions-apiserver@${APISERVER_VERSION}`], {
      env: { ...process.env, GOBIN: staging },
      maxBuffer: 16 * 1024 * 1024,
    });
    await rename(join(staging, 'apiextensions-apiserver'), BINARY);
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`go install k8s.io/apiextensions-apiserver@${APISERVER_VERSION} failed:\n${tail(stderr)}`, { cause: err });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return BINARY;
}

function tail(text: string, max = 4000): string {
  return text.length > max ? `…${text.slice(-max)}` : text;
}

/** A child process whose output is kept (the tail) for error messages. */
class ServerProcess {
  readonly name: string;
  readonly exited: Promise<void>;
  readonly #child: ChildProcess;
  #output = '';
  #exit: string | undefined;

  constructor(name: string, command: string, args: string[]) {
    this.name = name;
    this.#child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-16_000);
    };
    this.#child.stdout?.on('data', keep);
    this.#child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => {
      this.#child.on('error', (err) => {
        this.#exit ??= `failed to start: ${err.message}`;
        resolve();
      });
      this.#child.on('exit', (code, signal) => {
        this.#exit ??= `exited (code ${code}, signal ${signal})`;
        resolve();
      });
    });
  }

  /** Why it is no longer running, or undefined while it runs. */
  get exit(): string | undefined {
    return this.#exit;
  }

  failure(what: string): Error {
    return new Error(`${this.name} ${what}; its last output:\n${tail(this.#output)}`);
  }

  async stop(): Promise<void> {
    if (this.#exit !== undefined) return;
    this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Polls `ready` until it answers true; fails early when the process exits, with its output. */
async function waitUntilReady(proc: ServerProcess, what: string, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exit !== undefined) throw proc.failure(`${proc.exit} before ${what}`);
    if (await ready().catch(() => false)) return;
    if (Date.now() > deadline) throw proc.failure(`did not become ready (${what}) within ${timeoutMs} ms`);
    await Promise.race([delay(100), proc.exited]);
  }
}

/** A port free at the time of asking; a process that loses the race is restarted on another. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts a server on fresh free ports, again when it lost a port to someone else. */
async function startOnFreePorts(start: () => Promise<ServerProcess>): Promise<ServerProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= 3 || !/address already in use/i.test((err as Error).message)) throw err;
    }
  }
}

function runOpenssl(args: string[], cwd: string): Promise<unknown> {
  return execFileAsync('openssl', args, { cwd }).catch((err: unknown) => {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`openssl ${args.join(' ')} failed:\n${stderr}`, { cause: err });
  });
}

/**
 * A CA, a serving certificate for 127.0.0.1 and a client certificate in group `system:masters`
 * (the group delegated authorization always allows; tokens would need the unreachable TokenReview).
 */
async function makeCertificates(dir: string): Promise<void> {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2'];
  await runOpenssl(['req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=knbot-test-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  const signed = ['-CA', 'ca.crt', '-CAkey', 'ca.key', '-addext', 'basicConstraints=critical,CA:FALSE',
    '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment'];
  await Promise.all([
    runOpenssl(['req', '-x509', ...key, ...signed, '-keyout', 'server.key', '-out', 'server.crt', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-addext', 'extendedKeyUsage=serverAuth'], dir),
    runOpenssl(['req', '-x509', ...key, ...signed, '-keyout', 'client.key', '-out', 'client.crt',
      '-subj', '/O=system:masters/CN=knbot-test-admin', '-addext', 'extendedKeyUsage=clientAuth'], dir),
  ]);
}

async function startEtcd(dir: string): Promise<{ proc: ServerProcess; url: string }> {
  let url = '';
  const proc = await startOnFreePorts(async () => {
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    url = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    await rm(join(dir, 'etcd'), { recursive: true, force: true });
    const etcd = new ServerProcess('etcd', 'etcd', [
      '--name=knbot-test',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=knbot-test=${peer}`,
      '--initial-cluster-state=new',
      '--logger=zap',
      '--log-level=warn',
    ]);
    try {
      await waitUntilReady(etcd, `${url}/health`, async () => {
        const res = await fetch(`${url}/health`);
        return res.ok && ((await res.json()) as { health?: string }).health === 'true';
      }, 30_000);
    } catch (err) {
      await etcd.stop();
      throw err;
    }
    return etcd;
  });
  return { proc, url };
}

/** GET `path` with the client certificate, trusting only the test CA. */
function getStatus(url: string, path: string, tls: { ca: string; cert: string; key: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { ...tls, timeout: 5_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function startApiextensions(dir: string, etcdUrl: string, binary: string, fixed?: { port: number; prefix: string }): Promise<{ proc: ServerProcess; url: string; port: number; prefix: string }> {
  // Delegated authn/authz and the core informers need a kubeconfig to start; nothing listens at this one.
  const fake = join(dir, 'unreachable.kubeconfig');
  await writeFile(fake, dump({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'none', cluster: { server: 'http://127.1.2.3:12345' } }],
    users: [{ name: 'none', user: {} }],
    contexts: [{ name: 'none', context: { cluster: 'none', user: 'none' } }],
    'current-context': 'none',
  }));
  const tls = {
    ca: await readFile(join(dir, 'ca.crt'), 'utf8'),
    cert: await readFile(join(dir, 'client.crt'), 'utf8'),
    key: await readFile(join(dir, 'client.key'), 'utf8'),
  };
  let url = '';
  let port = 0;
  const prefix = fixed?.prefix ?? `/knbot-${randomUUID()}`;
  const proc = await startOnFreePorts(async () => {
    port = fixed?.port ?? (await freePort());
    url = `https://127.0.0.1:${port}`;
    const server = new ServerProcess('apiextensions-apiserver', binary, [
      `--etcd-servers=${etcdUrl}`,
      `--etcd-prefix=${prefix}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${port}`,
      `--tls-cert-file=${join(dir, 'server.crt')}`,
      `--tls-private-key-file=${join(dir, 'server.key')}`,
      `--client-ca-file=${join(dir, 'ca.crt')}`,
      '--authentication-skip-lookup',
      `--authentication-kubeconfig=${fake}`,
      `--authorization-kubeconfig=${fake}`,
      `--kubeconfig=${fake}`,
      '--enable-priority-and-fairness=false',
      '--disable-admission-plugins=NamespaceLifecycle,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy,MutatingAdmissionPolicy',
    ]);
    try {
      // Not /readyz: it never turns green, the core informers cannot sync against the fake kubeconfig.
      await waitUntilReady(server, `${url}/healthz`, async () => (await getStatus(url, '/healthz', tls)) === 200, 120_000);
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  });
  return { proc, url, port, prefix };
}

/**
 * Starts etcd and apiextensions-apiserver on free loopback ports, with their files in a fresh temp
 * directory. Builds the server binary first on a cache miss (see apiServerBinary): allow minutes.
 */
export async function startApiServer(): Promise<TestApiServer> {
  const missing = await missingPieces();
  if (missing.length > 0) throw new Error(`cannot start the test API server: missing ${missing.join(', ')}`);
  const binary = await apiServerBinary();

  const dir = await mkdtemp(join(tmpdir(), 'knbot-apiserver-'));
  const running: ServerProcess[] = [];
  const stop = async (): Promise<void> => {
    // The API server first: it would log etcd's disappearance at length.
    for (const proc of running.splice(0).reverse()) await proc.stop();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await makeCertificates(dir);
    const etcd = await startEtcd(dir);
    running.push(etcd.proc);
    let api = await startApiextensions(dir, etcd.url, binary);
    running.push(api.proc);
    const restart = async (): Promise<void> => {
      const i = running.indexOf(api.proc);
      await api.proc.stop();
      api = await startApiextensions(dir, etcd.url, binary, { port: api.port, prefix: api.prefix });
      running[i] = api.proc;
    };

    const base64 = async (name: string): Promise<string> => (await readFile(join(dir, name))).toString('base64');
    const kubeconfigPath = join(dir, 'kubeconfig');
    await writeFile(kubeconfigPath, dump({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'knbot-test', cluster: { server: api.url, 'certificate-authority-data': await base64('ca.crt') } }],
      users: [{
        name: 'knbot-test-admin',
        user: { 'client-certificate-data': await base64('client.crt'), 'client-key-data': await base64('client.key') },
      }],
      contexts: [{ name: 'knbot-test', context: { cluster: 'knbot-test', user: 'knbot-test-admin', namespace: 'default' } }],
      'current-context': 'knbot-test',
    }), { mode: 0o600 });
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(kubeconfigPath);
    return { url: api.url, kubeconfigPath, kubeConfig, stop, restart };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * The API server's request counter (`apiserver_request_total` on /metrics), summed over the series
 * whose labels all match `labels` (a string matches exactly, a RegExp as such), e.g.
 * `{resource: 'bots', subresource: 'status', code: '409'}`: what clients asked, as the server saw it.
 */
export async function requestCount(server: TestApiServer, labels: Record<string, string | RegExp>): Promise<number> {
  const options: RequestOptions = { timeout: 10_000 };
  await server.kubeConfig.applyToHTTPSOptions(options);
  const text = await new Promise<string>((resolve, reject) => {
    const req = request(`${server.url}/metrics`, options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
  let sum = 0;
  for (const m of text.matchAll(/^apiserver_request_total\{([^}]*)\} (\d+)$/gm)) {
    const series = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
    const matches = Object.entries(labels).every(([k, want]) => (typeof want === 'string' ? series[k] === want : want.test(series[k] ?? '')));
    if (matches) sum += Number(m[2]);
  }
  return sum;
}

/** Knative Serving's CRDs in `shared` (the ../shared folder), as knbot's Services need them. */
export function servingCrdFiles(shared: string): string[] {
  return ['service', 'configuration', 'revision', 'route'].map((kind) => join(shared, 'knative', 'serving', `${kind}.yaml`));
}

/** What the operator works with: knbot's own CRDs, Knative Serving's, and Knative's Trigger. */
export function operatorCrdFiles(shared: string): string[] {
  return [
    ...['bot', 'event', 'eventbinding'].map((kind) => join(ROOT, 'knative', 'crds', `${kind}.yaml`)),
    ...servingCrdFiles(shared),
    join(shared, 'knative', 'eventing', 'trigger.yaml'),
  ];
}

/**
 * The CRD as this server can take it: only its storage version (which must be served; `v1` in
 * Knative's), and no `spec.conversion`, since there is no conversion webhook to call
 * (shared/notes/test-apiserver.md).
 */
export function trimCrd(doc: unknown, source = 'CRD'): V1CustomResourceDefinition {
  const crd = doc as Partial<V1CustomResourceDefinition> | null;
  if (crd?.apiVersion !== 'apiextensions.k8s.io/v1' || crd.kind !== 'CustomResourceDefinition' || !crd.spec) {
    throw new Error(`${source}: not an apiextensions.k8s.io/v1 CustomResourceDefinition`);
  }
  const { conversion: _conversion, versions, ...spec } = crd.spec;
  const storage = versions.filter((v) => v.storage);
  if (storage.length !== 1 || !storage[0]?.served) {
    throw new Error(`${source}: expected one served storage version, found ${JSON.stringify(versions.map((v) => v.name))}`);
  }
  return { ...crd, spec: { ...spec, versions: storage } };
}

/** Applies each CRD (server-side apply: creates, or updates one already there) and waits until it is Established. */
async function applyCrds(kc: KubeConfig, crds: V1CustomResourceDefinition[], timeoutMs = 60_000): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const apply = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
  await Promise.all(crds.map((crd) => {
    const name = crd.metadata?.name;
    if (!name) throw new Error('a CRD without metadata.name');
    return api.patchCustomResourceDefinition({ name, body: crd, fieldManager: FIELD_MANAGER, force: true }, apply);
  }));
  const deadline = Date.now() + timeoutMs;
  for (const crd of crds) {
    const name = crd.metadata!.name!;
    for (;;) {
      const current = await api.readCustomResourceDefinition({ name });
      const conditions = current.status?.conditions ?? [];
      if (conditions.some((c) => c.type === 'Established' && c.status === 'True')) break;
      if (Date.now() > deadline) {
        throw new Error(`CRD ${name} not Established within ${timeoutMs} ms: ${JSON.stringify(conditions)}`);
      }
      await delay(50);
    }
  }
}

/**
 * Reads CRD YAML files (several documents each allowed), trims them for this server (trimCrd),
 * creates them and waits until each is Established. The server still holds the first create of
 * each kind until 2 s after establishment (customresource_handler.go, a safeguard for HA servers).
 */
export async function installCrds(kc: KubeConfig, files: string[]): Promise<void> {
  const crds: V1CustomResourceDefinition[] = [];
  for (const file of files) {
    for (const doc of loadAll(await readFile(file, 'utf8'), { schema: CORE_SCHEMA })) {
      if (doc !== null && doc !== undefined) crds.push(trimCrd(doc, file));
    }
  }
  await applyCrds(kc, crds);
}

/** The subset of coordination.k8s.io/v1 LeaseSpec that client-go's leader election reads and writes, and the rest. */
const leaseSpecSchema = {
  type: 'object',
  properties: {
    holderIdentity: { type: 'string' },
    leaseDurationSeconds: { type: 'integer', format: 'int32' },
    acquireTime: { type: 'string', format: 'date-time' },
    renewTime: { type: 'string', format: 'date-time' },
    leaseTransitions: { type: 'integer', format: 'int32' },
    strategy: { type: 'string' },
    preferredHolder: { type: 'string' },
  },
};

/**
 * Serves `leases.coordination.k8s.io/v1` as a CRD, for leader election: this server has no native
 * Leases. `*.k8s.io` groups need the API-approval annotation; "unapproved, …" is accepted (the
 * CRD then reports KubernetesAPIApprovalPolicyConformant=False, which does not matter here).
 */
export async function installLeaseCrd(kc: KubeConfig): Promise<void> {
  await applyCrds(kc, [{
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: 'leases.coordination.k8s.io',
      annotations: { 'api-approved.kubernetes.io': 'unapproved, test-only' },
    },
    spec: {
      group: 'coordination.k8s.io',
      names: { kind: 'Lease', listKind: 'LeaseList', plural: 'leases', singular: 'lease' },
      scope: 'Namespaced',
      versions: [{
        name: 'v1',
        served: true,
        storage: true,
        schema: { openAPIV3Schema: { type: 'object', properties: { spec: leaseSpecSchema } } },
      }],
    },
  }]);
}

