import type { LlmErrorCode } from './errors.ts';

// OpenAI's chat-completions wire format, as the client reads it: a whole completion, the chunks of a
// stream, usage and error bodies.

/** A failed attempt, and whether another may be made. */
export class AttemptError extends Error {
  readonly code: LlmErrorCode;
  readonly retry: boolean;
  /** Counts against the endpoint's health (network, timeout, 5xx). */
  readonly breaker: boolean;
  readonly status: number | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(code: LlmErrorCode, message: string, o: { retry: boolean; breaker: boolean; status?: number; retryAfterMs?: number; cause?: unknown }) {
    super(message, o.cause === undefined ? undefined : { cause: o.cause });
    this.code = code;
    this.retry = o.retry;
    this.breaker = o.breaker;
    this.status = o.status;
    this.retryAfterMs = o.retryAfterMs;
  }
}

export interface AttemptResult {
  text: string;
  model: string | undefined;
  id: string | undefined;
  finishReason: string | undefined;
  usage: { inputTokens: number; outputTokens: number } | undefined;
}

/** `choices[0]` of a whole completion. */
export function completion(json: unknown): AttemptResult {
  const j = json as { id?: unknown; model?: unknown; choices?: { message?: { content?: unknown }; finish_reason?: unknown }[]; usage?: unknown };
  const choice = Array.isArray(j?.choices) ? j.choices[0] : undefined;
  if (!choice) throw new AttemptError('bad_response', 'the answer has no choices', { retry: false, breaker: false });
  const content = choice.message?.content;
  return {
    text: typeof content === 'string' ? content : '',
    model: typeof j.model === 'string' ? j.model : undefined,
    id: typeof j.id === 'string' ? j.id : undefined,
    finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : undefined,
    usage: usageOf(j.usage),
  };
}

/** One `chat.completion.chunk`: its text; its id, model, finish reason and usage go into `out`. */
export function streamChunk(data: string, out: AttemptResult): string {
  let j: { id?: unknown; model?: unknown; choices?: { delta?: { content?: unknown }; finish_reason?: unknown }[]; usage?: unknown; error?: { message?: unknown; code?: unknown } };
  try {
    j = JSON.parse(data);
  } catch {
    throw new AttemptError('bad_response', 'a piece of the stream is not JSON', { retry: false, breaker: false });
  }
  if (j.error) {
    // OpenAI reports an error that happens mid-generation as a data line of its own.
    throw new AttemptError('server_error', `the endpoint reported an error in the stream${errorSummary(data)}`, { retry: true, breaker: false });
  }
  if (typeof j.id === 'string') out.id = j.id;
  if (typeof j.model === 'string') out.model = j.model;
  const usage = usageOf(j.usage);
  if (usage) out.usage = usage;
  const choice = Array.isArray(j.choices) ? j.choices[0] : undefined;
  if (typeof choice?.finish_reason === 'string') out.finishReason = choice.finish_reason;
  const content = choice?.delta?.content;
  return typeof content === 'string' ? content : '';
}

function usageOf(u: unknown): { inputTokens: number; outputTokens: number } | undefined {
  const usage = u as { prompt_tokens?: unknown; completion_tokens?: unknown } | null | undefined;
  if (typeof usage?.prompt_tokens !== 'number' || typeof usage.completion_tokens !== 'number') return undefined;
  return { inputTokens: usage.prompt_tokens, outputTokens: usage.completion_tokens };
}

/** `: <code>: <message>` from an OpenAI error body, short; nothing when it is not one. */
export function errorSummary(body: string): string {
  try {
    const e = (JSON.parse(body) as { error?: { code?: unknown; type?: unknown; message?: unknown } }).error;
    if (!e) return '';
    const code = typeof e.code === 'string' ? e.code : typeof e.type === 'string' ? e.type : undefined;
    const message = typeof e.message === 'string' ? e.message.slice(0, 200) : '';
    return `${code ? ` (${code})` : ''}${message ? `: ${message}` : ''}`;
  } catch {
    return '';
  }
}

