export { defineBot, isBot } from './bot.ts';
export type { Bot, BotDefinition, ChatMessage, EmitEvent, InitContext, MessageResult, Reply, ReplyChunk, Session, TurnContext } from './bot.ts';
export type { ServeConfig } from './config.ts';
export type { Logger } from './log.ts';
export type { BotMetrics } from './metrics.ts';
export { MemorySessionStore, type SessionStore } from './session-store.ts';
export { startPod, type RunningPod } from './serve.ts';
export { TurnInterrupted } from './turn-policy.ts';
