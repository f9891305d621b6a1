import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

// `knbot/search`: a BM25 index over markdown documents, cut into passages at their headings (and at
// ~900 characters within long sections), for bots that answer from documents. The faq bot answers
// with its best passages; the llm bot grounds the model's answers in them.

export interface Passage {
  /** The file, relative to the corpus: `README.md`. */
  file: string;
  /** The heading path under the document's title: `Writing a bot`, `The gateway › Chat platforms`. */
  heading: string;
  text: string;
}

export interface Hit {
  passage: Passage;
  score: number;
}

const STOP = new Set(
  ('a about an and are as at be been but by can could do does doing for from had has have how i if in into is it its ' +
    'me my no not of on or our so some such than that the their them then there these they this to too was we were ' +
    'what when where which who why will with would you your').split(' '),
);

/** Lower-case word stems, stop words out: what both the index and a query are made of. */
export function terms(text: string): string[] {
  const out: string[] = [];
  for (const w of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
    if (STOP.has(w) || (w.length < 2 && !/\d/.test(w))) continue;
    out.push(stem(w));
  }
  return out;
}

/** A light suffix stripper: enough that `bots`, `writes`, `writing` and `written` meet `bot` and `write`. */
export function stem(w: string): string {
  if (w.length <= 3) return w;
  if (w.endsWith('ies') && w.length > 4) return `${w.slice(0, -3)}y`;
  if (/(ss|us|is)$/.test(w)) return w;
  if (/(xes|ches|shes|sses)$/.test(w)) return w.slice(0, -2);
  if (w.endsWith('ing') && w.length > 5) return w.slice(0, -3);
  if (w.endsWith('ed') && w.length > 4) return w.slice(0, -2);
  if (w.endsWith('en') && w.length > 5) return w.slice(0, -2);
  // `scales` and `scale` meet `scaling` and `scaled` at `scal`.
  if (w.endsWith('es') && w.length > 4) return w.slice(0, -2);
  if (w.endsWith('s')) return w.slice(0, -1);
  return w.endsWith('e') ? w.slice(0, -1) : w;
}

const MAX_PASSAGE = 900;

/** Cuts a markdown document into passages: one per section, long sections at paragraph boundaries. */
export function passagesOf(file: string, markdown: string): Passage[] {
  const out: Passage[] = [];
  const path: string[] = [];
  let body: string[] = [];
  const flush = () => {
    // The document's title (its one `#` heading) names the passages before its first section only.
    const heading = path.slice(1).filter(Boolean).join(' › ') || path[0] || file;
    let chunk = '';
    for (const para of body.join('\n').split(/\n\s*\n/)) {
      const p = para.trim();
      if (!p) continue;
      if (chunk && chunk.length + p.length > MAX_PASSAGE) {
        out.push({ file, heading, text: chunk });
        chunk = '';
      }
      chunk = chunk ? `${chunk}\n\n${p}` : p;
    }
    if (chunk) out.push({ file, heading, text: chunk });
    body = [];
  };
  let fence = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fence = !fence;
    const h = fence ? null : /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (h) {
      flush();
      path.length = h[1]!.length - 1;
      path.push(h[2]!.replace(/`/g, ''));
      continue;
    }
    body.push(line);
  }
  flush();
  return out;
}

/** Okapi BM25 (k1 1.2, b 0.75), with a passage's headings counted as part of its text, twice. */
export class DocIndex {
  readonly passages: readonly Passage[];
  readonly #postings = new Map<string, { doc: number; tf: number }[]>();
  readonly #lengths: number[] = [];
  readonly #avgLength: number;

  constructor(passages: readonly Passage[]) {
    this.passages = passages;
    passages.forEach((p, doc) => {
      const heading = terms(p.heading);
      const words = [...heading, ...heading, ...heading, ...terms(p.text)];
      this.#lengths.push(words.length);
      const tf = new Map<string, number>();
      for (const w of words) tf.set(w, (tf.get(w) ?? 0) + 1);
      for (const [w, n] of tf) {
        let list = this.#postings.get(w);
        if (!list) this.#postings.set(w, (list = []));
        list.push({ doc, tf: n });
      }
    });
    this.#avgLength = this.#lengths.reduce((a, b) => a + b, 0) / Math.max(1, passages.length);
  }

  get size(): number {
    return this.passages.length;
  }

  /** The best `k` passages for `query`, best first; none when no word of it is in the corpus. */
  search(query: string, k = 3): Hit[] {
    const n = this.passages.length;
    const scores = new Map<number, number>();
    for (const w of new Set(terms(query))) {
      const list = this.#postings.get(w);
      if (!list) continue;
      const idf = Math.log(1 + (n - list.length + 0.5) / (list.length + 0.5));
      for (const { doc, tf } of list) {
        const norm = tf + 1.2 * (1 - 0.75 + (0.75 * this.#lengths[doc]!) / this.#avgLength);
        scores.set(doc, (scores.get(doc) ?? 0) + (idf * tf * 2.2) / norm);
      }
    }
    return [...scores]
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .slice(0, k)
      .map(([doc, score]) => ({ passage: this.passages[doc]!, score }));
  }
}

/** Every `*.md` file of `dir`, indexed. */
export async function loadDocIndex(dir: string): Promise<DocIndex> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.md')).sort();
  const passages: Passage[] = [];
  for (const file of files) passages.push(...passagesOf(file, await readFile(join(dir, file), 'utf8')));
  return new DocIndex(passages);
}

/** Where a passage comes from, as a reader would look for it: `README.md › Writing a bot`. */
export function sourceOf(p: Passage): string {
  return p.heading === p.file ? p.file : `${p.file} › ${p.heading}`;
}
