import type { ChannelSecrets } from '../gateway/hooks.ts';
import type { BotManifest } from '../knative/manifest.ts';

/**
 * The gateway's view of each bot's `bot.channels` (DESIGN §7): every key read from the environment
 * variable its manifest names. A `secretKeyRef` is a cluster's business: there the gateway's
 * Deployment maps the Secret into such a variable; locally it resolves to nothing, and the adapter
 * answers 500 `missing_secret` naming the key, not the value.
 */
export function channelsFromManifests(bots: readonly { name: string; manifest: BotManifest }[], env: Readonly<Record<string, string | undefined>>): ChannelSecrets {
  const table = new Map<string, Record<string, string | undefined>>();
  for (const { name, manifest } of bots) {
    for (const [platform, keys] of Object.entries(manifest.bot.channels)) {
      const secrets: Record<string, string | undefined> = {};
      for (const [key, source] of Object.entries(keys)) secrets[key] = 'env' in source ? env[source.env] : undefined;
      table.set(`${name}/${platform}`, secrets);
    }
  }
  return (bot, platform) => table.get(`${bot}/${platform}`);
}
