import { readFileSync } from 'node:fs';

const { stripTypeScriptTypes } = process.getBuiltinModule('node:module') as typeof import('node:module');

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
    return (this.#script ??= stripTypeScriptTypes(readFileSync(new URL('./chat.ts', import.meta.url), 'utf8'), { mode: 'strip' }));
  }
}

export const chatPage = new ChatPage();
