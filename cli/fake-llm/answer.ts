// What the fake model says: a deterministic function of the messages, sensible enough for a demo. It
// restates the question and answers it with the sentences of the context (system messages) that share
// the most words with it, citing the passage they came from when the context numbers its passages
// (`[1] source` on a line of its own, as functions/llm writes it).

export interface FakeMessage {
  role: string;
  content: string;
}

const STOP = new Set(
  'a an and are as at be but by can do does for from how i if in into is it its me my of on or so that the their then there these this to was what when where which who why will with you your'.split(' '),
);

/** Lower-case content words, as the fake compares question and context. */
export function words(text: string): string[] {
  return (text.toLowerCase().match(/[a-z0-9][a-z0-9_-]*/g) ?? []).filter((w) => !STOP.has(w) && w.length > 1);
}

interface Passage {
  cite: string | undefined;
  text: string;
}

/** The context's passages: `[n] …` blocks when it has them, else its paragraphs. */
function passages(context: string): Passage[] {
  const blocks = context.split(/^(?=\[\d+\][^\n]*$)/m);
  const numbered = blocks.filter((b) => /^\[\d+\]/.test(b));
  if (numbered.length) {
    return numbered.map((b) => {
      const nl = b.indexOf('\n');
      return { cite: /^\[(\d+)\]/.exec(b)![0], text: nl < 0 ? '' : b.slice(nl + 1) };
    });
  }
  return context.split(/\n\s*\n/).map((text) => ({ cite: undefined, text }));
}

function sentences(text: string): string[] {
  return text
    .replace(/```[\s\S]*?```/g, ' ')
    .replace(/^#+\s.*$/gm, ' ')
    .replace(/[*`>|]/g, '')
    .split(/(?<=[.!?])\s+|\n\s*\n|\n(?=\s*[-\d])/)
    .map((s) => s.replace(/\s+/g, ' ').replace(/^[-\d.)\s]+/, '').trim())
    .filter((s) => s.length > 20);
}

function overlap(a: Set<string>, text: string): number {
  let n = 0;
  for (const w of new Set(words(text))) if (a.has(w)) n++;
  return n;
}

function quote(text: string, max = 120): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** The answer to the conversation in `messages`. */
export function composeAnswer(messages: readonly FakeMessage[]): string {
  const users = messages.filter((m) => m.role === 'user');
  const question = users.at(-1)?.content ?? '';
  const context = messages
    .filter((m) => m.role === 'system' || m.role === 'developer')
    .map((m) => m.content)
    .join('\n\n');
  const q = new Set(words(question));
  const scored = passages(context).flatMap((p) => sentences(p.text).map((s) => ({ s, cite: p.cite, score: overlap(q, s) })));
  const best = scored
    .filter((x) => x.score > 0)
    .sort((a, b) => b.score - a.score)
    .slice(0, 2);
  const parts: string[] = [];
  if (best.length) {
    parts.push(`You asked: "${quote(question)}".`);
    for (const b of best) parts.push(`${b.s}${b.cite ? ` ${b.cite}` : ''}`);
  } else {
    parts.push(`You said: "${quote(question)}".`);
    parts.push(context ? 'The context I was given says nothing about that.' : 'I am a fake model for trying knbot: I answer from the context a bot gives me, and I was given none.');
  }
  if (users.length > 1) parts.push(`(Message ${users.length} of this conversation; it began with "${quote(users[0]!.content, 60)}".)`);
  return parts.join(' ');
}

/** The pieces the answer streams in: a word with the space before it, as tokens often are. */
export function pieces(text: string): string[] {
  return text.match(/\s*\S+/g) ?? [];
}

/** Prompt tokens as the fake counts them: words and punctuation, plus OpenAI's 3 per message and 3 to prime the answer. */
export function promptTokens(messages: readonly FakeMessage[]): number {
  return messages.reduce((n, m) => n + 3 + (m.content.match(/\w+|[^\s\w]/g)?.length ?? 0), 3);
}
