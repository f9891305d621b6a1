// Which adapter serves which path segment (`/hooks/<platform>/<bot>`) and which `chatplatform`, and
// where each platform's API is.
import { cloudevents } from './cloudevents.ts';
import { discord } from './discord.ts';
import { line } from './line.ts';
import { slack } from './slack.ts';
import { telegram } from './telegram.ts';
import type { ChatAdapter, ChatPlatform, IngressAdapter, IngressPlatform } from './types.ts';
import { whatsapp } from './whatsapp.ts';

export const CHAT_ADAPTERS: Readonly<Record<ChatPlatform, ChatAdapter>> = { slack, telegram, discord, line, whatsapp };
export const INGRESS_ADAPTERS: Readonly<Record<IngressPlatform, IngressAdapter>> = { ...CHAT_ADAPTERS, cloudevents };

export function isIngressPlatform(name: string): name is IngressPlatform {
  return Object.hasOwn(INGRESS_ADAPTERS, name);
}

export function isChatPlatform(name: string): name is ChatPlatform {
  return Object.hasOwn(CHAT_ADAPTERS, name);
}

/**
 * Each platform's API base URL: `KNBOT_<PLATFORM>_API_URL` when set (tests point it at a local fake),
 * else the public API. Read once at start-up; no trailing slash.
 */
export function apiBasesFromEnv(env: Readonly<Record<string, string | undefined>>): Record<ChatPlatform, string> {
  const out = {} as Record<ChatPlatform, string>;
  for (const adapter of Object.values(CHAT_ADAPTERS)) {
    const v = env[adapter.apiBaseEnv];
    out[adapter.platform] = (v !== undefined && v !== '' ? v : adapter.defaultApiBase).replace(/\/+$/, '');
  }
  return out;
}
