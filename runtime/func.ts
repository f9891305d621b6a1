import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { type CloudEvent, encodeBinary } from '../eventing/codec.ts';
import type { FuncModule } from './load.ts';
import type { Logger } from './log.ts';

// Knative func compatibility: a module written for func's Node templates runs unchanged. The context
// and the return-value rules follow faas-js-runtime, the runtime those templates are written for.

export type FuncResult = { kind: 'event'; event: CloudEvent } | { kind: 'http'; status: number; headers: Record<string, string>; body: string | Buffer };

type SdkModule = typeof import('cloudevents');
let sdk: Promise<SdkModule> | undefined;
/** The `cloudevents` SDK, loaded only for func modules (their handlers expect its CloudEvent class). */
function loadSdk(): Promise<SdkModule> {
  return (sdk ??= import('cloudevents'));
}

class CloudEventResponse {
  readonly #attrs: Record<string, unknown>;
  readonly #make: (attrs: Record<string, unknown>) => unknown;

  constructor(data: unknown, make: (attrs: Record<string, unknown>) => unknown) {
    this.#attrs = { data };
    this.#make = make;
  }
  version(v: string) { this.#attrs.specversion = v; return this; }
  id(v: string) { this.#attrs.id = v; return this; }
  type(v: string) { this.#attrs.type = v; return this; }
  source(v: string) { this.#attrs.source = v; return this; }
  response() { return this.#make(this.#attrs); }
}

function funcLog(log: Logger): Record<string, (msg: unknown, ...rest: unknown[]) => void> {
  const line = (level: 'debug' | 'info' | 'warn' | 'error') => (msg: unknown) =>
    log[level](typeof msg === 'string' ? msg : 'function log', typeof msg === 'string' ? undefined : { value: msg });
  return { trace: line('debug'), debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error'), fatal: line('error') };
}

function parseHttpBody(contentType: string | undefined, raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  const essence = contentType?.split(';')[0]!.trim().toLowerCase() ?? '';
  if (essence === 'application/json' || essence.endsWith('+json')) {
    try {
      return JSON.parse(raw.toString('utf8'));
    } catch {
      return raw.toString('utf8');
    }
  }
  if (essence === 'application/x-www-form-urlencoded') return Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
  if (essence.startsWith('text/')) return raw.toString('utf8');
  return raw;
}

/** Calls `handle` the way faas-js-runtime does, and maps what it returns onto an HTTP answer or a reply event. */
export async function invokeFunc(func: FuncModule, req: IncomingMessage, raw: Buffer, event: CloudEvent | undefined, log: Logger): Promise<FuncResult> {
  const { CloudEvent: SdkCloudEvent } = await loadSdk();
  const url = new URL(req.url ?? '/', 'http://localhost');
  const query = Object.fromEntries(url.searchParams);
  const body = event ? event.data : parseHttpBody(req.headers['content-type'], raw);
  const context: Record<string, unknown> = {
    body,
    query: { ...query },
    headers: { ...req.headers },
    method: req.method,
    httpVersion: req.httpVersion,
    httpVersionMajor: req.httpVersionMajor,
    httpVersionMinor: req.httpVersionMinor,
    contentType: req.headers['content-type'],
    rawBody: raw.length ? raw.toString('utf8') : undefined,
    ...query,
    log: funcLog(log),
    cloudEventResponse: (data: unknown) => new CloudEventResponse(data, (attrs) => new SdkCloudEvent(attrs as never)),
  };
  let input: unknown = body;
  if (event) {
    const { data, ...attrs } = event;
    input = context.cloudevent = new SdkCloudEvent({ ...attrs, ...(data === undefined ? {} : { data }) } as never, false);
  }
  const out = await func.handle.call(Object.freeze({}), context, input);
  if (event && isCloudEventLike(out)) return { kind: 'event', event: fromSdkEvent(out) };
  return httpResult(out);
}

function isCloudEventLike(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return v.constructor?.name === 'CloudEvent' || (typeof v.specversion === 'string' && typeof v.type === 'string' && typeof v.source === 'string');
}

/** An SDK CloudEvent (or a look-alike) as knbot's event: attributes as they are, `data_base64` folded into data. */
function fromSdkEvent(sdkEvent: Record<string, unknown>): CloudEvent {
  const event: Record<string, unknown> = { specversion: '1.0', id: randomUUID() };
  for (const key of Object.keys(sdkEvent)) {
    const v = sdkEvent[key];
    if (v === undefined || v === null || key === 'data_base64') continue;
    event[key] = v;
  }
  return event as CloudEvent;
}

function httpResult(out: unknown): FuncResult {
  const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
  if (!out) return { kind: 'http', status: 204, headers: { 'content-type': 'text/plain' }, body: '' };
  if (typeof out === 'string') return { kind: 'http', status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: out };
  if (typeof out !== 'object') return { kind: 'http', status: 200, headers, body: JSON.stringify(out) };
  const o = out as { headers?: Record<string, unknown>; statusCode?: number; body?: unknown };
  let explicitType = false;
  if (o.headers && typeof o.headers === 'object') {
    for (const [k, v] of Object.entries(o.headers)) {
      headers[k.toLowerCase()] = String(v);
      if (k.toLowerCase() === 'content-type') explicitType = true;
    }
  }
  const status = typeof o.statusCode === 'number' ? o.statusCode : 200;
  if (o.body !== undefined) {
    if (typeof o.body === 'string') {
      if (!explicitType) headers['content-type'] = 'text/plain; charset=utf-8';
      return { kind: 'http', status, headers, body: o.body };
    }
    if (Buffer.isBuffer(o.body)) return { kind: 'http', status, headers, body: o.body };
    return { kind: 'http', status, headers, body: JSON.stringify(o.body) };
  }
  return { kind: 'http', status, headers, body: JSON.stringify(out) };
}

/** Answers a request with what a func handler returned: a binary-mode event, or its HTTP response. */
export async function answerFunc(func: FuncModule, req: IncomingMessage, res: ServerResponse, body: Buffer, event: CloudEvent | undefined, log: Logger): Promise<void> {
  const out = await invokeFunc(func, req, body, event, log);
  if (out.kind === 'event') {
    const msg = encodeBinary(out.event);
    return void res.writeHead(200, { ...msg.headers, 'content-length': String(msg.body.length) }).end(msg.body);
  }
  res.writeHead(out.status, { ...out.headers, 'content-length': String(Buffer.byteLength(out.body)) }).end(out.body);
}

/** One event of a batch through a func handler: only a returned CloudEvent has a place in the reply batch. */
export async function funcEvent(func: FuncModule, req: IncomingMessage, body: Buffer, event: CloudEvent, log: Logger): Promise<CloudEvent | undefined> {
  const out = await invokeFunc(func, req, body, event, log);
  if (out.kind === 'event') return out.event;
  if (out.status >= 400) throw new Error(`function answered ${out.status}`);
  if (out.status !== 204) log.warn('func handler returned data, not a CloudEvent, inside a batch: dropped', { type: event.type });
  return undefined;
}
