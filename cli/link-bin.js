// npm links the bins of dependencies, never the project's own: `npm install` runs this (prepare) so
// node_modules/.bin/knbot exists in a clone too, as in any project that depends on knbot.
import { mkdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const bin = join(root, 'node_modules', '.bin');
const link = join(bin, 'knbot');
const target = join('..', '..', 'cli', 'knbot.js');
mkdirSync(bin, { recursive: true });
let current;
try {
  current = readlinkSync(link);
} catch {
  current = undefined;
}
if (current !== target) {
  rmSync(link, { force: true });
  symlinkSync(target, link);
}
