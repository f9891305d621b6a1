#!/usr/bin/env node
// The `knbot` command. Plain JavaScript so that any Node can start it: knbot itself needs Node 24
// (TypeScript type stripping), so on an older Node it re-runs itself under the project's Node 24 (the
// `node` devDependency) or says how to get one.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import module from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// 24.9: http.Server's shouldUpgradeCallback (a pod's direct WebSocket).
const [MIN_MAJOR, MIN_MINOR] = [24, 9];
const [major, minor] = process.versions.node.split('.').map(Number);

if (major < MIN_MAJOR || (major === MIN_MAJOR && minor < MIN_MINOR)) {
  const root = dirname(dirname(fileURLToPath(import.meta.url)));
  const node24 = join(root, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(node24) || process.env.KNBOT_REEXEC === '1') {
    process.stderr.write(
      `knbot needs Node ${MIN_MAJOR}.${MIN_MINOR} or later; this is Node ${process.versions.node}.\n` +
        `Run it through npm (npm start, npm exec knbot), after npm install has fetched the project's Node ${MIN_MAJOR}, or install Node ${MIN_MAJOR}.\n`,
    );
    process.exit(1);
  }
  const child = spawn(node24, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, KNBOT_REEXEC: '1' },
  });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (signal === 'SIGKILL' ? 9 : 15) : 1)));
} else {
  // V8 code and stripped TypeScript cached on disk: a warm start skips both compilers. A read-only
  // filesystem just leaves it off.
  module.enableCompileCache?.(process.env.KNBOT_COMPILE_CACHE || undefined);
  const { main } = await import('./main.ts');
  await main(process.argv.slice(2));
}
