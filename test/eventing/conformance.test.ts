// The CloudEvents conformance data (github.com/cloudevents/conformance), driven from ../shared:
// every scenario of http-protocol-binding.feature and every event of v1.yaml and v1_minimum.yaml.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FAILSAFE_SCHEMA, loadAll } from 'js-yaml';
import { type CloudEvent, decodeHttp, encodeBinary, encodeStructured } from '../../eventing/index.ts';
import { sharedDir } from '../shared.ts';

const shared = sharedDir();

interface Scenario {
  name: string;
  request: string;
  attributes: Record<string, string>;
  dataJson: string;
}

/** Expands the Gherkin scenario outlines: one scenario per Examples row, `<name>` placeholders filled. */
function scenarios(feature: string): Scenario[] {
  const out: Scenario[] = [];
  for (const block of feature.split(/\n\s*Scenario Outline: /).slice(1)) {
    const title = block.slice(0, block.indexOf('\n'));
    const docs = [...block.matchAll(/"""\n([\s\S]*?)\n\s*"""/g)].map((m) => dedent(m[1]!));
    const attrTable = /Then the attributes are:\n([\s\S]*?)\n\s*And/.exec(block)![1]!;
    const examples = block.slice(block.indexOf('Examples:'));
    const rows = examples.split('\n').slice(1).map((l) => l.trim()).filter((l) => l.startsWith('|')).map(cells);
    const [header, ...values] = rows;
    for (const row of values) {
      const fill = (s: string) => header!.reduce((acc, h, i) => acc.replaceAll(`<${h}>`, row[i]!), s);
      const attributes: Record<string, string> = {};
      for (const [k, v] of attrTable.split('\n').map((l) => cells(l.trim())).slice(1)) attributes[k!] = fill(v!);
      out.push({ name: fill(title), request: fill(docs[0]!), attributes, dataJson: docs[1]! });
    }
  }
  return out;
}

function cells(line: string): string[] {
  return line.split('|').slice(1, -1).map((c) => c.trim());
}

function dedent(text: string): string {
  const lines = text.split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => /^ */.exec(l)![0].length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

/** A raw HTTP/1.1 request as text → lower-cased headers and the body bytes. */
function parseRequest(text: string): { headers: Record<string, string>; body: Buffer } {
  const [head, ...rest] = text.split('\n\n');
  const headers: Record<string, string> = {};
  for (const line of head!.split('\n').slice(1)) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { headers, body: Buffer.from(rest.join('\n\n')) };
}

describe.skipIf(!shared)('conformance: http-protocol-binding.feature', () => {
  const all = shared ? scenarios(readFileSync(join(shared, 'cloudevents/conformance/http-protocol-binding.feature'), 'utf8')) : [];

  it('finds the four scenarios of the feature file', () => {
    expect(all.map((s) => s.name)).toEqual([
      'Binary content mode (application/json)',
      'Binary content mode (application/json; charset=utf-8)',
      'Structured content mode (application/cloudevents+json)',
      'Structured content mode (application/cloudevents+json; charset=utf-8)',
    ]);
  });

  it.each(all.map((s) => [s.name, s] as const))('%s', (_, s) => {
    const { headers, body } = parseRequest(s.request);
    const { events } = decodeHttp(headers, body);
    expect(events).toHaveLength(1);
    const event = events[0]!;
    const { data, ...attributes } = event;
    expect(attributes).toEqual(s.attributes);
    expect(data).toEqual(JSON.parse(s.dataJson));
  });
});

interface YamlEvent {
  Mode?: 'binary' | 'structured';
  ContextAttributes: Record<string, unknown> & { Extensions?: Record<string, unknown> };
  TransportExtensions?: Record<string, string>;
  Data: string;
}

function loadYaml(file: string): YamlEvent[] {
  // Every scalar a string (1.0 stays "1.0"), as the conformance tool reads them.
  return (loadAll(readFileSync(join(shared!, 'cloudevents/conformance', file), 'utf8'), null, { schema: FAILSAFE_SCHEMA }) as YamlEvent[]).filter(Boolean);
}

function attributesOf(y: YamlEvent): Record<string, string> {
  const { Extensions, ...core } = y.ContextAttributes;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...core, ...Extensions })) out[k] = String(v);
  return out;
}

/** The request the conformance tool sends for an event in a mode: binary headers + data bytes, or the JSON format. */
function request(y: YamlEvent, mode: 'binary' | 'structured'): { headers: Record<string, string>; body: Buffer } {
  const attrs = attributesOf(y);
  const headers: Record<string, string> = { ...y.TransportExtensions };
  if (mode === 'binary') {
    for (const [k, v] of Object.entries(attrs)) {
      if (k === 'datacontenttype') headers['content-type'] = v;
      else headers[`ce-${k}`] = v.replace(/[^\x21-\x7e]|["%]/gu, (c) => [...Buffer.from(c)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
    }
    return { headers, body: Buffer.from(y.Data) };
  }
  headers['content-type'] = 'application/cloudevents+json';
  return { headers, body: Buffer.from(JSON.stringify({ ...attrs, data: expectedData(y, 'structured') })) };
}

/** What `data` must decode to: JSON content (declared, or implied in structured mode) as a value, text as a string, else bytes. */
function expectedData(y: YamlEvent, mode: 'binary' | 'structured'): unknown {
  const ct = y.ContextAttributes.datacontenttype as string | undefined;
  if (ct === undefined) return mode === 'binary' ? new Uint8Array(Buffer.from(y.Data)) : JSON.parse(y.Data);
  if (/json/.test(ct)) return JSON.parse(y.Data);
  return y.Data;
}

describe.skipIf(!shared)('conformance: v1.yaml and v1_minimum.yaml', () => {
  const cases = shared
    ? ['v1.yaml', 'v1_minimum.yaml'].flatMap((file) =>
        loadYaml(file).flatMap((y, i) =>
          (y.Mode ? [y.Mode] : (['binary', 'structured'] as const)).map((mode) => [`${file} #${i + 1} ${mode}`, y, mode] as const),
        ),
      )
    : [];

  it('reads the 2 + 6 events of the two files', () => {
    expect(new Set(cases.map((c) => c[0].split(' ').slice(0, 2).join(' '))).size).toBe(8);
  });

  it.each(cases)('%s decodes to its attributes and data', (_, y, mode) => {
    const { headers, body } = request(y, mode);
    const { events } = decodeHttp(headers, body);
    const { data, ...attrs } = events[0]!;
    expect(attrs).toEqual(attributesOf(y));
    expect(data).toEqual(expectedData(y, mode));
  });

  it.each(cases)('%s survives encode → decode in both modes', (_, y, mode) => {
    const event = decodeHttp(...(Object.values(request(y, mode)) as [Record<string, string>, Buffer])).events[0]!;
    for (const encode of [encodeBinary, encodeStructured]) {
      const msg = encode(event);
      const back = decodeHttp(msg.headers, msg.body).events[0]!;
      if (event.datacontenttype === undefined && encode === encodeBinary && !(event.data instanceof Uint8Array)) {
        // Binary mode has no way to say "JSON by default": the encoder writes the implied application/json.
        expect(back).toEqual({ ...event, datacontenttype: 'application/json' } satisfies CloudEvent);
      } else expect(back).toEqual(event);
    }
  });
});
