import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DocIndex, loadDocIndex, passagesOf, sourceOf, terms } from '../../runtime/search.ts';
import { parseManifest } from '../../knative/manifest.ts';
import { type Pod, jsonOf, startPod, waitFor } from '../pod.ts';
import { ROOT } from '../shared.ts';

const FAQ = join(ROOT, 'functions', 'faq');
const chat = (text: string, conversation = 'c1') => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ conversation, text }) });

describe('the documentation index', () => {
  it('cuts markdown at headings into passages named by their path under the title, code fences left whole', () => {
    const md = ['# Title', 'intro', '## Alpha', 'alpha text', '```sh', '# not a heading', '```', '### Deep', 'deep text', '## Beta', 'beta text'].join('\n');
    expect(passagesOf('doc.md', md).map((p) => [p.heading, p.text])).toEqual([
      ['Title', 'intro'],
      ['Alpha', 'alpha text\n```sh\n# not a heading\n```'],
      ['Alpha › Deep', 'deep text'],
      ['Beta', 'beta text'],
    ]);
  });

  it('splits a long section at paragraphs', () => {
    const para = (c: string) => c.repeat(500);
    const parts = passagesOf('doc.md', `## Long\n${para('a')}\n\n${para('b')}\n\n${para('c')}`);
    expect(parts.map((p) => p.text[0])).toEqual(['a', 'b', 'c']);
    expect(parts.every((p) => p.heading === 'Long')).toBe(true);
  });

  it('matches word forms and ignores stop words', () => {
    expect(terms('How do I write bots?')).toEqual(terms('writing bot'));
    expect(terms('the scaled scales')).toEqual(terms('scaling scale'));
  });

  it('ranks the passage that is about the question first (BM25)', () => {
    const index = new DocIndex([
      { file: 'a.md', heading: 'Scaling', text: 'Bots scale to zero when idle; min-scale keeps warm instances for a slow init.' },
      { file: 'a.md', heading: 'Webhooks', text: 'Slack signatures are checked on the raw body; bots never see a bad one.' },
      { file: 'b.md', heading: 'Bots', text: 'A bot is a folder with index.ts and bot.yaml. Bots bots bots.' },
    ]);
    expect(index.search('how do bots scale to zero?').map((h) => h.passage.heading)).toEqual(['Scaling', 'Bots', 'Webhooks']);
    expect(index.search('how do bots scale to zero?', 1)).toHaveLength(1);
    expect(index.search('slack signature')[0]!.passage.heading).toBe('Webhooks');
    expect(index.search('kubernetes quantum')).toEqual([]);
  });

  it('finds knbot\'s own docs in the bundled corpus', async () => {
    const index = await loadDocIndex(join(FAQ, 'corpus'));
    const best = (q: string) => sourceOf(index.search(q, 1)[0]!.passage);
    expect(best('how do I write a bot')).toBe('README.md › Writing a bot');
    expect(best('what does the circuit breaker do when the endpoint is down')).toBe('llm.md › Retries, timeouts, limits and the circuit breaker');
    expect(best('how do I make the fake model answer 429')).toBe('fake-llm.md › Failures on demand');
  });

  it('keeps one warm instance, because its init is slow (bot.yaml)', () => {
    const m = parseManifest(readFileSync(join(FAQ, 'bot.yaml'), 'utf8'), 'bot.yaml');
    expect(m.deploy.scale.min).toBe(1);
    expect(m.bot.config.warmupMs).toBeGreaterThanOrEqual(1000);
  });
});

describe('the faq bot in a pod', () => {
  let pod: Pod;
  let started: number;
  beforeAll(async () => {
    started = Date.now();
    pod = await startPod(FAQ);
  });
  afterAll(() => pod.stop());

  it('is not ready until its index is built and warmed', async () => {
    expect((await fetch(`${pod.url}/health/readiness`)).status).toBe(503);
    await waitFor(() => fetch(`${pod.url}/health/readiness`).then((r) => r.ok), 'readiness');
    expect(Date.now() - started).toBeGreaterThanOrEqual(2500);
    const metrics = await (await fetch(`${pod.url}/metrics`)).text();
    expect(Number(/^knbot_init_duration_seconds_sum\{bot="faq"\} (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThanOrEqual(2.5);
    expect(pod.logs().find((l) => l.msg === 'faq index ready')).toMatchObject({ passages: expect.any(Number) });
  });

  it('answers with the best passages and their sources', async () => {
    const res = await fetch(`${pod.url}/v1/chat`, chat('How do I write a bot?'));
    expect(res.status).toBe(200);
    const body = await jsonOf(res);
    expect(body.sources[0]).toMatchObject({ source: 'README.md › Writing a bot', score: expect.any(Number) });
    expect(body.text).toContain('(source: README.md › Writing a bot)');
    expect(body.sources.every((x: { score: number }) => x.score >= body.sources[0].score * 0.5)).toBe(true);
  });

  it('says so when nothing in the docs matches', async () => {
    const body = await jsonOf(await fetch(`${pod.url}/v1/chat`, chat('zebra quokka marmalade')));
    expect(body.sources).toEqual([]);
    expect(body.text).toMatch(/found nothing about that/);
  });

  it('answers a chat CloudEvent with a reply event carrying the sources', async () => {
    const res = await fetch(`${pod.url}/`, {
      method: 'POST',
      headers: { 'ce-specversion': '1.0', 'ce-id': 'q1', 'ce-source': '/test', 'ce-type': 'dev.knbot.chat.message.received', 'ce-subject': 'c9', 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'how do I deploy to a cluster?' }),
    });
    expect(res.headers.get('ce-type')).toBe('dev.knbot.chat.reply.send');
    const data = await jsonOf(res);
    expect(data.sources[0].source).toBe('README.md › On a cluster: render, deploy, the image');
    expect(data.text).toContain('(source: README.md › On a cluster: render, deploy, the image)');
  });
});
