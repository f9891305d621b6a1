import { resolve } from 'node:path';
import { type TurnContext, defineBot } from 'knbot';
import { type Llm, LlmError, type LlmMessage, createLlm } from 'knbot/llm';
import { type DocIndex, type Hit, loadDocIndex, sourceOf } from 'knbot/search';

let llm: Llm;
let docs: DocIndex;

interface Turn {
  role: 'user' | 'assistant';
  content: string;
}

const INSTRUCTIONS =
  "You are the assistant of knbot, a serverless chatbot runtime for Knative. Answer in a few sentences, from the numbered passages of knbot's documentation below when they cover the question, and cite them like [1]. When they do not, say so and answer briefly from what you know.";

/**
 * A conversation with a language model, streamed as it writes, remembering the last turns in the
 * session, and grounded in knbot's documentation: the faq bot's index, searched for each message.
 */
export default defineBot({
  async init(ctx) {
    llm = createLlm(ctx);
    docs = await loadDocIndex(resolve(import.meta.dirname, String(ctx.config.corpus ?? '../faq/corpus')));
    const { model, baseUrl } = llm.settings;
    ctx.log.info('llm bot ready', { model, endpoint: new URL(baseUrl).host, passages: docs.size });
  },

  onMessage(msg, ctx) {
    const history = Array.isArray(ctx.session.state.history) ? (ctx.session.state.history as Turn[]) : [];
    const hits = retrieve(msg.text, history);
    const messages: LlmMessage[] = [{ role: 'system', content: context(hits) }, ...history, { role: 'user', content: msg.text }];
    return answer(messages, hits, history, msg.text, ctx);
  },
});

/** Passages for the message; for a follow-up that finds nothing alone, with the previous question. */
function retrieve(text: string, history: Turn[]): Hit[] {
  const hits = docs.search(text, 3);
  const previous = history.findLast((t) => t.role === 'user');
  const found = hits.length || !previous ? hits : docs.search(`${previous.content} ${text}`, 3);
  return found.filter((h) => h.score >= found[0]!.score * 0.4);
}

function context(hits: Hit[]): string {
  if (!hits.length) return `${INSTRUCTIONS}\n\nNo passage of the documentation matches this question.`;
  return `${INSTRUCTIONS}\n\n${hits.map((h, i) => `[${i + 1}] ${sourceOf(h.passage)}\n${h.passage.text}`).join('\n\n')}`;
}

async function* answer(messages: LlmMessage[], hits: Hit[], history: Turn[], text: string, ctx: TurnContext): AsyncGenerator<string> {
  let reply = '';
  try {
    for await (const piece of llm.stream({ messages }, ctx)) {
      reply += piece;
      yield piece;
    }
  } catch (err) {
    // The client left or the turn was interrupted: nobody to answer.
    if (!(err instanceof LlmError) || err.code === 'aborted') throw err;
    ctx.log.warn('the model did not answer: answering from the docs', { code: err.code, partial: err.partial });
    const fallback = reply ? `\n\n(The model stopped: ${err.code}.)` : fromDocs(hits, err);
    reply += fallback;
    yield fallback;
  }
  if (hits.length) yield `\n\nSources: ${sources(hits)}`;
  const turns = Number(ctx.config.historyTurns ?? 6);
  ctx.session.state.history = [...history, { role: 'user', content: text }, { role: 'assistant', content: reply }].slice(-2 * turns);
}

/** `[1][2] README.md › Writing a bot; [3] llm.md`: passages of one section cited together. */
function sources(hits: Hit[]): string {
  const bySource = new Map<string, string>();
  hits.forEach((h, i) => {
    const source = sourceOf(h.passage);
    bySource.set(source, `${bySource.get(source) ?? ''}[${i + 1}]`);
  });
  return [...bySource].map(([source, cites]) => `${cites} ${source}`).join('; ');
}

function fromDocs(hits: Hit[], err: LlmError): string {
  const why = `The language model is not answering right now (${err.code}).`;
  if (!hits.length) return `${why} Nothing in knbot's documentation matches the question either.`;
  const best = hits[0]!.passage.text;
  return `${why} The documentation says [1]:\n\n${best.length > 600 ? `${best.slice(0, 600).replace(/\s+\S*$/, '')} …` : best}`;
}
