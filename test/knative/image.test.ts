// The container image, built from the real Dockerfile with podman and run the way Knative runs it:
// read-only root, a non-root numeric user, explicit ulimits. No registry is reachable, so the base
// image the Dockerfile names is made here first: the project's Node 24 binary, npm, and the Debian
// libraries they link, imported under that exact name.
import { execFile, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatHeaders, freePort, waitFor } from '../pod.ts';
import { ROOT } from '../shared.ts';

const run = promisify(execFile);
const podman = spawnSync('podman', ['--version']).status === 0;
if (!podman && process.env.CI === 'true') throw new Error('podman is missing: .ci/run installs it (apt-get install podman runc)');
if (!podman) console.warn('skipping the image test: podman is not installed');

const BASE = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').match(/^ARG NODE_IMAGE=(\S+)$/m)![1]!;
const TAG = 'localhost/knbot-echo:test';
const PODMAN = ['--runtime', 'runc'];
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
// Containers here may not raise limits past the sandbox's own: set them explicitly.
const ULIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

/** Makes the stand-in base image: Node 24, npm, /bin/sh, their libraries, a `node` user (1000). */
async function makeBase(): Promise<void> {
  if (spawnSync('podman', ['image', 'exists', BASE]).status === 0) return;
  const root = mkdtempSync(join(tmpdir(), 'knbot-base-'));
  try {
    for (const d of ['usr/bin', 'usr/lib', 'usr/lib64', 'usr/local/bin', 'usr/local/lib/node_modules', 'etc', 'tmp', 'home/node', 'root']) mkdirSync(join(root, d), { recursive: true });
    for (const [link, target] of [['bin', 'usr/bin'], ['lib', 'usr/lib'], ['lib64', 'usr/lib64']] as const) symlinkSync(target, join(root, link));
    const node = join(root, 'usr/local/bin/node');
    cpSync(join(ROOT, 'node_modules/node/bin/node'), node);
    await run('strip', [node]).catch(() => undefined);
    cpSync('/usr/bin/dash', join(root, 'usr/bin/sh'));
    // npm's launcher starts with `#!/usr/bin/env node`.
    cpSync('/usr/bin/env', join(root, 'usr/bin/env'));
    const npmDir = dirname(dirname(realpathSync((await run('sh', ['-c', 'command -v npm'])).stdout.trim())));
    cpSync(npmDir, join(root, 'usr/local/lib/node_modules/npm'), { recursive: true });
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm'));
    for (const bin of [node, '/usr/bin/dash', '/usr/bin/env']) {
      for (const m of (await run('ldd', [bin])).stdout.matchAll(/(\/\S+\.so[^\s]*)/g)) {
        const lib = m[1]!;
        const real = (await run('readlink', ['-f', lib])).stdout.trim();
        const dest = join(root, 'usr', lib.replace(/^\/(usr\/)?/, ''));
        mkdirSync(dirname(dest), { recursive: true });
        if (!existsSync(dest)) cpSync(real, dest);
      }
    }
    // The machine's trust store, so that npm inside the build trusts what npm outside it trusts.
    mkdirSync(join(root, 'etc/ssl/certs'), { recursive: true });
    if (existsSync(CA_BUNDLE)) cpSync(CA_BUNDLE, join(root, CA_BUNDLE));
    writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000:node:/home/node:/bin/sh\n');
    writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnode:x:1000:\n');
    await run('chmod', ['1777', join(root, 'tmp')]);
    await run('chown', ['1000:1000', join(root, 'home/node')]);
    await run('sh', ['-c', `tar -C '${root}' -c . | podman import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'ENV NODE_EXTRA_CA_CERTS=${CA_BUNDLE}' --change 'CMD ["node"]' - ${BASE}`], { maxBuffer: 1 << 24 });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

describe.skipIf(!podman)('the container image', () => {
  let port = 0;
  let container = '';
  beforeAll(async () => {
    await makeBase();
    await run('podman', ['build', ...PODMAN, '--pull=never', '--network', 'host', ...ULIMITS, '--build-arg', 'BOT=echo', '-t', TAG, ROOT], { maxBuffer: 1 << 26 });
    port = await freePort();
    const started = await run('podman', [
      'run', ...PODMAN, '-d', '--rm', '--network', 'host', '--read-only', '--user', '1000:1000', ...ULIMITS, '-e', `PORT=${port}`, TAG,
    ]);
    container = started.stdout.trim();
  }, 600_000);
  afterAll(async () => {
    if (container) await run('podman', ['stop', '-t', '5', container]).catch(() => undefined);
  });

  it('answers readiness and echoes a CloudEvent, read-only and as user 1000', async () => {
    await waitFor(() => fetch(`http://127.0.0.1:${port}/health/readiness`).then((r) => r.ok, () => false), 'the container to be ready', 30_000);
    const res = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST', headers: chatHeaders('img-1'), body: JSON.stringify({ text: 'from a container' }) });
    expect([res.status, res.headers.get('ce-type'), ((await res.json()) as { text: string }).text]).toEqual([200, 'dev.knbot.chat.reply.send', 'from a container']);
    const user = await run('podman', ['exec', container, 'node', '-e', 'console.log(process.getuid())']);
    expect(user.stdout.trim()).toBe('1000');
    const size = Number((await run('podman', ['image', 'inspect', '--format', '{{.Size}}', TAG])).stdout.trim());
    console.log(`image ${TAG}: ${(size / 1e6).toFixed(1)} MB`);
    expect(size).toBeGreaterThan(0);
  });
});
