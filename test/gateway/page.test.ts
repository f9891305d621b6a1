import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { browserScript } from '../../gateway/web/page.ts';

describe('the chat page script', () => {
  it('is the TypeScript with its types blanked out, and Node\'s experimental-feature warning is not printed', async () => {
    const file = new URL('../../gateway/web/chat.ts', import.meta.url);
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      const source = readFileSync(file, 'utf8');
      const script = browserScript(file);
      // Strip mode puts blanks where the types were: same length, every line where it was.
      expect(script).not.toBe(source);
      expect(script.length).toBe(source.length);
      process.emitWarning('a warning of something else');
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toEqual(['a warning of something else']);
  });
});
