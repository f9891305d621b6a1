import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { dump } from 'js-yaml';
import { type ServiceClient, serviceClient } from '../knative/kube.ts';
import { ManifestValidationError, parseManifest } from '../knative/manifest.ts';
import { RenderError, renderService } from '../knative/render/service.ts';
import { serviceState, splitTraffic } from '../knative/status.ts';
import { validateService } from '../knative/validate.ts';
import { UsageError, intSetting, parseArgs } from './args.ts';

const USAGE = `usage:
  knbot deploy <bot-dir> [--image IMAGE] [--namespace NS] [--timeout SECONDS] [--dry-run] [--output yaml|json]
  knbot status <bot> [--namespace NS] [--output yaml|json]
  knbot traffic <bot> (--tag NAME=PERCENT ... | --promote) [--namespace NS]
  knbot delete <bot> [--namespace NS]

deploy applies the bot's Knative Service with server-side apply (field manager knbot), waits until it is
Ready and prints its URL, or the failing condition's reason and message. traffic splits a canary: each
tag's percent to the latest revision, the rest to the revision serving now; --promote sends all to the
latest. The cluster is the usual one: $KUBECONFIG, ~/.kube/config, or in-cluster.`;

function kubeconfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  return kc;
}

function say(output: string, value: unknown): void {
  process.stdout.write(output === 'json' ? `${JSON.stringify(value, null, 2)}\n` : dump(value, { noRefs: true, lineWidth: -1 }));
}

/** Waits for Ready (or a failure) of the generation just applied, polling; undefined on timeout. */
async function waitReady(client: ServiceClient, namespace: string, name: string, timeoutMs: number) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const state = serviceState(await client.get(namespace, name));
    if (state.state !== 'pending') return state;
    if (Date.now() > until) return undefined;
    await sleep(500);
  }
}

export async function deployCommand(command: 'deploy' | 'status' | 'traffic' | 'delete', argv: string[], client?: ServiceClient): Promise<void> {
  if (argv.includes('--help')) return void console.log(USAGE);
  const { positionals, flags } = parseArgs(argv, ['image', 'namespace', 'timeout', 'output', 'tag'], ['dry-run', 'promote'], USAGE);
  const tags: Record<string, number> = {};
  // --tag may repeat: parseArgs keeps the last, so read them from argv.
  argv.forEach((a, i) => {
    const v = a === '--tag' ? argv[i + 1] : a.startsWith('--tag=') ? a.slice(6) : undefined;
    if (v === undefined) return;
    const m = /^([a-z][a-z0-9-]{0,62})=(\d{1,3})$/.exec(v);
    if (!m || Number(m[2]) > 100) throw new UsageError(`--tag ${v}: want NAME=PERCENT (0–100)`, USAGE);
    tags[m[1]!] = Number(m[2]);
  });
  if (positionals.length !== 1) throw new UsageError(`${command} needs exactly one ${command === 'deploy' ? 'bot directory' : 'bot name'}`, USAGE);
  const output = (flags.get('output') as string | undefined) ?? 'yaml';
  if (output !== 'yaml' && output !== 'json') throw new UsageError('--output is yaml or json', USAGE);
  const namespaceFlag = flags.get('namespace') as string | undefined;
  const kube = client ?? serviceClient(kubeconfig());

  if (command === 'deploy') {
    const dir = resolve(positionals[0]!);
    const file = ['bot.yaml', 'func.yaml'].map((f) => join(dir, f)).find((f) => existsSync(f));
    if (!file) throw new UsageError(`${positionals[0]} has no bot.yaml (or func.yaml)`, USAGE);
    const timeoutS = intSetting(flags.get('timeout'), '--timeout', 1, 3600, USAGE) ?? 300;
    let service;
    try {
      const image = flags.get('image') as string | undefined;
      service = renderService(parseManifest(readFileSync(file, 'utf8'), file), { ...(image ? { image } : {}), ...(namespaceFlag ? { namespace: namespaceFlag } : {}) });
    } catch (e) {
      if (e instanceof ManifestValidationError || e instanceof RenderError) {
        process.stderr.write(`knbot deploy: ${e.message.split('\n').join('\nknbot deploy: ')}\n`);
        process.exit(2);
      }
      throw e;
    }
    const problems = validateService(service);
    if (problems.length) {
      process.stderr.write(problems.map((p) => `knbot deploy: ${p.path}: ${p.message}\n`).join(''));
      process.exit(2);
    }
    const applied = await kube.apply(service, flags.has('dry-run'));
    if (flags.has('dry-run')) return say(output, applied);
    const { name, namespace } = service.metadata;
    const state = await waitReady(kube, namespace, name, timeoutS * 1000);
    if (!state) {
      process.stderr.write(`knbot deploy: ${namespace}/${name} was not Ready within ${timeoutS} s\n`);
      process.exit(1);
    }
    if (state.state === 'failed') {
      process.stderr.write(`knbot deploy: ${namespace}/${name} failed: ${state.reason ?? 'Ready=False'}: ${state.message ?? ''}\n`);
      process.exit(1);
    }
    process.stdout.write(`${namespace}/${name} is ready at ${state.url ?? '(no URL yet)'} (revision ${state.latestReadyRevision ?? '?'})\n`);
    return;
  }

  const name = positionals[0]!;
  const namespace = namespaceFlag ?? 'default';
  if (command === 'delete') {
    const gone = await kube.delete(namespace, name);
    process.stdout.write(gone ? `${namespace}/${name} deleted\n` : `${namespace}/${name} does not exist\n`);
    if (!gone) process.exitCode = 1;
    return;
  }
  const current = await kube.get(namespace, name);
  if (current === undefined) {
    process.stderr.write(`knbot ${command}: ${namespace}/${name} does not exist\n`);
    process.exit(1);
  }
  const state = serviceState(current);
  if (command === 'status') return say(output, { name, namespace, ...state });
  if (!flags.has('promote') && Object.keys(tags).length === 0) throw new UsageError('traffic needs --tag NAME=PERCENT or --promote', USAGE);
  let traffic;
  try {
    traffic = splitTraffic(state, tags, flags.has('promote'));
  } catch (e) {
    throw new UsageError((e as Error).message, USAGE);
  }
  await kube.setTraffic(namespace, name, traffic);
  say(output, { name, namespace, traffic });
}
