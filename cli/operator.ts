import { KubeConfig } from '@kubernetes/client-node';
import { Controller } from '../knative/operator/controller.ts';
import { UsageError, intSetting, parseArgs } from './args.ts';

const USAGE = `usage: knbot operator [--workers N] [--function-image TEMPLATE]

Reconciles Bots into Knative Services and EventBindings into Knative Triggers, on the cluster of
$KUBECONFIG, ~/.kube/config, or in-cluster. --function-image gives the image of a Bot that names a
function instead of an image ({function} is replaced).`;

export async function operatorCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(USAGE);
  const { positionals, flags } = parseArgs(argv, ['workers', 'function-image'], [], USAGE);
  if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`, USAGE);
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const functionImage = flags.get('function-image');
  const controller = new Controller(kc, {
    workers: intSetting(flags.get('workers'), '--workers', 1, 64, USAGE) ?? 4,
    ...(typeof functionImage === 'string' ? { functionImage } : {}),
    log: (msg, fields) => process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', msg, ...fields })}\n`),
  });
  await controller.start();
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', msg: 'operator started' })}\n`);
  const stop = () => void controller.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
