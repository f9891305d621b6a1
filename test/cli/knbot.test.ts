import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadAll } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../shared.ts';

const run = promisify(execFile);
const NODE24 = join(ROOT, 'node_modules', '.bin', 'node');
const BIN = join(ROOT, 'cli', 'knbot.js');

async function knbot(args: string[], node = NODE24, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { KNBOT_REGISTRY: _, ...inherited } = process.env;
    const { stdout, stderr } = await run(node, [BIN, ...args], { cwd: ROOT, env: { ...inherited, PORT: '0', ...env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('the knbot command', () => {
  it('prints its version', async () => {
    const pkg = (await import('../../package.json', { with: { type: 'json' } })).default;
    expect((await knbot(['version'])).stdout.trim()).toBe(pkg.version);
  });

  it('re-runs itself under the project Node 24 when started by an older node', async () => {
    // The machine's own node (the one running this test's parent npm, often 20) starts the bin.
    const pkg = (await import('../../package.json', { with: { type: 'json' } })).default;
    const { code, stdout } = await knbot(['version'], 'node');
    expect([code, stdout.trim()]).toEqual([0, pkg.version]);
  });

  it.each([
    [['frobnicate'], /unknown command "frobnicate"/],
    [['serve'], /serve needs a bot directory \(or KNBOT_BOT_DIR\)/],
    [['serve', 'functions/echo', '--port', 'abc'], /--port must be an integer from 0 to 65535, got abc/],
    [['serve', 'functions/echo', '--nope'], /unknown option --nope/],
    [['serve', 'no/such/dir'], /no\/such\/dir is not a directory/],
  ])('knbot %j exits 2 with a usage message', async (args, message) => {
    const { code, stderr } = await knbot(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).toContain('usage: knbot');
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('names the file and field of an invalid bot.yaml', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'knbot-bad-'));
    writeFileSync(join(dir, 'bot.yaml'), 'name: Bad_Name\n');
    const { code, stderr } = await knbot(['serve', dir]);
    expect(code).toBe(2);
    expect(stderr).toContain(`${join(dir, 'bot.yaml')}: name: must be a DNS-1035 label`);
  });

  it('says what is missing when a directory has no bot module', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'knbot-empty-'));
    const { code, stderr } = await knbot(['serve', dir]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/no bot module in .*: expected index\.ts/);
  });

  it('renders a bot to the YAML of its Knative Service', async () => {
    const { code, stdout } = await knbot(['render', 'functions/echo', '--image', 'registry.local/echo:1', '--namespace', 'bots']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^apiVersion: serving\.knative\.dev\/v1\nkind: Service\n/);
    expect(stdout).toContain('namespace: bots');
    expect(stdout).toContain('image: registry.local/echo:1');
  });

  it("renders a bot's Service followed by its default Trigger, as a YAML stream", async () => {
    const { code, stdout, stderr } = await knbot(['render', 'functions/echo', '--image', 'registry.local/echo:1', '--broker', 'chat']);
    expect(code, stderr).toBe(0);
    const docs = loadAll(stdout) as any[];
    expect(docs.map((d) => `${d.apiVersion} ${d.kind} ${d.metadata.name}`)).toEqual(['serving.knative.dev/v1 Service echo', 'eventing.knative.dev/v1 Trigger echo-default']);
    expect(docs[1].spec).toMatchObject({ broker: 'chat', subscriber: { ref: { kind: 'Service', name: 'echo' } } });
    const only = await knbot(['render', 'functions/echo', '--image', 'registry.local/echo:1', '--no-triggers', '--output', 'json']);
    expect(JSON.parse(only.stdout).items.map((d: any) => d.kind)).toEqual(['Service']);
  });

  it('renders the Triggers of the Events and EventBindings given with --events', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'knbot-events-'));
    const file = join(dir, 'events.yaml');
    writeFileSync(file, `apiVersion: knbot.dev/v1alpha1
kind: Event
metadata: { name: questions, labels: { bot: echo } }
spec: { types: [dev.knbot.chat.message.received], filters: [{ cesql: "chatplatform IN ('slack', 'ws')" }] }
---
apiVersion: knbot.dev/v1alpha1
kind: EventBinding
metadata: { name: echo-questions }
spec: { botRef: { name: echo }, eventSelector: { matchLabels: { bot: echo } }, delivery: { retry: 2, backoffDelay: PT0.5S } }
`);
    const { code, stdout, stderr } = await knbot(['render', 'functions/echo', '--image', 'registry.local/echo:1', '--namespace', 'bots', '--events', file]);
    expect(code, stderr).toBe(0);
    const triggers = (loadAll(stdout) as any[]).slice(1);
    expect(triggers.map((t) => `${t.metadata.namespace}/${t.metadata.name}`)).toEqual(['bots/echo-questions']);
    expect(triggers[0].spec.filters[1]).toEqual({ all: [{ exact: { type: 'dev.knbot.chat.message.received' } }, { cesql: "chatplatform IN ('slack', 'ws')" }] });
    expect(triggers[0].spec.delivery).toEqual({ retry: 2, backoffDelay: 'PT0.5S' });

    writeFileSync(file, 'apiVersion: knbot.dev/v1alpha1\nkind: Event\nmetadata: { name: e }\nspec: { types: [""] }\n');
    const bad = await knbot(['render', 'functions/echo', '--image', 'registry.local/echo:1', '--events', file]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`knbot render: ${file}: Event/e: spec.types[0]: must not be empty`);
  });

  it("renders the Triggers of the Events and EventBindings in the bot's project, as knbot dev reads them", async () => {
    const project = mkdtempSync(join(tmpdir(), 'knbot-project-'));
    for (const bot of ['greet', 'other']) {
      mkdirSync(join(project, 'functions', bot), { recursive: true });
      writeFileSync(join(project, 'functions', bot, 'bot.yaml'), `name: ${bot}\n`);
    }
    // The Event at the project's top, greet's binding beside the bots, other's in its own directory.
    writeFileSync(join(project, 'events.yaml'), `apiVersion: knbot.dev/v1alpha1
kind: Event
metadata: { name: hello, labels: { topic: greeting } }
spec: { types: [dev.knbot.chat.message.received] }
`);
    writeFileSync(join(project, 'functions', 'bindings.yaml'), `apiVersion: knbot.dev/v1alpha1
kind: EventBinding
metadata: { name: greet-hello }
spec: { botRef: { name: greet }, eventSelector: { matchLabels: { topic: greeting } } }
`);
    writeFileSync(join(project, 'functions', 'other', 'binding.yaml'), `apiVersion: knbot.dev/v1alpha1
kind: EventBinding
metadata: { name: other-hello }
spec: { botRef: { name: other }, eventSelector: { matchLabels: { topic: greeting } } }
`);
    const names = async (dir: string) => {
      const { code, stdout, stderr } = await knbot(['render', dir, '--image', 'registry.local/x:1']);
      expect(code, stderr).toBe(0);
      return (loadAll(stdout) as any[]).slice(1).map((t) => t.metadata.name);
    };
    expect(await names(join(project, 'functions', 'greet'))).toEqual(['greet-hello']);
    expect(await names(join(project, 'functions', 'other'))).toEqual(['other-hello']);
    // Outside a functions folder the parent may be any folder: only the bot directory's own files count.
    const loose = mkdtempSync(join(tmpdir(), 'knbot-loose-'));
    mkdirSync(join(loose, 'greet'));
    writeFileSync(join(loose, 'greet', 'bot.yaml'), 'name: greet\n');
    writeFileSync(join(loose, 'bindings.yaml'), readFileSync(join(project, 'functions', 'bindings.yaml')));
    expect(await names(join(loose, 'greet'))).toEqual(['greet-default']);
  });

  it("hangs the Triggers on bot.yaml's bot.broker, unless --broker names another", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'knbot-broker-'));
    writeFileSync(join(dir, 'bot.yaml'), 'name: greet\nbot:\n  broker: chat\n');
    const brokers = async (...flags: string[]) => {
      const { code, stdout, stderr } = await knbot(['render', dir, '--image', 'registry.local/greet:1', ...flags]);
      expect(code, stderr).toBe(0);
      return (loadAll(stdout) as any[]).slice(1).map((t) => t.spec.broker);
    };
    expect(await brokers()).toEqual(['chat']);
    expect(await brokers('--broker', 'other')).toEqual(['other']);
    writeFileSync(join(dir, 'bot.yaml'), 'name: greet\nbot:\n  broker: Not_A_Name\n');
    const bad = await knbot(['render', dir, '--image', 'registry.local/greet:1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`${join(dir, 'bot.yaml')}: bot.broker: must be a Broker's name, a DNS-1123 label`);
  });

  it('renders a bot with no image with a placeholder that cannot be pulled, and says how to set one', async () => {
    const { code, stdout, stderr } = await knbot(['render', 'functions/echo']);
    expect(code).toBe(0);
    expect(stdout).toContain('image: image-not-set.invalid/echo:latest');
    expect(stderr).toMatch(/knbot render: warning: echo has no image, .*cannot be pulled: give --image or --registry \(or set \$KNBOT_REGISTRY\)/);
  });

  it.each([
    [['--registry', 'registry.example/team'], {}, 'registry.example/team/echo:latest'],
    [[], { KNBOT_REGISTRY: 'env.example' }, 'env.example/echo:latest'],
    [['--registry', 'flag.example'], { KNBOT_REGISTRY: 'env.example' }, 'flag.example/echo:latest'],
  ])('names the image in a registry: knbot render %j with %j', async (flags, env, image) => {
    const { code, stdout, stderr } = await knbot(['render', 'functions/echo', ...flags], NODE24, env);
    expect([code, stderr]).toEqual([0, '']);
    expect(stdout).toContain(`image: ${image}\n`);
  });

  it('refuses to deploy a bot with no image, before it looks for a cluster', async () => {
    const { code, stdout, stderr } = await knbot(['deploy', 'functions/echo'], NODE24, { KUBECONFIG: join(tmpdir(), 'no-such-kubeconfig') });
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe(`knbot deploy: echo has no image: give --image or --registry (or set $KNBOT_REGISTRY), or set image or registry in ${join(ROOT, 'functions/echo/bot.yaml')}\n`);
  });

  it('refuses to render an invalid manifest, naming the file, the field and the rule', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'knbot-render-'));
    writeFileSync(join(dir, 'bot.yaml'), 'name: bad\nimage: r/x:1\nbot:\n  containerConcurrency: 5000\n');
    const { code, stderr } = await knbot(['render', dir]);
    expect(code).toBe(2);
    expect(stderr).toContain(`${join(dir, 'bot.yaml')}: bot.containerConcurrency: must be an integer from 0 to 1000`);
  });
});
