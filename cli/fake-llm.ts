import { UsageError, exitOnSignals, intSetting, parseArgs } from './args.ts';
import { FakeLlm } from './fake-llm/server.ts';

const USAGE = `usage: knbot fake-llm [--port N] [--host ADDR] [--token-latency-ms N] [--first-token-ms N] [--api-key-env NAME]

A deterministic OpenAI-compatible chat-completions server, for trying bots without a key and for tests.
Point a bot at it with OPENAI_BASE_URL=http://127.0.0.1:<port>/v1 (knbot dev starts one by itself when
neither OPENAI_BASE_URL nor OPENAI_API_KEY is set).

  POST /v1/chat/completions   any model name; streams with "stream": true (usage in a last chunk with
                              "stream_options": {"include_usage": true}); max_completion_tokens
                              (or max_tokens) cuts the answer with finish_reason "length"
  GET  /v1/models             the model list

The answer restates the last user message and answers it with the sentences of the system messages
that share the most words with it, citing "[n]" when the context numbers its passages that way.

options:
  --port N              port (default $PORT, else 8089)
  --host ADDR           address to bind (default 127.0.0.1)
  --token-latency-ms N  wait between two streamed pieces (default 25)
  --first-token-ms N    wait before the first piece, or before a whole answer (default 150)
  --api-key-env NAME    ask for "Authorization: Bearer <the value of NAME>" (401 otherwise)

failures, on demand:
  for one request, a header:  x-fake-llm-fault: {"status": 429, "retryAfter": 2}
  for the next requests:      POST /_fake/faults  {"fault": {...}, "times": 3}   (or "times": "always")
                              DELETE /_fake/faults  clears them
  a fault is one of
    {"status": 429|500|503|..., "retryAfter": seconds, "retryAfterMs": ms}   an OpenAI-style error
    {"hang": true}          never answers
    {"hangAfter": n}        streams n pieces, then goes silent
    {"dropAfter": n}        streams n pieces, then closes the connection without [DONE]
  and may add "delayMs": ms before anything else.
  GET /_fake/requests lists what was asked (model, stream, fault, outcome; never the prompt);
  POST /_fake/config {"tokenLatencyMs": n, "firstTokenMs": n} changes the latency.`;

export async function fakeLlmCommand(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) return void console.log(USAGE);
  const { positionals, flags } = parseArgs(argv, ['port', 'host', 'token-latency-ms', 'first-token-ms', 'api-key-env'], [], USAGE);
  if (positionals.length) throw new UsageError(`unexpected argument ${positionals[0]}`, USAGE);
  const port = intSetting(flags.get('port'), '--port', 0, 65535, USAGE) ?? intSetting(process.env.PORT, 'PORT', 0, 65535, USAGE) ?? 8089;
  const keyEnv = flags.get('api-key-env');
  let apiKey: string | undefined;
  if (typeof keyEnv === 'string') {
    apiKey = process.env[keyEnv];
    if (!apiKey) throw new UsageError(`--api-key-env ${keyEnv}: that variable is not set`, USAGE);
  }
  const fake = new FakeLlm({
    ...optional('tokenLatencyMs', intSetting(flags.get('token-latency-ms'), '--token-latency-ms', 0, 60_000, USAGE)),
    ...optional('firstTokenMs', intSetting(flags.get('first-token-ms'), '--first-token-ms', 0, 60_000, USAGE)),
    ...(apiKey ? { apiKey } : {}),
  });
  const host = flags.get('host');
  let url: string;
  try {
    url = await fake.start(port, typeof host === 'string' ? host : '127.0.0.1');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`knbot fake-llm: ${e.code === 'EADDRINUSE' ? `port ${port} is in use` : e.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), level: 'info', msg: 'fake llm listening', url, tokenLatencyMs: fake.tokenLatencyMs })}\n`);
  exitOnSignals(() => fake.close());
}

function optional<K extends string>(key: K, value: number | undefined): Partial<Record<K, number>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, number>);
}
