import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import { processRegistry } from '../eventing/metrics.ts';
import { Controller } from '../knative/operator/controller.ts';
import { OperatorHttpServer } from '../knative/operator/http-server.ts';
import { LeaderElector } from '../knative/operator/leader-election.ts';
import { OperatorMetrics } from '../knative/operator/metrics.ts';
import { UsageError, exitOnSignals, intSetting, parseArgs } from './args.ts';

const USAGE = `usage: knbot operator [--workers N] [--function-image TEMPLATE] [--no-leader-elect]
                      [--lease-namespace NS] [--lease-duration SECONDS] [--metrics-port N]

Reconciles Bots into Knative Services and EventBindings into Knative Triggers, on the cluster of
$KUBECONFIG, ~/.kube/config, or in-cluster. --function-image gives the image of a Bot that names a
function instead of an image ({function} is replaced). Replicas elect a leader through the Lease
knbot-operator (in --lease-namespace, default $POD_NAMESPACE or knbot-system); only the leader
reconciles, and a leader that loses its Lease exits so that it restarts as a candidate.

--metrics-port N (default 8080; 0 picks a free one) serves GET /metrics (reconciles, their durations,
work queue depth, API writes, leadership, Node's process metrics), /healthz and /readyz (ready once
the informers have synced, and while waiting for leadership).`;

export async function operatorCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(USAGE);
  const { positionals, flags } = parseArgs(argv, ['workers', 'function-image', 'lease-namespace', 'lease-duration', 'metrics-port'], ['no-leader-elect'], USAGE);
  if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`, USAGE);
  const metricsPort = intSetting(flags.get('metrics-port'), '--metrics-port', 0, 65535, USAGE) ?? 8080;
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const functionImage = flags.get('function-image');
  const log = (msg: string, fields?: Record<string, unknown>) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', msg, ...fields })}\n`);
  const metrics = new OperatorMetrics(processRegistry());
  const controller = new Controller(kc, {
    workers: intSetting(flags.get('workers'), '--workers', 1, 64, USAGE) ?? 4,
    ...(typeof functionImage === 'string' ? { functionImage } : {}),
    metrics,
    log,
  });
  let started = false;
  let stopping = false;
  let elector: LeaderElector | undefined;
  metrics.leading = () => (elector ? elector.leading : started);
  // A candidate waiting for leadership is ready: it is what takes over.
  const probes = new OperatorHttpServer({ registry: metrics.registry, ready: () => !stopping && (started || !!(elector && !elector.leading)) });
  let boundPort: number;
  try {
    boundPort = await probes.listen(metricsPort, '0.0.0.0');
  } catch (err) {
    throw new UsageError(`--metrics-port ${metricsPort}: ${(err as Error).message}`, USAGE);
  }
  log('metrics listening', { port: boundPort });
  const run = async () => {
    await controller.start();
    started = true;
    log('operator started');
  };
  if (flags.has('no-leader-elect')) await run();
  else {
    const leaseNamespace = (flags.get('lease-namespace') as string | undefined) ?? process.env.POD_NAMESPACE ?? 'knbot-system';
    elector = new LeaderElector(kc, {
      namespace: leaseNamespace,
      name: 'knbot-operator',
      identity: `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
      leaseDurationSeconds: intSetting(flags.get('lease-duration'), '--lease-duration', 1, 3600, USAGE) ?? 15,
      retryPeriodMs: Math.min(2000, ((intSetting(flags.get('lease-duration'), '--lease-duration', 1, 3600, USAGE) ?? 15) * 1000) / 4),
      onStartedLeading: run,
      onStoppedLeading: () => {
        log('lost leadership, exiting');
        process.exit(1);
      },
      log,
    });
    elector.start();
    log('waiting for leadership', { lease: `${leaseNamespace}/knbot-operator` });
  }
  exitOnSignals(async () => {
    stopping = true;
    elector?.stop();
    await controller.stop();
    await probes.close();
  });
}
