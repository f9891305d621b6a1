/** A command line that cannot be run: the message, and the usage text to show with it. */
export class UsageError extends Error {
  readonly usage: string;

  constructor(message: string, usage: string) {
    super(message);
    this.name = 'UsageError';
    this.usage = usage;
  }
}

export interface ParsedArgs {
  positionals: string[];
  flags: Map<string, string | true>;
}

/** `--name value`, `--name=value` and boolean `--name` (those listed in `booleans`). */
export function parseArgs(argv: string[], known: readonly string[], booleans: readonly string[], usage: string): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--([a-z][a-z0-9-]*)(?:=(.*))?$/.exec(arg);
    if (!m) {
      if (arg.startsWith('-') && arg !== '-') throw new UsageError(`unknown option ${arg}`, usage);
      positionals.push(arg);
      continue;
    }
    const name = m[1]!;
    if (booleans.includes(name)) {
      flags.set(name, true);
      continue;
    }
    if (!known.includes(name)) throw new UsageError(`unknown option --${name}`, usage);
    const value = m[2] ?? argv[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`, usage);
    flags.set(name, value);
  }
  return { positionals, flags };
}

/** An integer setting from a flag or an environment variable, checked against its range. */
export function intSetting(value: string | true | undefined, what: string, min: number, max: number, usage: string): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${what} must be an integer from ${min} to ${max}, got ${String(value)}`, usage);
  return n;
}

/** On SIGTERM or SIGINT, once: `close`, then exit 0 (the way a long-running command stops). */
export function exitOnSignals(close: () => Promise<unknown>): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
