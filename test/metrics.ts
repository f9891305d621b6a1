// Reading the Prometheus text format in tests: a scrape, and one series' value out of it.
import { expect } from 'vitest';

export interface Scrape {
  status: number;
  contentType: string;
  text: string;
}

export async function scrape(url: string): Promise<Scrape> {
  const res = await fetch(url);
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text: await res.text() };
}

/** Scrapes `url` and checks it answered 200 in the Prometheus text format. */
export async function metricsOf(url: string): Promise<string> {
  const s = await scrape(url);
  expect(s.status, s.text).toBe(200);
  expect(s.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  return s.text;
}

function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) out[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  return out;
}

/** The value of the series `name` whose labels are exactly `labels`; undefined when there is none. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).sort();
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.entries(parseLabels(m[2] ?? '')).sort();
    if (JSON.stringify(got) === JSON.stringify(want)) return Number(m[3]);
  }
  return undefined;
}

/** Like `sample`, 0 when the series is not there yet (a counter nothing has counted). */
export const count = (text: string, name: string, labels: Record<string, string> = {}): number => sample(text, name, labels) ?? 0;
