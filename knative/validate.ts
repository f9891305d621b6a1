import { parseGoDuration } from './go-duration.ts';
import { MAX_CONTAINER_CONCURRENCY, MAX_REVISION_TIMEOUT_SECONDS } from './manifest.ts';

export interface ServiceProblem {
  path: string;
  message: string;
}

const DNS1035 = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
const AUTOSCALING = 'autoscaling.knative.dev/';
/** Ports Knative's queue-proxy and activator use (serving webhook, reservedPorts). */
const RESERVED_PORTS = new Set([8008, 8012, 8013, 8022, 8112, 9090, 9091]);
const RESERVED_ENV = new Set(['PORT', 'K_SERVICE', 'K_CONFIGURATION', 'K_REVISION']);

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});

/**
 * Knative's webhook rules for a Service (notes: knative-serving §2–§5), checked before anything is
 * applied, plus knbot's own: `target` ≤ `containerConcurrency`, readiness without `periodSeconds`
 * and no `startupProbe` (both slow the activator's probing), a hardened container securityContext.
 * Returns every problem with its path; empty when the Service is fine.
 */
export function validateService(service: unknown): ServiceProblem[] {
  const out: ServiceProblem[] = [];
  const fail = (path: string, message: string) => out.push({ path, message });
  const s = obj(service);
  const meta = obj(s.metadata);
  if (typeof meta.name !== 'string' || !DNS1035.test(meta.name)) fail('metadata.name', 'must be a DNS-1035 label of at most 63 characters');
  for (const k of Object.keys(obj(meta.annotations))) {
    if (k.startsWith(AUTOSCALING)) fail(`metadata.annotations.${k}`, 'autoscaling annotations must be put under spec.template.metadata.annotations to work');
  }
  const template = obj(obj(s.spec).template);
  const annotations = obj(obj(template.metadata).annotations);
  for (const [k, v] of Object.entries(annotations)) if (typeof v !== 'string') fail(`spec.template.metadata.annotations.${k}`, 'annotation values are strings');
  checkAutoscaling(annotations, fail);
  const spec = obj(template.spec);
  const cc = spec.containerConcurrency;
  if (cc !== undefined && (!Number.isInteger(cc) || (cc as number) < 0 || (cc as number) > MAX_CONTAINER_CONCURRENCY)) {
    fail('spec.template.spec.containerConcurrency', `expected 0 <= ${String(cc)} <= ${MAX_CONTAINER_CONCURRENCY}`);
  }
  const target = Number(annotations[`${AUTOSCALING}target`]);
  if (typeof cc === 'number' && cc > 0 && Number.isFinite(target) && target > cc) {
    fail(`spec.template.metadata.annotations.${AUTOSCALING}target`, `must not exceed containerConcurrency (${cc})`);
  }
  for (const k of ['timeoutSeconds', 'responseStartTimeoutSeconds', 'idleTimeoutSeconds']) {
    const v = spec[k];
    if (v !== undefined && (!Number.isInteger(v) || (v as number) < 0 || (v as number) > MAX_REVISION_TIMEOUT_SECONDS)) {
      fail(`spec.template.spec.${k}`, `expected 0 <= ${String(v)} <= ${MAX_REVISION_TIMEOUT_SECONDS}`);
    }
  }
  if (spec.securityContext !== undefined) fail('spec.template.spec.securityContext', 'a pod-level securityContext needs a Knative feature flag: set it on the container');
  for (const k of ['terminationGracePeriodSeconds', 'hostNetwork', 'hostPID', 'hostIPC']) if (spec[k] !== undefined) fail(`spec.template.spec.${k}`, 'must not be set');
  const containers = Array.isArray(spec.containers) ? spec.containers : [];
  if (containers.length !== 1) fail('spec.template.spec.containers', 'a bot runs exactly one container');
  containers.forEach((c, i) => checkContainer(obj(c), `spec.template.spec.containers[${i}]`, fail));
  const traffic = obj(s.spec).traffic;
  if (Array.isArray(traffic) && traffic.length) {
    const sum = traffic.reduce((a: number, t) => a + Number(obj(t).percent ?? 0), 0);
    if (sum !== 100) fail('spec.traffic', `percents must add up to 100, got ${sum}`);
  }
  return out;
}

function checkAutoscaling(a: Obj, fail: (path: string, message: string) => void): void {
  const at = (k: string) => `spec.template.metadata.annotations.${AUTOSCALING}${k}`;
  const int = (k: string) => {
    const v = a[AUTOSCALING + k];
    if (v === undefined) return undefined;
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n > 2 ** 31 - 1) return void fail(at(k), `invalid value: ${String(v)}`);
    return n;
  };
  const min = int('min-scale');
  const max = int('max-scale');
  if (min !== undefined && max !== undefined && max !== 0 && max < min) fail(at('max-scale'), `max-scale=${max} is less than min-scale=${min}`);
  const activation = int('activation-scale');
  if (activation !== undefined) {
    if (activation < 2) fail(at('activation-scale'), 'expected 2 <= activation-scale');
    if (min !== undefined && activation < min) fail(at('activation-scale'), `activation-scale=${activation} is less than min-scale=${min}`);
    if (max !== undefined && max !== 0 && activation > max) fail(at('activation-scale'), `activation-scale=${activation} is greater than max-scale=${max}`);
  }
  const initial = int('initial-scale');
  if (initial === 0) fail(at('initial-scale'), 'initial-scale=0 not allowed by cluster (allow-zero-initial-scale is off by default)');
  const metric = a[`${AUTOSCALING}metric`];
  if (metric !== undefined && metric !== 'concurrency' && metric !== 'rps') fail(at('metric'), 'the Knative Pod Autoscaler scales on concurrency or rps');
  const float = (k: string, lo: number, hi: number) => {
    const v = a[AUTOSCALING + k];
    if (v === undefined) return;
    const n = typeof v === 'string' ? Number(v) : NaN;
    if (!Number.isFinite(n) || n < lo || n > hi) fail(at(k), `expected ${lo} <= ${String(v)} <= ${hi}`);
  };
  float('target', 0.01, Number.MAX_VALUE);
  float('target-utilization-percentage', 1, 100);
  const duration = (k: string, whole: boolean) => {
    const v = a[AUTOSCALING + k];
    if (v === undefined) return;
    const secs = typeof v === 'string' ? parseGoDuration(v) : undefined;
    if (secs === undefined || secs < 0 || secs > 3600 || (whole && !Number.isInteger(secs))) fail(at(k), `must be a duration from 0s to 1h${whole ? ' in whole seconds' : ''}`);
  };
  duration('scale-down-delay', true);
  duration('scale-to-zero-pod-retention-period', false);
}

function checkContainer(c: Obj, path: string, fail: (path: string, message: string) => void): void {
  if (typeof c.image !== 'string' || c.image === '') fail(`${path}.image`, 'is required');
  const ports = Array.isArray(c.ports) ? c.ports : [];
  if (ports.length > 1) fail(`${path}.ports`, 'Knative routes to one port only');
  ports.forEach((p, i) => {
    const port = obj(p);
    if (RESERVED_PORTS.has(port.containerPort as number)) fail(`${path}.ports[${i}].containerPort`, `${String(port.containerPort)} is reserved by Knative`);
    if (port.name !== undefined && !['', 'http1', 'h2c'].includes(port.name as string)) fail(`${path}.ports[${i}].name`, 'must be "", http1 or h2c');
    if (port.hostPort !== undefined) fail(`${path}.ports[${i}].hostPort`, 'must not be set');
  });
  (Array.isArray(c.env) ? c.env : []).forEach((e, i) => {
    const name = obj(e).name as string;
    if (RESERVED_ENV.has(name)) fail(`${path}.env[${i}].name`, `${name} is set by Knative`);
  });
  if (c.lifecycle !== undefined) fail(`${path}.lifecycle`, 'must not be set (Knative adds its own preStop)');
  if (c.startupProbe !== undefined) fail(`${path}.startupProbe`, 'a startupProbe turns off the activator\'s fast probing and slows every cold start');
  const readiness = obj(c.readinessProbe);
  if (readiness.periodSeconds !== undefined) fail(`${path}.readinessProbe.periodSeconds`, 'leave it unset: queue-proxy then probes every 50 ms during a cold start');
  if (obj(readiness.httpGet).path !== '/health/readiness') fail(`${path}.readinessProbe.httpGet.path`, 'must be /health/readiness, which waits for init');
  const sc = obj(c.securityContext);
  const want: [string, unknown][] = [['runAsNonRoot', true], ['readOnlyRootFilesystem', true], ['allowPrivilegeEscalation', false]];
  for (const [k, v] of want) if (sc[k] !== v) fail(`${path}.securityContext.${k}`, `must be ${String(v)}`);
  const drop = obj(sc.capabilities).drop;
  if (!Array.isArray(drop) || !drop.includes('ALL')) fail(`${path}.securityContext.capabilities.drop`, 'must drop ALL');
  if (obj(sc.seccompProfile).type !== 'RuntimeDefault') fail(`${path}.securityContext.seccompProfile.type`, 'must be RuntimeDefault');
}
