export { type CallContext, type ChatRequest, type ChatResult, type CreateLlmOptions, Llm, type LlmDeps, type LlmMessage, createLlm } from './client.ts';
export { LlmStream } from './stream.ts';
export type { BreakerState } from './breaker.ts';
export type { Usage } from './cost.ts';
export { LlmConfigError, LlmError, type LlmErrorCode } from './errors.ts';
export { LLM_DEFAULTS, type LlmSettings, type Price, resolveLlmSettings } from './settings.ts';
