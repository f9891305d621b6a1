// DESIGN §2: arrows point from user to used. eventing/ uses no other folder of ours; runtime/ only
// eventing/; bots only the public `knbot` entry points and their own files.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './shared.ts';

const ALLOWED: Record<string, string[]> = {
  eventing: [],
  runtime: ['eventing'],
  knative: ['eventing'],
  gateway: ['runtime', 'eventing'],
  cli: ['knative', 'gateway', 'runtime', 'eventing'],
  functions: [],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : /\.(ts|js)$/.test(name) ? [p] : [];
  });
}

describe('dependency direction', () => {
  const cases = Object.keys(ALLOWED).flatMap((top) => {
    try {
      return files(join(ROOT, top)).map((f) => [relative(ROOT, f), top] as const);
    } catch {
      return [];
    }
  });

  it('has files to check', () => expect(cases.length).toBeGreaterThan(20));

  it.each(cases)('%s imports only what %s may use', (file, top) => {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const [, spec] of text.matchAll(/(?:from\s+|import\s*\()\s*['"]([^'"]+)['"]/g)) {
      if (spec!.startsWith('.')) {
        const path = relative(ROOT, resolve(dirname(join(ROOT, file)), spec!)).split('/');
        expect([top, ...ALLOWED[top]!], `${file} imports ${spec}`).toContain(path[0]!);
        // A bot is deployed on its own: it imports no other bot's code.
        if (top === 'functions') expect(path[1], `${file} imports ${spec}`).toBe(file.split('/')[1]);
      } else if (top === 'functions') {
        expect(spec!.startsWith('knbot') || spec!.startsWith('node:'), `${file} imports ${spec}`).toBe(true);
      }
    }
  });
});
