import { readFileSync } from 'node:fs';

const { stripTypeScriptTypes } = process.getBuiltinModule('node:module') as typeof import('node:module');

/**
 * A browser script written in TypeScript, as JavaScript: Node strips its types. Node calls that API
 * experimental and says so on stderr the first time; that line is for the developers of a tool, not
 * for someone running `npm start`, so it is left out (any other warning still shows).
 */
export function browserScript(file: URL): string {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (!String(warning instanceof Error ? warning.message : warning).includes('stripTypeScriptTypes')) (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return stripTypeScriptTypes(readFileSync(file, 'utf8'), { mode: 'strip' });
  } finally {
    process.emitWarning = emit;
  }
}

/**
 * The web chat page (DESIGN §7): `index.html` and `chat.ts`, the page's script, served as JavaScript
 * after Node strips its types; no bundler, and nothing for the browser to fetch from elsewhere.
 */
class ChatPage {
  #html: string | undefined;
  #script: string | undefined;

  get html(): string {
    return (this.#html ??= readFileSync(new URL('./index.html', import.meta.url), 'utf8'));
  }

  get script(): string {
    return (this.#script ??= browserScript(new URL('./chat.ts', import.meta.url)));
  }
}

export const chatPage = new ChatPage();
