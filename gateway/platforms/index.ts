// The chat-platform adapters the gateway calls (DESIGN §7): webhooks in, replies out.
export type * from './types.ts';
export { WebhookError } from './types.ts';
export { CHAT_ADAPTERS, INGRESS_ADAPTERS, apiBasesFromEnv, isChatPlatform, isIngressPlatform } from './registry.ts';
export { MAX_BUTTONS, WIRE_ID_BYTES, replyButtons, wireId, type Button, type ButtonsProblem } from './buttons.ts';
export { ACTION_INVOKED, MEMBER_JOINED, MESSAGE_RECEIVED, type Attachment, type ChatData, type ChatUser, type Mention } from './events.ts';
export { DEFAULT_RETRY, REPLY_DELIVERED, REPLY_FAILED, backoff, callApi, replyOutcomeEvent, retryAfter, splitText } from './egress.ts';
export { RateLimiter, type BucketSpec, type EgressLimiter } from './rate-limit.ts';
export { EditScheduler, STREAM_POLICY, collectStream, relayStream, type EditOp, type EditTarget, type RelayOptions, type StreamPolicy } from './stream.ts';
export { StreamSendError, discordEditTarget, slackEditTarget, telegramEditTarget } from './stream-targets.ts';
export { cloudevents } from './cloudevents.ts';
export { discord } from './discord.ts';
export { line, lineRetryKey } from './line.ts';
export { slack } from './slack.ts';
export { telegram } from './telegram.ts';
export { OUTSIDE_WINDOW_CODE, OUTSIDE_WINDOW_REASON, WHATSAPP_API_VERSION, whatsapp } from './whatsapp.ts';
export { LINE_LOADING_SECONDS, loadingSeconds } from './typing.ts';
