import type { CloudEvent } from '../../../eventing/codec.ts';
import { GATEWAY_SOURCE, egressContexts, platformEgress } from '../../../gateway/hooks.ts';
import { PlatformTyping } from '../../../gateway/platform-typing.ts';
import { RateLimiter } from '../../../gateway/platforms/rate-limit.ts';
import type { ChatPlatform, EgressContext, RetryInfo, Secrets } from '../../../gateway/platforms/types.ts';
import type { GatewayStore } from '../../../gateway/store.ts';

/** A real egress context against `apiBase`, with short backoff steps and a record of the waits. */
export function egressContext(apiBase: string, overrides: Partial<EgressContext> = {}): EgressContext & { retries: RetryInfo[] } {
  const retries: RetryInfo[] = [];
  return {
    apiBase,
    fetch: globalThis.fetch,
    now: Date.now,
    limiter: new RateLimiter(),
    retry: { baseDelayMs: 5, maxDelayMs: 40 },
    onRetry: (info) => retries.push(info),
    retries,
    ...overrides,
  };
}

/**
 * The gateway's egress for chat platforms, wired as the gateway wires it (`egressContexts` from the
 * environment, one typing indicator), with `platform`'s API at `apiUrl` and `bot`'s channel `secrets`.
 */
export function chatEgress(o: {
  platform: ChatPlatform;
  apiUrl: string;
  bot: string;
  secrets: Secrets;
  store: GatewayStore;
  send: (event: CloudEvent) => Promise<void>;
  log: (msg: string, fields?: Record<string, unknown>) => void;
}): ReturnType<typeof platformEgress> {
  const context = egressContexts({ [`KNBOT_${o.platform.toUpperCase()}_API_URL`]: o.apiUrl }, o.log);
  return platformEgress({
    store: o.store,
    send: o.send,
    channels: (bot, platform) => (bot === o.bot && platform === o.platform ? o.secrets : undefined),
    context,
    typing: new PlatformTyping({ context, timeoutSeconds: () => undefined, log: o.log }),
    source: GATEWAY_SOURCE,
    log: o.log,
  });
}
