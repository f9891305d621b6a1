// Known Knative Serving verdicts (shared/notes/knative-serving.md §2–§5), asked of the oracle that runs
// Knative's own Go code. If these fail, the oracle is wrong, not knbot.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isValidated, servingOracleAvailable, startServingOracle } from '../oracle-serving.ts';
import type {
  BadRequestResponse,
  ServingDecodeErrorResponse,
  ServingOracle,
  ServingOracleResponse,
  ServingValidateRequest,
  ServingValidateResponse,
} from '../oracle-serving.ts';

// Only whether go and ../shared exist is decided here; the (possibly long) build runs in beforeAll.
const available = await servingOracleAvailable();

const IMAGE = 'registry.example.com/bots/acme@sha256:' + '0'.repeat(64);

interface ServiceOptions {
  name?: string;
  annotations?: Record<string, string>;
  templateAnnotations?: Record<string, string>;
  /** Merged into the template's `spec`. */
  spec?: Record<string, unknown>;
  /** Merged into the only container. */
  container?: Record<string, unknown>;
}

/** A minimal bot Service, with the parts a case changes. */
function service(o: ServiceOptions = {}): Record<string, unknown> {
  return {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: { name: o.name ?? 'bot-acme', namespace: 'bots', ...(o.annotations && { annotations: o.annotations }) },
    spec: {
      template: {
        ...(o.templateAnnotations && { metadata: { annotations: o.templateAnnotations } }),
        spec: { containers: [{ name: 'bot', image: IMAGE, ...o.container }], ...o.spec },
      },
    },
  };
}

describe.skipIf(!available)('Knative serving oracle', () => {
  let knative: ServingOracle | undefined;

  beforeAll(async () => {
    // The first build downloads Knative's modules and compiles them: minutes on a fresh machine.
    knative = await startServingOracle();
    if (!knative) throw new Error('go and ../shared were there, yet the oracle did not start');
  }, 600_000);

  afterAll(async () => {
    await knative?.close();
  });

  async function validate(object: unknown, extra: Partial<ServingValidateRequest> = {}): Promise<ServingValidateResponse> {
    const [response] = await knative!.ask([{ id: 'only', op: 'validate', object, ...extra }]);
    if (!response || !isValidated(response)) throw new Error(`not validated: ${JSON.stringify(response)}`);
    return response;
  }

  it('passes a minimal Service and shows the defaults', async () => {
    const { errors, defaulted } = await validate(service());
    expect(errors).toEqual([]);
    expect(defaulted).toMatchObject({
      spec: {
        template: {
          spec: {
            containerConcurrency: 0,
            timeoutSeconds: 300,
            enableServiceLinks: false,
            containers: [{ name: 'bot', readinessProbe: { tcpSocket: { port: 0 }, successThreshold: 1 } }],
          },
        },
        traffic: [{ latestRevision: true, percent: 100 }],
      },
    });
  });

  it('names an unnamed container user-container', async () => {
    const object = service();
    const containers = (object.spec as { template: { spec: { containers: Record<string, unknown>[] } } }).template.spec.containers;
    delete containers[0]!.name;
    const { errors, defaulted } = await validate(object);
    expect(errors).toEqual([]);
    expect(defaulted).toMatchObject({ spec: { template: { spec: { containers: [{ name: 'user-container' }] } } } });
  });

  it('rejects an autoscaling annotation on the Service metadata', async () => {
    const { errors } = await validate(service({ annotations: { 'autoscaling.knative.dev/min-scale': '1' } }));
    expect(errors).toEqual([
      {
        path: 'metadata.annotations',
        message: 'invalid key name "autoscaling.knative.dev/min-scale"',
        details: 'autoscaling annotations must be put under "spec.template.metadata.annotations" to work',
      },
    ]);
  });

  it('accepts the same annotation on the template', async () => {
    const { errors } = await validate(service({ templateAnnotations: { 'autoscaling.knative.dev/min-scale': '1' } }));
    expect(errors).toEqual([]);
  });

  it('rejects min-scale above max-scale', async () => {
    const { errors } = await validate(
      service({ templateAnnotations: { 'autoscaling.knative.dev/min-scale': '3', 'autoscaling.knative.dev/max-scale': '2' } }),
    );
    const message = 'max-scale=2 is less than min-scale=3';
    expect(errors).toEqual([
      { path: 'spec.template.metadata.annotations.autoscaling.knative.dev/max-scale', message },
      { path: 'spec.template.metadata.annotations.autoscaling.knative.dev/min-scale', message },
    ]);
  });

  it('rejects containerConcurrency over container-concurrency-max-limit (1000)', async () => {
    const [over, max] = await Promise.all([
      validate(service({ spec: { containerConcurrency: 1001 } })),
      validate(service({ spec: { containerConcurrency: 1000 } })),
    ]);
    expect(over.errors).toEqual([{ path: 'spec.template.spec.containerConcurrency', message: 'expected 0 <= 1001 <= 1000' }]);
    expect(max.errors).toEqual([]);
  });

  it.each([8012, 8013, 8022, 9090, 9091, 8008])('rejects the reserved port %i', async (port) => {
    const { errors } = await validate(service({ container: { ports: [{ containerPort: port }] } }));
    expect(errors).toEqual([
      {
        path: 'spec.template.spec.containers[0].ports.containerPort',
        message: `invalid value: ${port} is a reserved port`,
        details: `${port} is a reserved port, please use a different value`,
      },
    ]);
  });

  it.each(['PORT', 'K_SERVICE', 'K_CONFIGURATION', 'K_REVISION'])('rejects the reserved env name %s', async (name) => {
    const { errors } = await validate(service({ container: { env: [{ name, value: 'x' }] } }));
    expect(errors).toEqual([
      { path: 'spec.template.spec.containers[0].env[0].name', message: `"${name}" is a reserved environment variable` },
    ]);
  });

  it('rejects two ports', async () => {
    const { errors } = await validate(
      service({ container: { ports: [{ containerPort: 8080 }, { containerPort: 8081 }] } }),
    );
    expect(errors).toEqual([
      {
        path: 'spec.template.spec.containers[*].ports',
        message: 'more than one container port is set',
        details: 'Only a single port is allowed across all containers',
      },
    ]);
  });

  it('rejects timeoutSeconds over max-revision-timeout-seconds (600)', async () => {
    const [over, max] = await Promise.all([
      validate(service({ spec: { timeoutSeconds: 601 } })),
      validate(service({ spec: { timeoutSeconds: 600 } })),
    ]);
    expect(over.errors).toEqual([{ path: 'spec.template.spec.timeoutSeconds', message: 'expected 0 <= 601 <= 600' }]);
    expect(max.errors).toEqual([]);
    // Notes §3: responseStartTimeoutSeconds is defaulted to 300 when timeoutSeconds is above it.
    expect(max.defaulted).toMatchObject({ spec: { template: { spec: { responseStartTimeoutSeconds: 300 } } } });
  });

  it.each(['Bot-Acme', 'bot_acme', '1bot', 'bot-', 'b'.repeat(64)])('rejects the name %j (not DNS-1035)', async (name) => {
    const { errors } = await validate(service({ name }));
    expect(errors.map((e) => e.path)).toEqual(['metadata.name']);
    expect(errors[0]!.message).toMatch(/^not a DNS 1035 label/);
  });

  it('rejects a pod-level securityContext field by default, accepts it behind its feature flag', async () => {
    const object = service({ spec: { securityContext: { runAsUser: 1000 } } });
    const [byDefault, flagged] = await Promise.all([
      validate(object),
      validate(object, { config: { 'config-features': { 'kubernetes.podspec-securitycontext': 'enabled' } } }),
    ]);
    expect(byDefault.errors).toEqual([
      { path: 'spec.template.spec.securityContext', message: 'must not set the field(s)' },
      { path: 'spec.template.spec.securityContext.runAsUser', message: 'must not set the field(s)' },
    ]);
    expect(flagged.errors).toEqual([]);
  });

  it('accepts a target above containerConcurrency (Knative does not reject it; knbot does)', async () => {
    const { errors } = await validate(
      service({ templateAnnotations: { 'autoscaling.knative.dev/target': '50' }, spec: { containerConcurrency: 10 } }),
    );
    expect(errors).toEqual([]);
  });

  it('reports the insecure-default warnings apart from the errors', async () => {
    const { errors, warnings } = await validate(service());
    expect(errors).toEqual([]);
    expect(warnings.map((w) => w.path)).toContain('spec.template.spec.containers[0].securityContext.runAsNonRoot');
  });

  it('records the requesting user as the webhook does', async () => {
    const { defaulted } = await validate(service(), { user: 'alice' });
    expect(defaulted).toMatchObject({
      metadata: { annotations: { 'serving.knative.dev/creator': 'alice', 'serving.knative.dev/lastModifier': 'alice' } },
    });
  });

  it('answers an object that does not decode with decodeError', async () => {
    const [response] = await knative!.ask<ServingDecodeErrorResponse>([
      { id: 'd', op: 'validate', object: service({ spec: { containerConcurrency: '10' } }) },
    ]);
    expect(response!.id).toBe('d');
    expect(response!.decodeError).toMatch(/cannot unmarshal string .*containerConcurrency/);
  });

  it('answers a malformed line with error and goes on', async () => {
    const responses = await knative!.ask<ServingOracleResponse>([
      { id: 'a', op: 'validate', object: service() },
      { id: 'b', op: 'nope' },
      { id: 'c', op: 'validate', object: service(), typo: 1 },
      { id: 'd', op: 'validate', object: service(), config: { 'config-nope': {} } },
      { id: 'e', op: 'validate', object: service({ name: 'Bad' }) },
    ]);
    expect(responses.map((r) => r.id)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(isValidated(responses[0]!) && responses[0].errors).toEqual([]);
    expect((responses[1] as BadRequestResponse).error).toBe('unknown op "nope"');
    expect((responses[2] as BadRequestResponse).error).toMatch(/^malformed request: .*unknown field "typo"/);
    expect((responses[3] as BadRequestResponse).error).toMatch(/unknown ConfigMap/);
    expect(isValidated(responses[4]!) && responses[4].errors.map((e) => e.path)).toEqual(['metadata.name']);
  });

  it('answers a batch of 5000 in order', async () => {
    const requests = Array.from({ length: 5000 }, (_, i) => ({
      id: `n${i}`,
      op: 'validate',
      object: service({ spec: { containerConcurrency: i % 2 === 0 ? 10 : 5000 } }),
    }));
    const responses = await knative!.ask<ServingValidateResponse>(requests);
    expect(responses.map((r) => r.id)).toEqual(requests.map((r) => r.id));
    expect(responses.map((r) => r.errors.length)).toEqual(requests.map((_, i) => (i % 2 === 0 ? 0 : 1)));
  }, 60_000);
});
