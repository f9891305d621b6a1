import { accessSync, constants, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ECHO, fixture } from '../pod.ts';
import { ROOT } from '../shared.ts';
import { type ChatSystem, startChatSystem } from './harness.ts';
import { Relay } from './relay.ts';

/**
 * Debian's chromium, or undefined when it is not installed. Under CI=true its absence is an error:
 * `.ci/run` installs it, and a skipped browser test would pass silently.
 */
function chromiumPath(): string | undefined {
  const path = '/usr/bin/chromium';
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {}
  if (process.env.CI === 'true') throw new Error(`${path} is missing; CI needs it for the browser test (apt-get install chromium)`);
  console.warn(`skipping: ${path} is not installed, so the chat page cannot be tested in a browser (apt-get install chromium)`);
  return undefined;
}

// The functions handed to page.evaluate run in the page; the project is typed for Node, not the DOM,
// so here is the little of the DOM they touch.
interface PageElement {
  textContent: string | null;
  hidden: boolean;
  dataset: Record<string, string | undefined>;
  classList: { contains(name: string): boolean };
  querySelector(selector: string): PageElement | null;
}
declare const document: {
  getElementById(id: string): PageElement | null;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
};
declare const MutationObserver: new (callback: () => void) => { observe(target: PageElement, options: Record<string, boolean>): void };

const executablePath = chromiumPath();
const ARTIFACTS = join(ROOT, 'test-results', 'browser');
/** What test/fixtures/bots/stream-slow writes, ten words 150 ms apart. */
const SLOW_REPLY = 'alpha bravo charlie delta echo foxtrot golf hotel india juliet';

/** What the page showed over time, recorded in the page on every DOM change. */
interface Seen {
  /** Each bot bubble's text, by message id, every value it took in order. */
  replies: Record<string, string[]>;
  status: string[];
  /** Whether the typing indicator was showing when each bot bubble had partial text. */
  typingWhilePartial: boolean[];
}

function record(): void {
  const seen: Seen = { replies: {}, status: [], typingWhilePartial: [] };
  (globalThis as unknown as { seen: Seen }).seen = seen;
  const typing = document.getElementById('typing')!;
  const status = document.getElementById('status')!;
  const take = () => {
    for (const el of document.querySelectorAll('.msg.bot')) {
      const text = el.querySelector('.body')?.textContent ?? '';
      const history = (seen.replies[el.dataset.id!] ??= []);
      if (history.at(-1) === text) continue;
      history.push(text);
      if (!el.dataset.done && text) seen.typingWhilePartial.push(!typing.hidden);
    }
    if (seen.status.at(-1) !== status.textContent) seen.status.push(status.textContent ?? '');
  };
  take();
  new MutationObserver(take).observe(document.querySelector('main')!, { subtree: true, childList: true, characterData: true, attributes: true });
}

describe.skipIf(!executablePath)('the web chat page in Chromium', () => {
  let sys: ChatSystem;
  let relay: Relay;
  let origin: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let pageErrors: Error[];

  beforeAll(async () => {
    [sys, browser] = await Promise.all([
      startChatSystem([
        { name: 'echo', dir: ECHO },
        { name: 'stream-slow', dir: fixture('stream-slow') },
        { name: 'strict', dir: fixture('stream-slow'), turnPolicy: 'reject' },
        { name: 'buttons', dir: fixture('buttons') },
      ]),
      chromium.launch({ executablePath, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] }),
    ]);
    // The page is served through the relay, so its socket can be cut as a network would cut it.
    relay = new Relay(Number(new URL(sys.url).port));
    origin = await relay.start();
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await relay?.close();
    await sys?.stop();
  });

  beforeEach(async () => {
    context = await browser.newContext({ viewport: { width: 760, height: 620 } });
    // Under the test's own timeout, so a condition that never holds fails with what it waited for.
    context.setDefaultTimeout(15_000);
    page = await context.newPage();
    pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e));
  });

  afterEach(async (ctx) => {
    // The page as the test left it, passed or failed: a test artifact.
    const file = join(ARTIFACTS, `${ctx.task.name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '')}.png`);
    await page.screenshot({ path: file, fullPage: true });
    expect(readFileSync(file).subarray(1, 4).toString()).toBe('PNG');
    relay.setDown(false);
    await context.close();
    expect(pageErrors).toEqual([]);
  });

  async function open(query = ''): Promise<void> {
    await page.goto(`${origin}/${query}`);
    // Connected, and the bots listed.
    await page.waitForFunction(() => document.getElementById('status')?.dataset.state === 'connected' && !document.querySelector('#send[disabled]'));
    await page.evaluate(record);
  }

  async function say(text: string): Promise<string> {
    await page.fill('#text', text);
    await page.click('#send');
    const user = page.locator('.msg.user').last();
    await expect.poll(() => user.getAttribute('data-state')).toBe('sent');
    return (await user.getAttribute('data-id'))!;
  }

  const reply = (id: string) => page.locator(`.msg.bot[data-id="${id}"]`);
  const seen = () => page.evaluate(() => (globalThis as unknown as { seen: Seen }).seen);
  /** The page's own connection state (`knbotChat`, which it exposes for this). */
  const connection = () =>
    page.evaluate(() => {
      const c = (globalThis as unknown as { knbotChat: { sessionId?: string; reconnects: number } }).knbotChat;
      return { sessionId: c.sessionId, reconnects: c.reconnects };
    });

  async function done(id: string): Promise<string> {
    await page.waitForFunction((id) => document.querySelector(`.msg.bot[data-id="${id}"]`)?.dataset.done === 'true', id);
    return (await reply(id).locator('.body').textContent()) ?? '';
  }

  function expectGrewWithoutRepeats(history: string[], final: string): void {
    expect(history.at(-1)).toBe(final);
    for (const [i, text] of history.entries()) {
      expect(final.startsWith(text), `shown "${text}", which is not the start of "${final}"`).toBe(true);
      if (i > 0) expect(text.length).toBeGreaterThan(history[i - 1]!.length);
    }
  }

  it('lists the gateway’s bots and answers through the one picked', async () => {
    await open();
    expect(await page.locator('#bot option').allTextContents()).toEqual(['echo', 'stream-slow', 'strict', 'buttons']);
    await page.selectOption('#bot', 'echo');
    const id = await say('hello from the browser');
    expect(await done(id)).toBe('hello from the browser');
    await expect.poll(() => reply(id).locator('.who').textContent()).toBe('echo');
    expect(await page.locator('#typing .dots').isVisible()).toBe(false);
  });

  it('streams a reply into its bubble token by token, with the typing indicator on until it ends', async () => {
    await open();
    await page.selectOption('#bot', 'stream-slow');
    const id = await say('tell me the alphabet');
    const partial = await page.waitForFunction(
      (id) => {
        const el = document.querySelector(`.msg.bot[data-id="${id}"]`);
        const text = el?.querySelector('.body')?.textContent ?? '';
        const typing = document.getElementById('typing')!;
        return el && !el.dataset.done && el.classList.contains('streaming') && text.split(' ').length >= 2 && !typing.hidden && { text, typing: typing.textContent };
      },
      id,
    );
    const shown = (await partial.jsonValue()) as { text: string; typing: string };
    await page.screenshot({ path: join(ARTIFACTS, 'mid-stream.png') });
    expect(shown.typing).toBe('stream-slow is typing');
    expect(SLOW_REPLY.startsWith(shown.text) && shown.text.length < SLOW_REPLY.length).toBe(true);

    expect(await done(id)).toBe(SLOW_REPLY);
    expect(await reply(id).getAttribute('class')).not.toContain('streaming');
    expect(await page.locator('#typing .dots').isVisible()).toBe(false);
    const s = await seen();
    expect(s.replies[id]!.length).toBeGreaterThanOrEqual(4);
    expectGrewWithoutRepeats(s.replies[id]!, SLOW_REPLY);
    expect(s.typingWhilePartial.every(Boolean)).toBe(true);
  });

  it('finishes a reply whose socket was cut mid-stream: reconnects, resumes the session, repeats nothing', async () => {
    await open('?bot=stream-slow');
    const { sessionId } = await connection();
    const id = await say('go');
    await page.waitForFunction((id) => (document.querySelector(`.msg.bot[data-id="${id}"] .body`)?.textContent ?? '').split(' ').length >= 2, id);
    const before = (await reply(id).locator('.body').textContent())!;
    expect(relay.cut()).toBe(1);

    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'reconnected (resumed)');
    expect(await done(id)).toBe(SLOW_REPLY);
    expect(before.length).toBeLessThan(SLOW_REPLY.length);

    const s = await seen();
    expect(s.status).toEqual(['connected', 'reconnecting…', 'reconnected (resumed)']);
    expectGrewWithoutRepeats(s.replies[id]!, SLOW_REPLY);
    expect(await page.locator('.note').allTextContents()).toEqual(['connection lost: reconnecting…', 'reconnected: session resumed']);
    // The same session, picked up where it was left; the message was not sent again as a new turn.
    expect(await connection()).toEqual({ sessionId, reconnects: 1 });
    expect(await page.locator('.msg.bot').count()).toBe(1);
    expect(await page.locator('.msg.error').count()).toBe(0);
  });

  it('keeps a message typed while the gateway is unreachable and sends it once the connection is back', async () => {
    await open('?bot=echo');
    relay.setDown(true);
    expect(relay.cut()).toBe(1);
    await page.waitForFunction(() => document.getElementById('status')?.dataset.state === 'reconnecting');
    await page.fill('#text', 'sent later');
    await page.click('#send');
    const user = page.locator('.msg.user').last();
    expect(await user.getAttribute('data-state')).toBe('sending');
    relay.setDown(false);
    const id = (await user.getAttribute('data-id'))!;
    expect(await done(id)).toBe('sent later');
    expect(await user.getAttribute('data-state')).toBe('sent');
    expect(await page.locator('#status').textContent()).toBe('reconnected (resumed)');
  });

  it('starts a new session when the gateway no longer knows the one the page tries to resume', async () => {
    await open('?bot=echo');
    // As after a gateway restart that lost its in-memory sessions: the page holds an id the gateway never saw.
    const forgotten = await page.evaluate(() => ((globalThis as unknown as { knbotChat: { sessionId: string } }).knbotChat.sessionId = crypto.randomUUID()));
    expect(relay.cut()).toBe(1);
    await page.waitForFunction(
      (forgotten) => {
        const id = (globalThis as unknown as { knbotChat: { sessionId?: string } }).knbotChat.sessionId;
        return id !== undefined && id !== forgotten && document.getElementById('status')?.textContent === 'connected';
      },
      forgotten,
    );
    expect(await page.locator('.note').allTextContents()).toEqual([
      'connection lost: reconnecting…',
      'could not resume (unknown_session): starting a new session; replies still on their way are lost',
    ]);
    const { sessionId, reconnects } = await connection();
    expect(sessionId).toBeDefined();
    expect(sessionId).not.toBe(forgotten);
    expect(reconnects).toBe(0);
    const id = await say('still works');
    expect(await done(id)).toBe('still works');
  });

  it('shows a reply’s buttons under it; a press says the label, closes the row, and the bot answers it', async () => {
    await open('?bot=buttons');
    const id = await say('what colours are there?');
    expect(await done(id)).toBe('Pick a colour');
    const choices = reply(id).locator('.choices button');
    expect(await choices.allTextContents()).toEqual(['Red', 'Green', 'Blue']);
    expect(await reply(id).locator('.choices').getAttribute('role')).toBe('group');
    await page.screenshot({ path: join(ARTIFACTS, 'reply-buttons.png') });

    await choices.nth(1).click();
    const pressed = page.locator('.msg.user').last();
    // The user's bubble says the label (its first node; the note under it says how sending went).
    expect(await pressed.evaluate((el) => (el as unknown as { firstChild: PageElement }).firstChild.textContent)).toBe('Green');
    await expect.poll(() => pressed.getAttribute('data-state')).toBe('sent');
    const answer = (await pressed.getAttribute('data-id'))!;
    expect(await done(answer)).toBe('you picked Green');
    // The row is spent: every button disabled, the one pressed marked.
    expect(await choices.evaluateAll((els) => els.map((b) => [(b as unknown as { disabled: boolean }).disabled, (b as unknown as PageElement).dataset.chosen ?? null]))).toEqual([
      [true, null],
      [true, 'true'],
      [true, null],
    ]);
    expect(await reply(answer).locator('.choices').count()).toBe(0);
    expect(await page.locator('.msg.user').count()).toBe(2);
  });

  it('shows the gateway refusing a message under that message, and carries on', async () => {
    await open('?bot=strict');
    const first = await say('first');
    await page.fill('#text', 'second, too soon');
    await page.click('#send');
    const second = page.locator('.msg.user').last();
    await expect.poll(() => second.getAttribute('data-state')).toBe('failed');
    const error = page.locator(`.msg.error[data-id="${await second.getAttribute('data-id')}"]`);
    expect(await error.textContent()).toMatch(/^turn_in_progress: /);
    expect(await error.getAttribute('role')).toBe('alert');
    expect(await done(first)).toBe(SLOW_REPLY);
    expect(await page.locator('#typing .dots').isVisible()).toBe(false);
  });
});
