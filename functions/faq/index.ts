import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { defineBot } from 'knbot';
import { type DocIndex, type Hit, loadDocIndex, sourceOf } from 'knbot/search';

let index: DocIndex;

/**
 * Answers questions about knbot with the best passages of its documentation (BM25 over the markdown in
 * `corpus/`) and where they come from. Its start-up is slow on purpose (`bot.config.warmupMs` stands in
 * for loading an embedding model or a large index), which is why its bot.yaml keeps one instance warm.
 */
export default defineBot({
  async init(ctx) {
    const t0 = performance.now();
    index = await loadDocIndex(resolve(import.meta.dirname, String(ctx.config.corpus ?? 'corpus')));
    const warmupMs = Number(ctx.config.warmupMs ?? 0);
    if (warmupMs > 0) await sleep(warmupMs, undefined, { signal: ctx.signal });
    ctx.log.info('faq index ready', { passages: index.size, ms: Math.round(performance.now() - t0) });
  },

  onMessage(msg, ctx) {
    const topK = Number(ctx.config.topK ?? 2);
    const hits = index.search(msg.text, topK);
    // Passages far below the best one are noise.
    const kept = hits.filter((h) => h.score >= hits[0]!.score * 0.5);
    if (!kept.length) {
      return { text: `I found nothing about that in knbot's documentation. Try asking about bots, scaling, the gateway, CloudEvents, routing or deploying.`, sources: [] };
    }
    return {
      text: kept.map(format).join('\n\n'),
      sources: kept.map((h) => ({ source: sourceOf(h.passage), score: Number(h.score.toFixed(3)) })),
    };
  },
});

const MAX_SHOWN = 700;

function format(h: Hit): string {
  const text = h.passage.text.length > MAX_SHOWN ? `${h.passage.text.slice(0, MAX_SHOWN).replace(/\s+\S*$/, '')} …` : h.passage.text;
  return `${text}\n\n(source: ${sourceOf(h.passage)})`;
}
