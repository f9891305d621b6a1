import { type BotManifest, MAX_REVISION_TIMEOUT_SECONDS } from '../manifest.ts';

/** A Knative `serving.knative.dev/v1` Service, as knbot renders it. */
export interface KnativeService {
  apiVersion: 'serving.knative.dev/v1';
  kind: 'Service';
  metadata: { name: string; namespace: string; labels: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    template: {
      metadata: { labels: Record<string, string>; annotations: Record<string, string> };
      spec: {
        containerConcurrency?: number;
        timeoutSeconds?: number;
        responseStartTimeoutSeconds?: number;
        idleTimeoutSeconds?: number;
        containers: Container[];
      };
    };
    traffic?: { latestRevision?: boolean; revisionName?: string; percent: number; tag?: string }[];
  };
}

export interface Container {
  name: string;
  image: string;
  ports: { containerPort: number; name?: string }[];
  env?: { name: string; value: string }[];
  readinessProbe: { httpGet: { path: string } };
  livenessProbe: { httpGet: { path: string } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: Record<string, unknown>;
}

export interface RenderOptions {
  /** The image to run; else the manifest's `image`, else `<registry>/<name>:latest`. */
  image?: string;
  /** The registry an image is named in when neither `image` nor the manifest's names one; else the manifest's `registry`. */
  registry?: string;
  namespace?: string;
}

export class RenderError extends Error {
  readonly code = 'render_failed';
}

/** The port `knbot serve` listens on in the image (Knative passes it as $PORT too). */
export const CONTAINER_PORT = 8080;
const AUTOSCALING = 'autoscaling.knative.dev/';

/**
 * The Knative Service of a bot (DESIGN §10): autoscaling on the revision template as strings,
 * readiness on /health/readiness without periodSeconds (so the activator probes fast), no startup
 * probe, one port, a non-root read-only container without privileges. WebSocket bots get the whole
 * revision timeout and no response-start or idle timeout (Knative would otherwise close sockets).
 * Pure: the same manifest always renders the same Service.
 */
export function renderService(m: BotManifest, options: RenderOptions = {}): KnativeService {
  const image = botImage(m, options);
  if (!image) throw new RenderError(`${m.name}: no image: give --image or --registry, or set image or registry in bot.yaml`);
  const namespace = options.namespace ?? m.deploy.namespace ?? m.namespace ?? 'default';
  const { scale } = m.deploy;
  const template: Record<string, string> = {};
  const service: Record<string, string> = {};
  // Knative rejects autoscaling annotations on the Service's metadata (serving webhook): they go on the template.
  for (const [k, v] of Object.entries(m.deploy.annotations)) (k.startsWith(AUTOSCALING) ? template : service)[k] = v;
  const set = (key: string, value: number | string | undefined) => {
    if (value !== undefined) template[AUTOSCALING + key] = String(value);
  };
  set('min-scale', scale.min);
  set('max-scale', scale.max);
  set('metric', scale.metric);
  set('target', scale.target);
  set('target-utilization-percentage', scale.utilization);
  set('scale-down-delay', m.bot.scaleDownDelay);
  set('scale-to-zero-pod-retention-period', m.bot.scaleToZeroRetention);
  set('initial-scale', m.bot.initialScale);
  set('activation-scale', m.bot.activationScale);

  const labels = { ...m.deploy.labels, 'app.kubernetes.io/name': m.name, 'app.kubernetes.io/managed-by': 'knbot', 'knbot.dev/bot': m.name };
  const concurrency = m.bot.containerConcurrency ?? limitConcurrency(m);
  const spec: KnativeService['spec']['template']['spec'] = {
    ...(concurrency !== undefined ? { containerConcurrency: concurrency } : {}),
    ...(m.bot.timeoutSeconds !== undefined || m.bot.websocket ? { timeoutSeconds: m.bot.timeoutSeconds ?? MAX_REVISION_TIMEOUT_SECONDS } : {}),
    ...(m.bot.responseStartTimeoutSeconds !== undefined || m.bot.websocket ? { responseStartTimeoutSeconds: m.bot.responseStartTimeoutSeconds ?? 0 } : {}),
    ...(m.bot.idleTimeoutSeconds !== undefined || m.bot.websocket ? { idleTimeoutSeconds: m.bot.idleTimeoutSeconds ?? 0 } : {}),
    containers: [container(m, image)],
  };
  return {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: { name: m.name, namespace, labels, ...(Object.keys(service).length ? { annotations: service } : {}) },
    spec: { template: { metadata: { labels: { 'app.kubernetes.io/name': m.name, 'knbot.dev/bot': m.name }, annotations: template }, spec } },
  };
}

/**
 * The image a bot runs, as Knative func picks it: the one given, else the manifest's `image`, else
 * `<registry>/<name>:latest` from the registry given or the manifest's. Undefined when there is none.
 */
export function botImage(m: BotManifest, options: Pick<RenderOptions, 'image' | 'registry'> = {}): string | undefined {
  const registry = (options.registry ?? m.registry)?.replace(/\/+$/, '');
  return options.image ?? m.image ?? (registry ? `${registry}/${m.name}:latest` : undefined);
}

/**
 * What `knbot render` shows when a bot has no image yet. `.invalid` is reserved and never resolves
 * (RFC 2606), so a manifest applied with it fails to pull instead of running someone else's image.
 */
export function placeholderImage(name: string): string {
  return `image-not-set.invalid/${name}:latest`;
}

/** func's `deploy.options.resources.limits.concurrency` is its containerConcurrency. */
function limitConcurrency(m: BotManifest): number | undefined {
  const v = m.deploy.resources.limits.concurrency;
  return v === undefined ? undefined : Number(v);
}

function container(m: BotManifest, image: string): Container {
  const { cpu: reqCpu, memory: reqMem } = m.deploy.resources.requests;
  const { cpu: limCpu, memory: limMem } = m.deploy.resources.limits;
  const requests = { ...(reqCpu ? { cpu: reqCpu } : {}), ...(reqMem ? { memory: reqMem } : {}) };
  const limits = { ...(limCpu ? { cpu: limCpu } : {}), ...(limMem ? { memory: limMem } : {}) };
  const hasResources = Object.keys(requests).length > 0 || Object.keys(limits).length > 0;
  return {
    name: 'bot',
    image,
    ports: [{ containerPort: CONTAINER_PORT, name: 'http1' }],
    ...(m.run.envs.length ? { env: m.run.envs.map((e) => ({ name: e.name, value: e.value })) } : {}),
    readinessProbe: { httpGet: { path: '/health/readiness' } },
    livenessProbe: { httpGet: { path: '/health/liveness' } },
    ...(hasResources ? { resources: { ...(Object.keys(requests).length ? { requests } : {}), ...(Object.keys(limits).length ? { limits } : {}) } } : {}),
    // Pod-level securityContext needs a Knative feature flag; the container's own carries the hardening.
    securityContext: {
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    },
  };
}
