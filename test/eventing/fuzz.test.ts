// Properties of the codec over thousands of generated events and requests: encode∘decode is the
// identity on valid events in every mode, and any input gives events or a CloudEventError, never a throw.
import * as fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CloudEvent,
  CloudEventError,
  decodeHttp,
  encodeBatch,
  encodeBinary,
  encodeStructured,
  validateCloudEvent,
} from '../../eventing/index.ts';
import { ECHO, type Pod, startPod } from '../pod.ts';

const CORE = new Set(['id', 'source', 'specversion', 'type', 'datacontenttype', 'dataschema', 'subject', 'time', 'data']);
const text = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 });
const uriChars = fc.constantFrom(...'abcXYZ019-._~:/?#[]@!$&\'()*+,;='.split(''), '%20', '%C3%A9');
const uriReference = fc.array(uriChars, { minLength: 1, maxLength: 20 }).map((a) => a.join(''));
const pad = (n: number, w = 2) => String(n).padStart(w, '0');
const timestamp = fc
  .record({
    date: fc.date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }),
    frac: fc.option(fc.stringMatching(/^[0-9]{1,9}$/), { nil: undefined }),
    zone: fc.constantFrom('Z', 'z', '+00:00', '-05:30', '+14:00'),
  })
  .map(({ date: d, frac, zone }) =>
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${frac ? `.${frac}` : ''}${zone}`,
  );
const extName = fc.stringMatching(/^[a-z0-9]{1,20}$/).filter((n) => !CORE.has(n));
const stringExt = fc.string({ unit: 'grapheme', maxLength: 20 });
const anyExt = fc.oneof(stringExt, fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.boolean());

// JSON has no -0 (it serializes as 0): data is what JSON can carry.
const jsonData = fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown);

type DataCase = { datacontenttype?: string; data?: unknown };
// Binary mode cannot tell empty data from none: generated text and bytes are never empty.
const dataCase: fc.Arbitrary<DataCase> = fc.oneof(
  fc.constant({}),
  fc.constant({ datacontenttype: 'application/json' }),
  jsonData.map((data) => ({ datacontenttype: 'application/json; charset=utf-8', data })),
  jsonData.map((data) => ({ datacontenttype: 'application/vnd.knbot+json', data })),
  fc.string({ unit: 'grapheme', minLength: 1 }).map((data) => ({ datacontenttype: 'text/plain; charset=utf-8', data })),
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map((data) => ({ datacontenttype: 'application/octet-stream', data })),
);

function eventArb(extValue: fc.Arbitrary<unknown>): fc.Arbitrary<CloudEvent> {
  return fc
    .record(
      {
        id: text,
        source: uriReference,
        type: text,
        subject: text,
        time: timestamp,
        dataschema: uriReference.map((u) => `https://example.com/${u}`),
        ext: fc.dictionary(extName, extValue, { maxKeys: 4 }),
        dataCase,
      },
      { requiredKeys: ['id', 'source', 'type', 'ext', 'dataCase'] },
    )
    .map(({ ext, dataCase: d, ...attrs }) => ({ specversion: '1.0', ...attrs, ...ext, ...d }) as CloudEvent);
}

const decode = (msg: { headers: Record<string, string>; body: Buffer }) => decodeHttp(msg.headers, msg.body);

describe('encode∘decode is the identity on valid events', () => {
  it('binary mode (string extensions: headers carry no types)', () => {
    fc.assert(
      fc.property(eventArb(stringExt), (event) => {
        expect(validateCloudEvent(event)).toEqual([]);
        expect(decode(encodeBinary(event))).toEqual({ mode: 'binary', events: [event] });
      }),
      { numRuns: 2000 },
    );
  });

  it('structured mode, JSON data implied by an absent datacontenttype too', () => {
    const implied = fc.record({ e: eventArb(anyExt), data: jsonData }).map(({ e, data }) => {
      const { datacontenttype: _, ...rest } = e;
      return { ...rest, data } as CloudEvent;
    });
    fc.assert(
      fc.property(fc.oneof(eventArb(anyExt), implied), (event) => {
        expect(decode(encodeStructured(event))).toEqual({ mode: 'structured', events: [event] });
      }),
      { numRuns: 2000 },
    );
  });

  it('batch mode', () => {
    fc.assert(
      fc.property(fc.array(eventArb(anyExt), { maxLength: 5 }), (events) => {
        expect(decode(encodeBatch(events))).toEqual({ mode: 'batch', events });
      }),
      { numRuns: 500 },
    );
  });
});

/** A valid message, then broken in one of the ways senders break them. */
const mutatedRequest = fc
  .record({
    event: eventArb(anyExt),
    mode: fc.constantFrom('binary', 'structured', 'batch'),
    mutation: fc.constantFrom('drop-header', 'set-header', 'content-type', 'truncate', 'flip', 'replace-body', 'none'),
    header: fc.constantFrom('ce-specversion', 'ce-id', 'ce-source', 'ce-type', 'ce-time', 'ce-bad_name', 'ce-x', 'content-type', 'ce-datacontenttype'),
    value: fc.string({ unit: 'binary', maxLength: 12 }).map((s) => Buffer.from(s).toString('latin1')),
    contentType: fc.constantFrom('', 'application/json', 'application/cloudevents+json', 'application/cloudevents-batch+json', 'application/cloudevents+xml', 'text/plain; charset=latin1', 'nonsense', 'a/b; c'),
    body: fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.json().map((j) => new Uint8Array(Buffer.from(j)))),
    at: fc.nat(),
  })
  .map((r) => {
    const msg = r.mode === 'binary' ? encodeBinary(r.event) : r.mode === 'structured' ? encodeStructured(r.event) : encodeBatch([r.event]);
    const headers: Record<string, string> = { ...msg.headers };
    let body: Uint8Array = msg.body;
    switch (r.mutation) {
      case 'drop-header': delete headers[r.header]; break;
      case 'set-header': headers[r.header] = r.value; break;
      case 'content-type': headers['content-type'] = r.contentType; break;
      case 'truncate': body = body.subarray(0, r.at % (body.length + 1)); break;
      case 'flip': if (body.length) { body = Uint8Array.from(body); body[r.at % body.length]! ^= 0xff; } break;
      case 'replace-body': body = r.body; break;
    }
    return { headers, body: Buffer.from(body) };
  });

describe('invalid input gives an error, never a throw', () => {
  it('the codec answers every mutated request with events that validate or a CloudEventError', () => {
    fc.assert(
      fc.property(mutatedRequest, ({ headers, body }) => {
        let events: CloudEvent[];
        try {
          events = decodeHttp(headers, body).events;
        } catch (e) {
          expect(e).toBeInstanceOf(CloudEventError);
          expect([400, 415]).toContain((e as CloudEventError).status);
          return;
        }
        for (const ev of events) expect(validateCloudEvent(ev)).toEqual([]);
      }),
      { numRuns: 5000 },
    );
  });

  describe('the pod server under the same requests', () => {
    let pod: Pod;
    beforeAll(async () => {
      pod = await startPod(ECHO);
    });
    afterAll(() => pod.stop());

    it('answers each with a reply, 202 or a problem (400/415), and stays up', async () => {
      const samples = fc.sample(mutatedRequest, { numRuns: 1000, seed: 4242 });
      const seen = new Map<number, number>();
      for (const { headers, body } of samples) {
        const res = await fetch(`${pod.url}/`, { method: 'POST', headers: Object.fromEntries(Object.entries(headers).filter(([, v]) => /^[\t\x20-\x7e\x80-\xff]*$/.test(v))), body });
        seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
        const text = await res.text();
        if (res.status >= 400) expect(JSON.parse(text)).toMatchObject({ status: res.status, title: expect.any(String), detail: expect.any(String) });
      }
      expect([...seen.keys()].filter((s) => ![200, 202, 400, 415].includes(s))).toEqual([]);
      expect(seen.get(400)).toBeGreaterThan(50);
      expect((await fetch(`${pod.url}/health/readiness`)).status).toBe(200);
    });
  });
});
