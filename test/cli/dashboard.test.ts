import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type BrowserContext, type Page, chromium } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeBinary } from '../../eventing/codec.ts';
import { CHROMIUM_ARGS, chromiumPath } from '../chromium.ts';
import { ROOT } from '../shared.ts';
import { type DevProcess, startDev } from './dev-host.ts';

// The `knbot dev` dashboard in headless Chromium, watching a real host scale real bot processes.

// The functions handed to page.evaluate run in the page; the project is typed for Node, so here is the
// little of the DOM they touch.
interface PageElement {
  dataset: Record<string, string | undefined>;
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
}
interface PageCanvas extends PageElement {
  width: number;
  height: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
}
declare const document: { querySelector(selector: string): PageElement | null; querySelectorAll(selector: string): Iterable<PageElement> };
declare const MutationObserver: new (callback: () => void) => { observe(target: PageElement, options: Record<string, boolean>): void };
declare function getComputedStyle(e: PageElement): { backgroundColor: string };

const executablePath = chromiumPath('the dashboard test');
const ARTIFACTS = join(ROOT, 'test-results', 'dashboard');
const FIXTURE = join(ROOT, 'test', 'fixtures', 'dev-project');

/** What one bot's panel showed, each time one of its figures changed. */
interface Shown {
  ready: number;
  starting: number;
  inFlight: number;
  waiting: number;
  /** Rows of its instances table. */
  instanceRows: number;
}

/** Starts recording, in the page, every change of a bot panel's figures (`globalThis.shown`). */
function recordPanel(bot: string): void {
  const panel = document.querySelector(`section.bot[data-bot="${bot}"]`)!;
  const shown: Shown[] = [];
  (globalThis as unknown as { shown: Shown[] }).shown = shown;
  const take = () => {
    const d = panel.dataset;
    const now: Shown = {
      ready: Number(d.ready),
      starting: Number(d.starting),
      inFlight: Number(d.inFlight),
      waiting: Number(d.waiting),
      instanceRows: [...panel.querySelectorAll('table.instances tbody tr[data-state]')].length,
    };
    const last = shown.at(-1);
    if (!last || Object.keys(now).some((k) => now[k as keyof Shown] !== last[k as keyof Shown])) shown.push(now);
  };
  take();
  new MutationObserver(take).observe(panel, { subtree: true, childList: true, attributes: true });
}

/**
 * Where the chart's "ready instances" line is, from the canvas's pixels: the colour is the legend's, the
 * rows are from the top (0) down. `right` is the topmost such row in the last 2 % of the width (now).
 */
function readyLine(bot: string): { pixels: number; top: number; bottom: number; right: number; height: number } {
  const panel = document.querySelector(`section.bot[data-bot="${bot}"]`)!;
  const swatch = [...panel.querySelectorAll('.legend span')].find((s) => (s as unknown as { textContent: string }).textContent === 'ready instances')!.querySelector('i')!;
  const [r, g, b] = getComputedStyle(swatch).backgroundColor.match(/\d+/g)!.map(Number) as [number, number, number];
  const canvas = panel.querySelector('canvas') as PageCanvas;
  const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
  const out = { pixels: 0, top: canvas.height, bottom: -1, right: canvas.height, height: canvas.height };
  for (let y = 0; y < canvas.height; y++) {
    for (let x = 0; x < canvas.width; x++) {
      const i = (y * canvas.width + x) * 4;
      if (data[i + 3]! < 250 || Math.abs(data[i]! - r) > 8 || Math.abs(data[i + 1]! - g) > 8 || Math.abs(data[i + 2]! - b) > 8) continue;
      out.pixels++;
      out.top = Math.min(out.top, y);
      out.bottom = Math.max(out.bottom, y);
      if (x >= canvas.width * 0.98) out.right = Math.min(out.right, y);
    }
  }
  return out;
}

describe.skipIf(!executablePath)('the knbot dev dashboard in Chromium', () => {
  const work = mkdtempSync(join(tmpdir(), 'knbot-dashboard-'));
  const project = join(work, 'project');
  let dev: DevProcess;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const pageErrors: Error[] = [];

  beforeAll(async () => {
    cpSync(FIXTURE, project, { recursive: true });
    mkdirSync(ARTIFACTS, { recursive: true });
    [dev, browser] = await Promise.all([
      startDev(project, join(work, 'state'), { FLAKY_DIR: work, RECORDER_FILE: join(work, 'recorded.txt') }),
      chromium.launch({ executablePath, args: CHROMIUM_ARGS }),
    ]);
    context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    context.setDefaultTimeout(15_000);
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e));
    await page.goto(`${dev.url}/dashboard`);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await dev?.stop();
    rmSync(work, { recursive: true, force: true });
  });

  afterEach(async (ctx) => {
    // The page as the test left it, passed or failed: a test artifact.
    const file = join(ARTIFACTS, `${ctx.task.name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '')}.png`);
    await page.screenshot({ path: file, fullPage: true });
    expect(readFileSync(file).subarray(1, 4).toString()).toBe('PNG');
    expect(pageErrors).toEqual([]);
  });

  const panel = (bot: string) => page.locator(`section.bot[data-bot="${bot}"]`);
  const figure = (bot: string, field: string) => panel(bot).getAttribute(`data-${field}`).then(Number);
  const summary = (field: string) => page.locator(`#summary [data-field="${field}"] b`).textContent().then(Number);
  /** Waits for the page to show what the host has now: two more polls. */
  async function caughtUp(): Promise<void> {
    const n = Number(await page.locator('body').getAttribute('data-refreshes'));
    await page.waitForFunction((n) => Number(document.querySelector('body')!.dataset.refreshes) >= n + 2, n);
  }

  it('shows every bot of the project, its warm pool up, and says it is live', async () => {
    const state = await dev.state();
    await page.waitForFunction(() => document.querySelector('section.bot[data-bot="warm"]')?.dataset.ready === '1');
    expect(await page.locator('section.bot').evaluateAll((els) => els.map((e) => (e as unknown as PageElement).dataset.bot))).toEqual(state.bots.map((b) => b.name));
    expect(await page.locator('#status').getAttribute('data-state')).toBe('live');
    expect(await summary('bots')).toBe(state.bots.length);
    // min-scale 1 started at boot: one cold start, one row in its instances table.
    expect(await figure('warm', 'cold-starts')).toBe(1);
    expect(await panel('warm').locator('table.instances tbody tr[data-state="ready"]').count()).toBe(1);
    expect(await figure('busy', 'ready')).toBe(0);
    expect(await panel('busy').locator('table.instances tbody').textContent()).toMatch(/scaled to zero/);
  });

  it('follows a bot under load from zero to maxScale and back to zero: counts, instances, in flight, waiting and the chart', async () => {
    expect(await figure('busy', 'ready')).toBe(0);
    expect(await figure('busy', 'cold-starts')).toBe(0);
    const before = await page.evaluate(readyLine, 'busy');
    // Nothing yet: the line is flat along the bottom.
    expect(before.pixels).toBeGreaterThan(0);
    expect(before.bottom - before.top).toBeLessThanOrEqual(3);
    await page.evaluate(recordPanel, 'busy');

    // busy: 400 ms a message, one at a time per instance, at most 2 instances.
    const answers = Promise.all(Array.from({ length: 8 }, (_, i) => dev.chat('busy', `job ${i}`, `dash-${i}`)));
    await page.waitForFunction(() => document.querySelector('section.bot[data-bot="busy"]')?.dataset.ready === '2');
    await page.screenshot({ path: join(ARTIFACTS, 'busy-scaled-out.png'), fullPage: true });
    const replies = await answers;
    expect(replies.map((a) => a.status)).toEqual(Array(8).fill(200));
    // Idle for the scale-down delay (1 s here): drained back to zero.
    await page.waitForFunction(() => {
      const d = document.querySelector('section.bot[data-bot="busy"]')!.dataset;
      return d.ready === '0' && d.starting === '0' && d.draining === '0';
    });

    const shown = await page.evaluate(() => (globalThis as unknown as { shown: Shown[] }).shown);
    const ready = shown.map((s) => s.ready);
    expect(ready[0]).toBe(0);
    expect(Math.max(...ready)).toBe(2);
    expect(ready.at(-1)).toBe(0);
    expect(ready.lastIndexOf(0)).toBeGreaterThan(ready.indexOf(2));
    // Both instances listed while up, none at the end; requests shown in flight (one per instance at
    // most: containerConcurrency 1) and waiting in the activator while instances started.
    expect(Math.max(...shown.map((s) => s.instanceRows))).toBe(2);
    expect(shown.at(-1)!.instanceRows).toBe(0);
    expect(Math.max(...shown.map((s) => s.inFlight))).toBe(2);
    expect(Math.max(...shown.map((s) => s.waiting))).toBeGreaterThan(0);
    expect(shown.at(-1)!.inFlight).toBe(0);

    // The chart: the ready line rose from the bottom and is back on it now (a couple of seconds of zero
    // at its right end, at most 30 s wide this early).
    await caughtUp();
    await caughtUp();
    const after = await page.evaluate(readyLine, 'busy');
    expect((after.bottom - after.top) / after.height).toBeGreaterThan(0.2);
    expect(Math.abs(after.right - after.bottom)).toBeLessThanOrEqual(3);

    // Cold starts: the two instances', with the durations the host measured.
    const state = await dev.state();
    const measured = state.bots.find((b) => b.name === 'busy')!.coldStarts.map((c) => c.ms);
    expect(measured).toHaveLength(2);
    await caughtUp();
    expect(await figure('busy', 'cold-starts')).toBe(2);
    const rows = await panel('busy').locator('table.cold-starts tbody tr[data-ms]').evaluateAll((els) => els.map((e) => Number((e as unknown as PageElement).dataset.ms)));
    expect(rows.sort((a, b) => a - b)).toEqual([...measured].sort((a, b) => a - b));
    expect(rows.every((ms) => ms > 0)).toBe(true);
    expect(await panel('busy').locator('table.cold-starts tbody').textContent()).toMatch(new RegExp(`${measured[0]} ms`));
  }, 60_000);

  it('counts the events routed per route and bot with their outcomes, and the dead letters', async () => {
    // A canned reply is answered on greet's reply route, and greet is not woken for it.
    expect((await dev.chat('greet', 'ping', 'dash-ping')).body.text).toBe('pong (canned)');
    // A chat message without text: busy answers 400, which is not retried; the event is dead.
    const bad = encodeBinary({ specversion: '1.0', id: 'dash-bad', source: '/test', type: 'dev.knbot.chat.message.received', chatbot: 'busy', data: {} });
    expect((await fetch(`${dev.url}/v1/events`, { method: 'POST', headers: bad.headers, body: bad.body })).status).toBe(202);

    await page.waitForFunction(() => document.querySelector('section.bot[data-bot="busy"]')?.dataset.deadLetters === '1');
    await caughtUp();
    const state = (await (await fetch(`${dev.url}/dashboard/state`)).json()) as { deliveries: Record<string, Record<string, number>>; routes: Record<string, string>; deadLetters: number };
    expect(await summary('dead-letters')).toBe(state.deadLetters);
    expect(state.deadLetters).toBe(1);

    // Every route the host counted has its row, its bot and its counts as the host has them.
    const table = await page.locator('#deliveries tbody tr[data-route]').evaluateAll((rows) =>
      rows.map((r) => {
        const row = r as unknown as PageElement;
        const counts: Record<string, number> = {};
        for (const td of row.querySelectorAll('td[data-outcome]')) counts[td.dataset.outcome!] = Number(td.dataset.count);
        return { route: row.dataset.route!, bot: row.dataset.bot, counts };
      }),
    );
    expect(table.map((r) => r.route).sort()).toEqual(Object.keys(state.deliveries).sort());
    for (const row of table) {
      expect(row.bot).toBe(state.routes[row.route]);
      for (const outcome of ['delivered', 'retry', 'dead-lettered', 'dead']) expect(row.counts[outcome], `${row.route} ${outcome}`).toBe(state.deliveries[row.route]![outcome] ?? 0);
    }
    const busy = table.filter((r) => r.bot === 'busy');
    expect(busy.reduce((n, r) => n + r.counts.delivered!, 0)).toBe(8);
    expect(busy.reduce((n, r) => n + r.counts.dead!, 0)).toBe(1);
    expect(await figure('busy', 'events')).toBe(8);
    const greet = table.filter((r) => r.bot === 'greet');
    expect(greet.reduce((n, r) => n + r.counts.delivered!, 0)).toBe(1);
    expect(await figure('greet', 'cold-starts')).toBe(0);
    // The replies went back to the chat clients on the gateway's route.
    expect(table.find((r) => r.route === 'gateway-egress')!.counts.delivered).toBeGreaterThanOrEqual(9);
    expect(await page.locator('#deliveries tbody tr[data-bot="busy"] td[data-outcome="dead"][data-count="1"]').getAttribute('data-alert')).toBe('true');
  });

  it('says so when the dev host stops answering', async () => {
    await dev.stop();
    await page.waitForFunction(() => document.querySelector('#status')?.dataset.state === 'offline');
    expect(await page.locator('#status').textContent()).toMatch(/does not answer/);
    // What it showed last stays on the page.
    expect(await page.locator('section.bot').count()).toBeGreaterThan(0);
  });
});
