import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../shared.ts';

const run = promisify(execFile);
const NODE24 = join(ROOT, 'node_modules', '.bin', 'node');
const BIN = join(ROOT, 'cli', 'knbot.js');

async function knbot(args: string[], node = NODE24): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(node, [BIN, ...args], { cwd: ROOT, env: { ...process.env, PORT: '0' } });
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

  it('refuses to render an invalid manifest, naming the file, the field and the rule', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'knbot-render-'));
    writeFileSync(join(dir, 'bot.yaml'), 'name: bad\nimage: r/x:1\nbot:\n  containerConcurrency: 5000\n');
    const { code, stderr } = await knbot(['render', dir]);
    expect(code).toBe(2);
    expect(stderr).toContain(`${join(dir, 'bot.yaml')}: bot.containerConcurrency: must be an integer from 0 to 1000`);
  });
});
