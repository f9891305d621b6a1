import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { dump } from 'js-yaml';
import type { Trigger } from '../eventing/model/types.ts';
import { type ListedTrigger, type ServiceClient, serviceClient } from '../knative/kube.ts';
import { botTriggerSelector } from '../knative/render/triggers.ts';
import { serviceState, splitTraffic } from '../knative/status.ts';
import { validateService } from '../knative/validate.ts';
import { UsageError, intSetting, parseArgs } from './args.ts';
import { BOT_FLAGS, type RenderedBot, botSettings, exitOnBadInput, formatObjects, renderBotDir, repeated } from './render.ts';

const USAGE = `usage:
  knbot deploy <bot-dir> [--image IMAGE | --registry REGISTRY] [--namespace NS] [--broker NAME] [--events FILE]...
                         [--no-triggers] [--timeout SECONDS] [--dry-run] [--output yaml|json]
  knbot status <bot> [--namespace NS] [--output yaml|json]
  knbot traffic <bot> (--tag NAME=PERCENT ... | --promote) [--namespace NS]
  knbot delete <bot> [--namespace NS]

deploy applies what knbot render prints, the bot's Knative Service and its Triggers, with server-side
apply (field manager knbot); deletes the bot's Triggers that it applied before and no longer renders;
waits until the Service is Ready and prints its URL, or the failing condition's reason and message.
It needs a real image (--image, --registry or $KNBOT_REGISTRY, or bot.yaml's image or registry).
--dry-run asks the API server to check everything and prints it, changing nothing; --no-triggers
applies the Service only and leaves Triggers alone (a cluster without Knative Eventing). traffic
splits a canary: each tag's percent to the latest revision, the rest to the revision serving now;
--promote sends all to the latest. delete removes the Service and the Triggers deploy applied. The
cluster is the usual one: $KUBECONFIG, ~/.kube/config, or in-cluster.`;

const NO_EVENTING = 'the cluster has no Knative Eventing Triggers (eventing.knative.dev/v1): install Knative Eventing, or deploy with --no-triggers';

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

/** A Trigger another controller owns (the operator's belong to an EventBinding): deploy leaves it alone. */
function ownedByOthers(t: ListedTrigger): boolean {
  return (t.metadata.ownerReferences ?? []).some((r) => r.controller);
}

/** The bot's Triggers on the cluster that deploy applied before and no longer renders. */
function staleTriggers(existing: ListedTrigger[], wanted: Trigger[]): ListedTrigger[] {
  const names = new Set(wanted.map((t) => t.metadata.name));
  return existing.filter((t) => !names.has(t.metadata.name) && !ownedByOthers(t));
}

export async function deployCommand(command: 'deploy' | 'status' | 'traffic' | 'delete', argv: string[], client?: ServiceClient): Promise<void> {
  if (argv.includes('--help')) return void console.log(USAGE);
  const { positionals, flags } = parseArgs(argv, [...BOT_FLAGS, 'timeout', 'output', 'tag'], ['dry-run', 'promote', 'no-triggers'], USAGE);
  const tags: Record<string, number> = {};
  // --tag may repeat: parseArgs keeps the last.
  for (const v of repeated(argv, 'tag')) {
    const m = /^([a-z][a-z0-9-]{0,62})=(\d{1,3})$/.exec(v);
    if (!m || Number(m[2]) > 100) throw new UsageError(`--tag ${v}: want NAME=PERCENT (0–100)`, USAGE);
    tags[m[1]!] = Number(m[2]);
  }
  if (positionals.length !== 1) throw new UsageError(`${command} needs exactly one ${command === 'deploy' ? 'bot directory' : 'bot name'}`, USAGE);
  const output = (flags.get('output') as string | undefined) ?? 'yaml';
  if (output !== 'yaml' && output !== 'json') throw new UsageError('--output is yaml or json', USAGE);
  const namespaceFlag = flags.get('namespace') as string | undefined;

  if (command === 'deploy') {
    const timeoutS = intSetting(flags.get('timeout'), '--timeout', 1, 3600, USAGE) ?? 300;
    let bot: RenderedBot;
    try {
      bot = renderBotDir(positionals[0]!, botSettings(argv, flags, process.env, USAGE), USAGE, false);
    } catch (e) {
      exitOnBadInput('deploy', e);
    }
    const { service, triggers } = bot;
    const problems = validateService(service);
    if (problems.length) {
      process.stderr.write(problems.map((p) => `knbot deploy: ${p.path}: ${p.message}\n`).join(''));
      process.exit(2);
    }
    process.stderr.write(bot.warnings.map((w) => `knbot deploy: warning: ${w}\n`).join(''));
    const kube = client ?? serviceClient(kubeconfig());
    const dryRun = flags.has('dry-run');
    const { name, namespace } = service.metadata;
    // Read before anything is written: without the Trigger API, nothing is applied.
    const existing = flags.has('no-triggers') ? [] : await kube.listTriggers(namespace, botTriggerSelector(name));
    if (existing === undefined) {
      process.stderr.write(`knbot deploy: ${NO_EVENTING}\n`);
      process.exit(1);
    }
    const stale = staleTriggers(existing, triggers);
    const applied = [await kube.apply(service, dryRun)];
    for (const t of triggers) {
      applied.push(await kube.applyTrigger(t, dryRun));
      if (!dryRun) process.stdout.write(`trigger ${namespace}/${t.metadata.name} applied (broker ${t.spec.broker})\n`);
    }
    for (const t of stale) {
      if (dryRun) process.stderr.write(`knbot deploy: would delete trigger ${namespace}/${t.metadata.name}, no longer rendered\n`);
      else if (await kube.deleteTrigger(namespace, t.metadata.name)) process.stdout.write(`trigger ${namespace}/${t.metadata.name} deleted, no longer rendered\n`);
    }
    if (dryRun) return void process.stdout.write(formatObjects(applied, output));
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

  const kube = client ?? serviceClient(kubeconfig());
  const name = positionals[0]!;
  const namespace = namespaceFlag ?? 'default';
  if (command === 'delete') {
    const gone = await kube.delete(namespace, name);
    process.stdout.write(gone ? `${namespace}/${name} deleted\n` : `${namespace}/${name} does not exist\n`);
    // A cluster without Knative Eventing has no Triggers to delete.
    let triggersGone = 0;
    for (const t of (await kube.listTriggers(namespace, botTriggerSelector(name))) ?? []) {
      if (!ownedByOthers(t) && (await kube.deleteTrigger(namespace, t.metadata.name))) {
        triggersGone++;
        process.stdout.write(`trigger ${namespace}/${t.metadata.name} deleted\n`);
      }
    }
    if (!gone && triggersGone === 0) process.exitCode = 1;
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
