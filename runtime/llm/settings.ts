import { LlmConfigError } from './errors.ts';

/** USD per million tokens, each way. */
export interface Price {
  input: number;
  output: number;
}

/** Everything the client needs, resolved once from `bot.config.llm`, the environment and code. */
export interface LlmSettings {
  /** The OpenAI-compatible API root, `/v1` included (as OpenAI's SDKs take it), no trailing slash. */
  baseUrl: string;
  apiKey: string | undefined;
  model: string;
  temperature: number | undefined;
  maxTokens: number | undefined;
  /** Time to the response's headers, and the longest silence between two pieces of a stream. */
  attemptTimeoutMs: number;
  /** The whole call: queueing for the limits, every attempt, the backoff between them, the stream. */
  totalTimeoutMs: number;
  /** Attempts in all, the first included. */
  maxAttempts: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  /** Calls in flight at once; more wait their turn (0: no limit). */
  concurrency: number;
  /** Tokens (in and out) per minute; a call waits while the budget is spent (0: no limit). */
  tokensPerMinute: number;
  /** Failed attempts in a row (network, timeout, 5xx) that open the circuit. */
  breakerFailures: number;
  /** How long the circuit stays open before one probe is let through. */
  breakerOpenMs: number;
  /** Per model (a name, or a prefix of the dated names the endpoint answers with). */
  prices: Record<string, Price>;
  /** Prompts and answers in span attributes (`gen_ai.input.messages`, `gen_ai.output.messages`). */
  capturePrompts: boolean;
  /** Label token and cost counters with the conversation too (one series per conversation). */
  conversationMetrics: boolean;
}

export const LLM_DEFAULTS = {
  baseUrl: 'https://api.openai.com/v1',
  model: 'gpt-4o-mini',
  attemptTimeoutMs: 30_000,
  totalTimeoutMs: 120_000,
  maxAttempts: 4,
  retryBaseDelayMs: 250,
  retryMaxDelayMs: 10_000,
  concurrency: 8,
  tokensPerMinute: 0,
  breakerFailures: 5,
  breakerOpenMs: 30_000,
  capturePrompts: false,
  conversationMetrics: true,
} as const;

const FIELD = 'bot.config.llm';

type Obj = Record<string, unknown>;

/**
 * Resolves the settings: what the code passes wins, then the bot's `bot.config.llm`, then the
 * environment (`OPENAI_BASE_URL`, `OPENAI_API_KEY`), then the defaults. A per-bot setting is the more
 * specific one, so it beats the environment's, which every bot of a process shares.
 */
export function resolveLlmSettings(botConfig: Readonly<Obj>, env: Readonly<Record<string, string | undefined>>, overrides: Partial<LlmSettings> = {}): LlmSettings {
  const raw = botConfig.llm ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new LlmConfigError(FIELD, 'must be a mapping');
  const c = raw as Obj;
  const known = new Set(['baseUrl', 'apiKey', 'model', 'temperature', 'maxTokens', ...Object.keys(LLM_DEFAULTS), 'prices']);
  for (const k of Object.keys(c)) if (!known.has(k)) throw new LlmConfigError(`${FIELD}.${k}`, `unknown setting (known: ${[...known].join(', ')})`);

  const baseUrl = overrides.baseUrl ?? fromEnvRef(c.baseUrl, 'baseUrl', env, true) ?? (env.OPENAI_BASE_URL || undefined) ?? LLM_DEFAULTS.baseUrl;
  const apiKey = overrides.apiKey ?? fromEnvRef(c.apiKey, 'apiKey', env, false) ?? (env.OPENAI_API_KEY || undefined);
  const int = (k: keyof typeof LLM_DEFAULTS & keyof LlmSettings, min: number, max: number): number =>
    (overrides[k] as number | undefined) ?? intAt(c[k], k, min, max) ?? (LLM_DEFAULTS[k] as number);
  const bool = (k: 'capturePrompts' | 'conversationMetrics'): boolean => overrides[k] ?? boolAt(c[k], k) ?? LLM_DEFAULTS[k];
  const settings: LlmSettings = {
    baseUrl: checkUrl(baseUrl),
    apiKey,
    model: overrides.model ?? stringAt(c.model, 'model') ?? LLM_DEFAULTS.model,
    temperature: overrides.temperature ?? numberAt(c.temperature, 'temperature', 0, 2),
    maxTokens: overrides.maxTokens ?? intAt(c.maxTokens, 'maxTokens', 1, 1_000_000),
    attemptTimeoutMs: int('attemptTimeoutMs', 1, 3_600_000),
    totalTimeoutMs: int('totalTimeoutMs', 1, 3_600_000),
    maxAttempts: int('maxAttempts', 1, 20),
    retryBaseDelayMs: int('retryBaseDelayMs', 0, 600_000),
    retryMaxDelayMs: int('retryMaxDelayMs', 0, 600_000),
    concurrency: int('concurrency', 0, 10_000),
    tokensPerMinute: int('tokensPerMinute', 0, 1_000_000_000),
    breakerFailures: int('breakerFailures', 1, 1000),
    breakerOpenMs: int('breakerOpenMs', 1, 3_600_000),
    prices: overrides.prices ?? pricesAt(c.prices),
    capturePrompts: bool('capturePrompts'),
    conversationMetrics: bool('conversationMetrics'),
  };
  if (settings.totalTimeoutMs < settings.attemptTimeoutMs) {
    throw new LlmConfigError(`${FIELD}.totalTimeoutMs`, `must be at least attemptTimeoutMs (${settings.attemptTimeoutMs})`);
  }
  return settings;
}

/** A literal, or `{env: NAME}`: where the value is, for values that differ by machine or are secret. */
function fromEnvRef(value: unknown, key: string, env: Readonly<Record<string, string | undefined>>, literalAllowed: boolean): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') {
    if (literalAllowed) return value;
    throw new LlmConfigError(`${FIELD}.${key}`, 'name where the secret is, never the secret: {env: NAME}');
  }
  const name = typeof value === 'object' && !Array.isArray(value) ? (value as Obj).env : undefined;
  if (typeof name !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new LlmConfigError(`${FIELD}.${key}`, literalAllowed ? 'must be a URL or {env: NAME}' : 'must be {env: NAME}');
  }
  return env[name] || undefined;
}

function checkUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new LlmConfigError(`${FIELD}.baseUrl`, `not a URL: ${JSON.stringify(url)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new LlmConfigError(`${FIELD}.baseUrl`, 'must be http:// or https://');
  if (u.username || u.password) throw new LlmConfigError(`${FIELD}.baseUrl`, 'must not carry credentials: use apiKey');
  return url.replace(/\/+$/, '');
}

function stringAt(value: unknown, key: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') throw new LlmConfigError(`${FIELD}.${key}`, 'must be a non-empty string');
  return value;
}

function numberAt(value: unknown, key: string, min: number, max: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) throw new LlmConfigError(`${FIELD}.${key}`, `must be a number from ${min} to ${max}`);
  return value;
}

function intAt(value: unknown, key: string, min: number, max: number): number | undefined {
  const n = numberAt(value, key, min, max);
  if (n !== undefined && !Number.isInteger(n)) throw new LlmConfigError(`${FIELD}.${key}`, `must be an integer from ${min} to ${max}`);
  return n;
}

function boolAt(value: unknown, key: string): boolean | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw new LlmConfigError(`${FIELD}.${key}`, 'must be true or false');
  return value;
}

function pricesAt(value: unknown): Record<string, Price> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new LlmConfigError(`${FIELD}.prices`, 'must map model names to {input, output} (USD per million tokens)');
  const out: Record<string, Price> = {};
  for (const [model, p] of Object.entries(value as Obj)) {
    const field = `prices.${model}`;
    if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new LlmConfigError(`${FIELD}.${field}`, 'must be {input, output} (USD per million tokens)');
    const price = p as Obj;
    out[model] = { input: numberAt(price.input, `${field}.input`, 0, 1e6) ?? 0, output: numberAt(price.output, `${field}.output`, 0, 1e6) ?? 0 };
  }
  return out;
}
