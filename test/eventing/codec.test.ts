import { describe, expect, it } from 'vitest';
import {
  type CloudEvent,
  CloudEventError,
  decodeHeaderValue,
  decodeHttp,
  encodeBatch,
  encodeBinary,
  encodeHeaderValue,
  encodeStructured,
  parseMediaType,
  validateCloudEvent,
} from '../../eventing/index.ts';

const base = { 'ce-specversion': '1.0', 'ce-id': 'A234-1234-1234', 'ce-source': '/mycontext', 'ce-type': 'com.example.someevent' };
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const structured = (event: Record<string, unknown>, ct = 'application/cloudevents+json') => decodeHttp({ 'content-type': ct }, json(event));

function failure(fn: () => unknown): CloudEventError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CloudEventError);
    return e as CloudEventError;
  }
  throw new Error('expected a CloudEventError');
}

describe('media types', () => {
  it.each([
    ['application/cloudevents+json; charset=utf-8', 'application/cloudevents+json', { charset: 'utf-8' }],
    ['Application/CloudEvents+JSON;Charset=UTF-8', 'application/cloudevents+json', { charset: 'UTF-8' }],
    ['text/plain ; charset="us-ascii" ; format=flowed', 'text/plain', { charset: 'us-ascii', format: 'flowed' }],
    ['application/json', 'application/json', {}],
  ])('parses %s', (value, essence, params) => {
    expect(parseMediaType(value)).toMatchObject({ essence, params });
  });

  it.each(['', 'json', '/json', 'application/', 'text/plain; charset', 'text/plain; a=b c', 'text/plain; x="unterminated'])('rejects %j', (value) => {
    expect(parseMediaType(value)).toBeUndefined();
  });

  it('reads structured mode whatever the case and parameters of the media type', () => {
    const event = { specversion: '1.0', id: '1', source: '/s', type: 't', data: { a: 1 } };
    expect(structured(event, 'APPLICATION/CLOUDEVENTS+JSON; CHARSET=utf-8')).toEqual({ mode: 'structured', events: [event] });
  });
});

describe('header values', () => {
  it.each([
    ['plain', 'plain'],
    ['with space', 'with%20space'],
    ['"quoted"', '%22quoted%22'],
    ['100%', '100%25'],
    ['Euro € 😀', 'Euro%20%E2%82%AC%20%F0%9F%98%80'],
  ])('percent-encodes %j as %j and back', (value, encoded) => {
    expect(encodeHeaderValue(value)).toBe(encoded);
    expect(decodeHeaderValue(encoded)).toBe(value);
  });

  it('accepts needlessly encoded and lower-case escapes', () => {
    expect(decodeHeaderValue('%41b%63')).toBe('Abc');
  });

  it('recovers raw UTF-8 bytes as Go senders write them', () => {
    // Node's parser hands header bytes over one char per byte.
    expect(decodeHeaderValue(Buffer.from('café ☕', 'utf8').toString('latin1'))).toBe('café ☕');
  });

  it.each([['%E2%82', 'truncated UTF-8'], ['%zz', 'bad escape'], ['%4', 'short escape'], ['\u00ff\u00fe', 'raw bytes that are not UTF-8']])('rejects %j (%s)', (raw) => {
    expect(decodeHeaderValue(raw)).toBeUndefined();
  });
});

describe('binary mode', () => {
  it('keeps attributes verbatim: no invented id or time, time not re-formatted', () => {
    const { events } = decodeHttp({ ...base, 'ce-time': '2018-04-05T03:56:24.123456789+02:00' }, Buffer.alloc(0));
    expect(events[0]).toEqual({ specversion: '1.0', id: 'A234-1234-1234', source: '/mycontext', type: 'com.example.someevent', time: '2018-04-05T03:56:24.123456789+02:00' });
  });

  it('decodes percent-encoded extension values and keeps data by media type', () => {
    const ev = decodeHttp({ ...base, 'ce-myext': 'a%20b%25', 'content-type': 'text/plain; charset=utf-8' }, Buffer.from('héllo')).events[0]!;
    expect(ev.myext).toBe('a b%');
    expect(ev.data).toBe('héllo');
    expect(decodeHttp({ ...base, 'content-type': 'application/octet-stream' }, Buffer.from([0, 255])).events[0]!.data).toEqual(new Uint8Array([0, 255]));
    expect(decodeHttp({ ...base, 'content-type': 'application/vnd.x+json' }, json([1, 2])).events[0]!.data).toEqual([1, 2]);
  });

  it.each([
    ['missing specversion', { 'ce-id': '1', 'ce-source': '/s', 'ce-type': 't' }, 400, 'missing_attribute', 'specversion'],
    ['unknown specversion', { ...base, 'ce-specversion': '0.3' }, 400, 'unsupported_specversion', 'specversion'],
    ['empty id', { ...base, 'ce-id': '' }, 400, 'empty_attribute', 'id'],
    ['a time that is not RFC 3339', { ...base, 'ce-time': '2018-04-05 03:56:24' }, 400, 'invalid_value', 'time'],
    ['February 30th', { ...base, 'ce-time': '2021-02-30T00:00:00Z' }, 400, 'invalid_value', 'time'],
    ['a relative dataschema', { ...base, 'ce-dataschema': '/schema' }, 400, 'invalid_value', 'dataschema'],
    ['a source with spaces', { ...base, 'ce-source': 'not%20a%20uri' }, 400, 'invalid_value', 'source'],
    ['an extension name with _', { ...base, 'ce-my_ext': 'x' }, 400, 'invalid_extension_name', 'header ce-my_ext'],
    ['an extension name over 20 characters', { ...base, 'ce-abcdefghijklmnopqrstu': 'x' }, 400, 'invalid_extension_name', 'header ce-abcdefghijklmnopqrstu'],
    ['ce-datacontenttype beside Content-Type', { ...base, 'ce-datacontenttype': 'text/plain' }, 400, 'invalid_header', 'header ce-datacontenttype'],
    ['a header that is not UTF-8', { ...base, 'ce-subject': '%C3%28' }, 400, 'invalid_header', 'header ce-subject'],
  ])('rejects %s', (_, headers, status, code, field) => {
    const err = failure(() => decodeHttp(headers, Buffer.alloc(0)));
    expect(err.status).toBe(status);
    expect(err.errors.map((e) => [e.code, e.field])).toContainEqual([code, field]);
  });

  it('rejects JSON data that is not JSON, and text that is not UTF-8', () => {
    expect(failure(() => decodeHttp({ ...base, 'content-type': 'application/json' }, Buffer.from('{nope'))).code).toBe('invalid_data');
    expect(failure(() => decodeHttp({ ...base, 'content-type': 'text/plain' }, Buffer.from([0xc3, 0x28]))).code).toBe('invalid_data');
  });

  it('answers a request that is no CloudEvent with 415, an empty one with 400', () => {
    expect(failure(() => decodeHttp({ 'content-type': 'application/json' }, json({ a: 1 }))).status).toBe(415);
    expect(failure(() => decodeHttp({}, Buffer.alloc(0))).code).toBe('empty_body');
  });

  it('writes every attribute as a percent-encoded header and datacontenttype as Content-Type', () => {
    const msg = encodeBinary({ specversion: '1.0', id: 'x', source: '/s', type: 't', subject: 'a "b" 100%', datacontenttype: 'text/plain', data: 'hi', count: 3, flag: true });
    expect(msg.headers).toEqual({
      'ce-specversion': '1.0', 'ce-id': 'x', 'ce-source': '/s', 'ce-type': 't', 'ce-subject': 'a%20%22b%22%20100%25',
      'ce-count': '3', 'ce-flag': 'true', 'content-type': 'text/plain',
    });
    expect(msg.body.toString()).toBe('hi');
  });
});

describe('structured mode', () => {
  const ok = { specversion: '1.0', id: '1', source: '/s', type: 't' };

  it('treats null attributes as absent and keeps explicit null JSON data', () => {
    expect(structured({ ...ok, subject: null, data: null }).events[0]).toEqual({ ...ok, data: null });
  });

  it('decodes data_base64 to bytes and encodes bytes back to data_base64', () => {
    const ev = structured({ ...ok, datacontenttype: 'image/png', data_base64: 'AAEC/w==' }).events[0]!;
    expect(ev.data).toEqual(new Uint8Array([0, 1, 2, 255]));
    expect(JSON.parse(encodeStructured(ev).body.toString())).toEqual({ ...ok, datacontenttype: 'image/png', data_base64: 'AAEC/w==' });
  });

  it('keeps a JSON string as a string, never parsing it again', () => {
    expect(structured({ ...ok, datacontenttype: 'application/json', data: '{"a":1}' }).events[0]!.data).toBe('{"a":1}');
  });

  it.each([
    ['an id that is a number', { ...ok, id: 5 }, 'invalid_type', 'id'],
    ['both data and data_base64', { ...ok, data: 'x', data_base64: 'eA==' }, 'invalid_format', 'data_base64'],
    ['data_base64 that is not base64', { ...ok, data_base64: 'not base64!' }, 'invalid_format', 'data_base64'],
    ['an extension that is an object', { ...ok, ext: { a: 1 } }, 'invalid_type', 'ext'],
    ['an integer extension past 32 bits', { ...ok, ext: 2 ** 31 }, 'invalid_type', 'ext'],
    ['a fractional extension', { ...ok, ext: 1.5 }, 'invalid_type', 'ext'],
    ['an upper-case extension name', { ...ok, Ext: 'x' }, 'invalid_extension_name', 'Ext'],
    ['object data for text/plain', { ...ok, datacontenttype: 'text/plain', data: { a: 1 } }, 'invalid_format', 'data'],
  ])('rejects %s', (_, event, code, field) => {
    const err = failure(() => structured(event));
    expect(err.status).toBe(400);
    expect(err.errors.map((e) => [e.code, e.field])).toContainEqual([code, field]);
  });

  it.each([
    ['a format that is not JSON', 'application/cloudevents+xml', 'unsupported_format'],
    ['a charset that is not UTF-8', 'application/cloudevents+json; charset=latin1', 'unsupported_charset'],
  ])('answers %s with 415', (_, ct, code) => {
    const err = failure(() => structured(ok, ct));
    expect([err.status, err.code]).toEqual([415, code]);
  });

  it('answers malformed JSON and an empty body with 400', () => {
    expect(failure(() => decodeHttp({ 'content-type': 'application/cloudevents+json' }, Buffer.from('{"id":'))).code).toBe('malformed_json');
    expect(failure(() => decodeHttp({ 'content-type': 'application/cloudevents+json' }, Buffer.alloc(0))).code).toBe('empty_body');
  });
});

describe('batch mode', () => {
  const ev = (id: string): CloudEvent => ({ specversion: '1.0', id, source: '/s', type: 't', data: { n: id } });

  it('decodes and encodes a batch, the empty one too', () => {
    const msg = encodeBatch([ev('1'), ev('2')]);
    expect(msg.headers['content-type']).toBe('application/cloudevents-batch+json; charset=utf-8');
    expect(decodeHttp(msg.headers, msg.body)).toEqual({ mode: 'batch', events: [ev('1'), ev('2')] });
    expect(decodeHttp({ 'content-type': 'application/cloudevents-batch+json' }, Buffer.from('[]')).events).toEqual([]);
  });

  it('names the event of a batch that is invalid', () => {
    const err = failure(() => decodeHttp({ 'content-type': 'application/cloudevents-batch+json' }, json([ev('1'), { ...ev('2'), id: '' }])));
    expect(err.errors[0]!.field).toBe('[1].id');
  });

  it('rejects a batch that is not an array', () => {
    expect(failure(() => decodeHttp({ 'content-type': 'application/cloudevents-batch+json' }, json(ev('1')))).status).toBe(400);
  });
});

describe('validateCloudEvent', () => {
  it('accepts a leap second and a leap day, and integer and boolean extensions', () => {
    expect(validateCloudEvent({ specversion: '1.0', id: '1', source: 'urn:x', type: 't', time: '2016-12-31T23:59:60Z', n: -5, b: false })).toEqual([]);
    expect(validateCloudEvent({ specversion: '1.0', id: '1', source: '/s', type: 't', time: '2024-02-29T00:00:00.5-05:30' })).toEqual([]);
  });
});
