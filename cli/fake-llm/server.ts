import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { type FakeMessage, composeAnswer, pieces, promptTokens } from './answer.ts';

const http = process.getBuiltinModule('node:http');

/**
 * A failure to inject, for the next request(s) (`POST /_fake/faults`) or for one request (the
 * `x-fake-llm-fault` header, the same object as JSON). `delayMs` waits before anything else.
 */
export interface Fault {
  /** Answer this status with an OpenAI-style error body. */
  status?: number;
  /** With `status`: a `Retry-After` header, in seconds. */
  retryAfter?: number;
  /** With `status`: a `retry-after-ms` header. */
  retryAfterMs?: number;
  /** Never answer: the request hangs until the client gives up. */
  hang?: boolean;
  /** Stream this many pieces, then go silent (the connection stays open). */
  hangAfter?: number;
  /** Stream this many pieces, then close the connection without `[DONE]`. */
  dropAfter?: number;
  delayMs?: number;
}

export interface FakeLlmOptions {
  /** Wait between two streamed pieces (default 25 ms). */
  tokenLatencyMs?: number;
  /** Wait before the first piece, or before a whole answer (default 150 ms). */
  firstTokenMs?: number;
  /** When set, requests must carry `Authorization: Bearer <apiKey>` (401 otherwise). */
  apiKey?: string;
  /** What `GET /v1/models` lists; any model name is answered. */
  models?: string[];
}

/** What the fake saw of one chat-completions request (never the prompt). */
export interface FakeRequest {
  n: number;
  /** When it arrived, and when its answer ended or its client left (Date.now()). */
  at: number;
  endedAt: number | undefined;
  model: string | undefined;
  stream: boolean;
  includeUsage: boolean;
  messages: number;
  authorized: boolean;
  traceparent: string | undefined;
  fault: Fault | undefined;
  /** `ok` (answered in full), `fault` (an injected status), `cut` (dropped or hung by a fault), `gone` (the client left first), or `open`. */
  outcome: 'ok' | 'fault' | 'cut' | 'gone' | 'open' | 'bad_request';
  status: number | undefined;
  piecesSent: number;
  /** The usage it reported (an answer cut short reports none). */
  usage: { prompt_tokens: number; completion_tokens: number } | undefined;
}

interface Queued {
  fault: Fault;
  remaining: number;
}

const MODEL_CREATED = 1_700_000_000;

/**
 * `knbot fake-llm`: a deterministic OpenAI-compatible chat-completions server for tests and for
 * `knbot dev` without a key. The wire format follows OpenAI's API reference: `chat.completion` and
 * `chat.completion.chunk` objects, SSE `data:` lines ending with `data: [DONE]`, usage in a last chunk
 * with empty `choices` when `stream_options.include_usage` is set, errors as `{error: {message, type,
 * param, code}}`.
 */
export class FakeLlm {
  readonly #o: Required<Omit<FakeLlmOptions, 'apiKey'>> & { apiKey: string | undefined };
  readonly #server: Server;
  readonly #queue: Queued[] = [];
  readonly requests: FakeRequest[] = [];
  #url = '';
  #open = 0;
  #maxOpen = 0;

  constructor(options: FakeLlmOptions = {}) {
    this.#o = {
      tokenLatencyMs: options.tokenLatencyMs ?? 25,
      firstTokenMs: options.firstTokenMs ?? 150,
      apiKey: options.apiKey,
      models: options.models ?? ['knbot-fake'],
    };
    this.#server = http.createServer((req, res) => void this.#handle(req, res).catch(() => res.destroy()));
  }

  /** The API root to give clients as `OPENAI_BASE_URL` (`http://host:port/v1`). */
  get url(): string {
    return this.#url;
  }

  /** Chat requests being answered now, and the most there were at once. */
  get inFlight(): { now: number; max: number } {
    return { now: this.#open, max: this.#maxOpen };
  }

  get tokenLatencyMs(): number {
    return this.#o.tokenLatencyMs;
  }

  async start(port = 0, host = '127.0.0.1'): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => resolve());
    });
    const a = this.#server.address() as { port: number };
    this.#url = `http://${host.includes(':') ? `[${host}]` : host}:${a.port}/v1`;
    return this.#url;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  /** Queues `fault` for the next `times` requests (`'always'`: until cleared). */
  inject(fault: Fault, times: number | 'always' = 1): void {
    this.#queue.push({ fault, remaining: times === 'always' ? Infinity : times });
  }

  clearFaults(): void {
    this.#queue.length = 0;
  }

  configure(o: { tokenLatencyMs?: number; firstTokenMs?: number }): void {
    if (o.tokenLatencyMs !== undefined) this.#o.tokenLatencyMs = o.tokenLatencyMs;
    if (o.firstTokenMs !== undefined) this.#o.firstTokenMs = o.firstTokenMs;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/v1/chat/completions' && req.method === 'POST') return this.#chat(req, res);
    if (path === '/v1/models' && req.method === 'GET') {
      return json(res, 200, { object: 'list', data: this.#o.models.map((id) => ({ id, object: 'model', created: MODEL_CREATED, owned_by: 'knbot' })) });
    }
    if (path.startsWith('/_fake/')) return this.#control(req, res, path);
    req.resume();
    json(res, 404, openAiError(`Unknown request URL: ${req.method} ${path}.`, 'invalid_request_error', 'unknown_url'));
  }

  /** The control endpoints, documented in cli/fake-llm.ts. */
  async #control(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const body = await readJson(req);
    if (path === '/_fake/faults' && req.method === 'POST') {
      const list = Array.isArray(body) ? body : [body];
      for (const item of list) {
        const o = item as { fault?: unknown; times?: unknown } | null;
        const fault = checkFault(o?.fault);
        const times = o?.times === undefined ? 1 : o.times === 'always' ? 'always' : Number.isInteger(o.times) && (o.times as number) > 0 ? (o.times as number) : undefined;
        if (!fault || times === undefined) return json(res, 400, { error: 'expected {fault: {status?, retryAfter?, retryAfterMs?, hang?, hangAfter?, dropAfter?, delayMs?}, times?: n | "always"} or a list of them' });
        this.inject(fault, times);
      }
      return json(res, 200, { queued: this.#queue.length });
    }
    if (path === '/_fake/faults' && req.method === 'DELETE') {
      this.clearFaults();
      return json(res, 200, { queued: 0 });
    }
    if (path === '/_fake/requests' && req.method === 'GET') return json(res, 200, this.requests);
    if (path === '/_fake/requests' && req.method === 'DELETE') {
      this.requests.length = 0;
      this.#maxOpen = this.#open;
      return json(res, 200, {});
    }
    if (path === '/_fake/config' && req.method === 'POST') {
      const o = (body ?? {}) as { tokenLatencyMs?: unknown; firstTokenMs?: unknown };
      const ok = (v: unknown) => v === undefined || (typeof v === 'number' && v >= 0 && v <= 60_000);
      if (!ok(o.tokenLatencyMs) || !ok(o.firstTokenMs)) return json(res, 400, { error: 'tokenLatencyMs and firstTokenMs: milliseconds from 0 to 60000' });
      this.configure(o as { tokenLatencyMs?: number; firstTokenMs?: number });
      return json(res, 200, { tokenLatencyMs: this.#o.tokenLatencyMs, firstTokenMs: this.#o.firstTokenMs });
    }
    json(res, 404, { error: `no control endpoint ${req.method} ${path}` });
  }

  #nextFault(req: IncomingMessage): Fault | undefined {
    const header = req.headers['x-fake-llm-fault'];
    if (typeof header === 'string') {
      try {
        return checkFault(JSON.parse(header));
      } catch {
        return undefined;
      }
    }
    const head = this.#queue[0];
    if (!head) return undefined;
    if (--head.remaining <= 0) this.#queue.shift();
    return head.fault;
  }

  async #chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const record: FakeRequest = {
      n: this.requests.length + 1,
      at: Date.now(),
      endedAt: undefined,
      model: undefined,
      stream: false,
      includeUsage: false,
      messages: 0,
      authorized: this.#o.apiKey === undefined || req.headers.authorization === `Bearer ${this.#o.apiKey}`,
      traceparent: typeof req.headers.traceparent === 'string' ? req.headers.traceparent : undefined,
      fault: undefined,
      outcome: 'open',
      status: undefined,
      piecesSent: 0,
      usage: undefined,
    };
    this.requests.push(record);
    this.#maxOpen = Math.max(this.#maxOpen, ++this.#open);
    let gone = false;
    res.on('close', () => {
      this.#open--;
      record.endedAt = Date.now();
      if (!res.writableFinished) {
        gone = true;
        if (record.outcome === 'open') record.outcome = 'gone';
      }
    });
    const body = await readJson(req);
    if (!record.authorized) return this.#fail(res, record, 401, openAiError('Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key'));
    const request = parseRequest(body);
    if (typeof request === 'string') return this.#fail(res, record, 400, openAiError(request, 'invalid_request_error', null), 'bad_request');
    Object.assign(record, { model: request.model, stream: request.stream, includeUsage: request.includeUsage, messages: request.messages.length });

    const fault = this.#nextFault(req);
    record.fault = fault;
    if (fault?.delayMs) await delay(fault.delayMs);
    if (gone) return;
    if (fault?.hang) return;
    if (fault?.status !== undefined) {
      const headers: Record<string, string> = {};
      if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
      if (fault.retryAfterMs !== undefined) headers['retry-after-ms'] = String(fault.retryAfterMs);
      const [type, code] = fault.status === 429 ? ['requests', 'rate_limit_exceeded'] : fault.status >= 500 ? ['server_error', null] : ['invalid_request_error', null];
      const message = fault.status === 429 ? 'Rate limit reached (injected by knbot fake-llm).' : `Injected failure ${fault.status} (knbot fake-llm).`;
      return this.#fail(res, record, fault.status, openAiError(message, type!, code), 'fault', headers);
    }

    const all = pieces(composeAnswer(request.messages));
    const limit = request.maxTokens ?? Infinity;
    const sent = all.slice(0, limit);
    const finish = all.length > limit ? 'length' : 'stop';
    const usage = { prompt_tokens: promptTokens(request.messages), completion_tokens: sent.length, total_tokens: 0, completion_tokens_details: { reasoning_tokens: 0 }, prompt_tokens_details: { cached_tokens: 0 } };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    const id = `chatcmpl-fake-${record.n}`;
    const created = Math.floor(Date.now() / 1000);
    const base = { id, created, model: request.model, system_fingerprint: 'fp_knbot_fake' };

    if (!request.stream) {
      await delay(this.#o.firstTokenMs + this.#o.tokenLatencyMs * sent.length);
      if (gone) return;
      record.status = 200;
      record.piecesSent = sent.length;
      record.outcome = 'ok';
      record.usage = { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens };
      return json(res, 200, {
        ...base,
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content: sent.join(''), refusal: null }, logprobs: null, finish_reason: finish }],
        usage,
      });
    }

    record.status = 200;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    const u = request.includeUsage ? { usage: null } : {};
    const chunk = (choices: unknown[], extra: Record<string, unknown> = u) => res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices, ...extra })}\n\n`);
    await delay(this.#o.firstTokenMs);
    if (gone) return;
    chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]);
    for (const [i, piece] of sent.entries()) {
      if (i > 0) await delay(this.#o.tokenLatencyMs);
      if (gone) return;
      if (fault?.dropAfter !== undefined && i >= fault.dropAfter) {
        record.outcome = 'cut';
        return void res.destroy();
      }
      if (fault?.hangAfter !== undefined && i >= fault.hangAfter) {
        record.outcome = 'cut';
        return;
      }
      chunk([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }]);
      record.piecesSent++;
    }
    chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finish }]);
    if (request.includeUsage) {
      chunk([], { usage });
      record.usage = { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens };
    }
    record.outcome = 'ok';
    res.end('data: [DONE]\n\n');
  }

  #fail(res: ServerResponse, record: FakeRequest, status: number, body: unknown, outcome: FakeRequest['outcome'] = 'fault', headers: Record<string, string> = {}): void {
    record.status = status;
    record.outcome = outcome;
    json(res, status, body, headers);
  }
}

interface ParsedRequest {
  model: string;
  messages: FakeMessage[];
  stream: boolean;
  includeUsage: boolean;
  maxTokens: number | undefined;
}

/** The request, or what is wrong with it (in OpenAI's words where it has them). */
function parseRequest(body: unknown): ParsedRequest | string {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'We could not parse the JSON body of your request.';
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || b.model === '') return "you must provide a model parameter";
  if (!Array.isArray(b.messages) || b.messages.length === 0) return "Invalid 'messages': expected a non-empty array.";
  const messages: FakeMessage[] = [];
  for (const [i, m] of (b.messages as unknown[]).entries()) {
    const msg = m as { role?: unknown; content?: unknown } | null;
    if (typeof msg?.role !== 'string') return `Missing required parameter: 'messages[${i}].role'.`;
    const content =
      typeof msg.content === 'string'
        ? msg.content
        : Array.isArray(msg.content)
          ? msg.content.map((p: { type?: unknown; text?: unknown }) => (p?.type === 'text' && typeof p.text === 'string' ? p.text : '')).join('')
          : msg.content === null || msg.content === undefined
            ? ''
            : undefined;
    if (content === undefined) return `Invalid type for 'messages[${i}].content'.`;
    messages.push({ role: msg.role, content });
  }
  const max = b.max_completion_tokens ?? b.max_tokens;
  if (max !== undefined && max !== null && (!Number.isInteger(max) || (max as number) < 1)) return "Invalid 'max_completion_tokens': integer below minimum value.";
  const options = b.stream_options as { include_usage?: unknown } | null | undefined;
  return {
    model: b.model,
    messages,
    stream: b.stream === true,
    includeUsage: b.stream === true && options?.include_usage === true,
    maxTokens: typeof max === 'number' ? max : undefined,
  };
}

function checkFault(value: unknown): Fault | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const f = value as Record<string, unknown>;
  const out: Fault = {};
  const num = (k: keyof Fault, min: number, max: number) => {
    const v = f[k];
    if (v === undefined) return true;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) return false;
    (out as Record<string, unknown>)[k] = v;
    return true;
  };
  if (!num('status', 400, 599) || !num('retryAfter', 0, 3600) || !num('retryAfterMs', 0, 3_600_000) || !num('hangAfter', 0, 1e6) || !num('dropAfter', 0, 1e6) || !num('delayMs', 0, 600_000)) return undefined;
  if (f.hang !== undefined) {
    if (typeof f.hang !== 'boolean') return undefined;
    out.hang = f.hang;
  }
  const kinds = [out.status !== undefined, out.hang === true, out.hangAfter !== undefined, out.dropAfter !== undefined].filter(Boolean).length;
  if (kinds > 1 || (kinds === 0 && out.delayMs === undefined)) return undefined;
  return out;
}

function openAiError(message: string, type: string, code: string | null): unknown {
  return { error: { message, type, param: null, code } };
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers }).end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  if (!chunks.length) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return null;
  }
}
