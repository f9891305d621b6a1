import type { LogOptions } from './log.ts';

/** Everything the pod server needs, read once at the edge (flags, environment, bot.yaml). */
export interface ServeConfig {
  /** The bot's name: metrics label, log field, reply event source. */
  name: string;
  port: number;
  host: string | undefined;
  /** In-flight requests past which the pod answers 503 (0: no limit), as Knative's containerConcurrency. */
  containerConcurrency: number;
  /** Per-request deadline (Knative's revision timeoutSeconds). */
  timeoutMs: number;
  maxBodyBytes: number;
  /** How long a client may take to send its body. */
  bodyTimeoutMs: number;
  /** Longest wait for in-flight work after SIGTERM. */
  drainTimeoutMs: number;
  /** Where `ctx.emit` sends (K_SINK) and what it sets on every event (K_CE_OVERRIDES). */
  sink: string | undefined;
  ceOverrides: Record<string, string>;
  /** `source` of the events this bot produces. */
  source: string;
  /** The Knative revision serving the bot (K_REVISION): a field of every log line when set. */
  revision?: string;
  config: Record<string, unknown>;
  /** Direct WebSocket clients on `GET /v1/ws` (bot.yaml `bot.websocket: true`); 404 to the handshake when false. */
  websocket: boolean;
  log: LogOptions;
  sessions: SessionSettings;
}

/** What a chat message does when its conversation has a turn running (DESIGN §4.3; runtime/turn-policy.ts). */
export type TurnPolicy = 'queue' | 'debounce' | 'interrupt' | 'reject';
export const TURN_POLICIES: readonly TurnPolicy[] = ['queue', 'debounce', 'interrupt', 'reject'];

/** Conversation state and turns: bot.yaml `bot.sessions`, KNBOT_TURN_POLICY, KNBOT_DEBOUNCE_MS, KNBOT_REDIS_URL. */
export interface SessionSettings {
  turnPolicy: TurnPolicy;
  /** How long a message waits for the next one under `debounce`. */
  debounceMs: number;
  /** Where conversation state lives when it is shared by pods; in the pod's memory when undefined. */
  redisUrl: string | undefined;
}

export const DEFAULTS = {
  port: 8080,
  containerConcurrency: 1000,
  timeoutSeconds: 300,
  maxBodyBytes: 1 << 20,
  bodyTimeoutMs: 15_000,
  debounceMs: 800,
} as const;

/** bot.yaml's `bot.sessions.debounceMs` and KNBOT_DEBOUNCE_MS: from 1 ms to a minute. */
export const MAX_DEBOUNCE_MS = 60_000;
