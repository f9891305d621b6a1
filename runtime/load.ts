import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Bot, isBot } from './bot.ts';

/** A Knative func module: `handle(context, body)` for HTTP, `handle(context, cloudevent)` for events. */
export interface FuncModule {
  handle(context: unknown, input: unknown): unknown;
  init?(): unknown;
  shutdown?(): unknown;
}

export type LoadedModule = { kind: 'bot'; bot: Bot; entry: string } | { kind: 'func'; func: FuncModule; entry: string };

const ENTRIES = ['index.ts', 'index.mts', 'index.js', 'index.mjs', 'index.cjs'];

export class BotLoadError extends Error {
  readonly code = 'bot_load_failed';
}

/** The module a bot directory runs: `package.json` `main` (as func projects have), else `index.*`. */
export function resolveEntry(dir: string): string {
  const pkg = join(dir, 'package.json');
  if (existsSync(pkg)) {
    let main: unknown;
    try {
      main = (JSON.parse(readFileSync(pkg, 'utf8')) as { main?: unknown }).main;
    } catch (e) {
      throw new BotLoadError(`${pkg}: ${(e as Error).message}`);
    }
    if (typeof main === 'string' && existsSync(join(dir, main))) return resolve(dir, main);
  }
  for (const name of ENTRIES) if (existsSync(join(dir, name))) return resolve(dir, name);
  throw new BotLoadError(`no bot module in ${dir}: expected ${ENTRIES.join(', ')} or a package.json "main"`);
}

const PACKAGE_ENTRIES: Record<string, string> = {
  knbot: '../runtime/index.ts',
  'knbot/runtime': '../runtime/index.ts',
  'knbot/eventing': '../eventing/index.ts',
  'knbot/llm': '../runtime/llm/index.ts',
  'knbot/search': '../runtime/search.ts',
};
let hooked = false;

/**
 * `import 'knbot'` in a bot resolves to the runtime running it, wherever the bot lives (as a func
 * runtime provides its API): the bot needs no copy of knbot of its own, and `defineBot` is always the
 * one the server checks for.
 */
function provideKnbot(): void {
  if (hooked) return;
  hooked = true;
  const { registerHooks } = process.getBuiltinModule('node:module') as typeof import('node:module');
  const urls = Object.fromEntries(Object.entries(PACKAGE_ENTRIES).map(([name, path]) => [name, new URL(path, import.meta.url).href]));
  registerHooks({
    resolve(specifier, context, next) {
      const url = urls[specifier];
      return url ? { url, format: 'module-typescript', shortCircuit: true } : next(specifier, context);
    },
  });
}

/** Imports a bot module and tells a `defineBot` bot from a func-style `handle` module. */
export async function loadBotModule(dir: string): Promise<LoadedModule> {
  const entry = resolveEntry(dir);
  provideKnbot();
  const mod = (await import(pathToFileURL(entry).href)) as Record<string, unknown>;
  const def = mod.default as Record<string, unknown> | ((...args: unknown[]) => unknown) | undefined;
  if (isBot(def)) return { kind: 'bot', bot: def, entry };
  const source: Record<string, unknown> | undefined =
    typeof mod.handle === 'function' ? mod : def && typeof def === 'object' && typeof def.handle === 'function' ? def : undefined;
  if (source) {
    return { kind: 'func', entry, func: { handle: source.handle as FuncModule['handle'], init: fn(source.init), shutdown: fn(source.shutdown) } };
  }
  if (typeof def === 'function') return { kind: 'func', entry, func: { handle: def, init: fn(mod.init), shutdown: fn(mod.shutdown) } };
  throw new BotLoadError(`${entry}: the default export must be defineBot({...}), or the module must export a func-style handle(context, input)`);
}

function fn(value: unknown): (() => unknown) | undefined {
  return typeof value === 'function' ? (value as () => unknown) : undefined;
}
