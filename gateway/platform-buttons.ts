import type { CloudEvent } from '../eventing/codec.ts';
import { ACTION_INVOKED, type Button, type ChatData, type ChatPlatform, wireId } from './platforms/index.ts';
import type { GatewayStore } from './store.ts';

// What the gateway remembers of the buttons it sent, so a press comes back as the bot wrote the button.
// Platforms carry back only a short id (Telegram's callback_data holds 64 bytes, Discord's custom_id
// 100) and, but for Slack, no value: each button sent is kept by platform, bot, conversation and the id
// it had on the wire, with the bot's own id, value and label.

/** How long a button is remembered: a press on an older one comes back with the id it had on the wire. */
export const BUTTON_MEMORY_TTL_MS = 7 * 24 * 3_600_000;

const buttonKey = (platform: ChatPlatform, bot: string, conversation: string, wire: string) => `b:${platform}:${bot}:${conversation}:${wire}`;

/** Remembers the buttons of a reply to `conversation` (its id, without the thread: presses name no thread everywhere). */
export async function rememberButtons(store: GatewayStore, platform: ChatPlatform, bot: string, conversation: string, buttons: readonly Button[], ttlMs = BUTTON_MEMORY_TTL_MS): Promise<void> {
  await Promise.all(
    buttons.map(async (b) => {
      const key = buttonKey(platform, bot, conversation, wireId(platform, b.id));
      // Written anew each time, so a button sent again is remembered from then on.
      await store.put(key, JSON.stringify({ id: b.id, value: b.value, label: b.label }), ttlMs);
    }),
  );
}

/**
 * A normalized `dev.knbot.chat.action.invoked` that presses a button the gateway sent gets that button's
 * id and value back in `data.action`, and its label, what the user saw and pressed, as `data.text` (as
 * the web chat page says it). True when it did.
 */
export async function restoreAction(store: GatewayStore, platform: ChatPlatform, bot: string, event: CloudEvent): Promise<boolean> {
  if (event.type !== ACTION_INVOKED) return false;
  const data = event.data as ChatData | undefined;
  const action = data?.action;
  if (!data || !action || action.id === '' || typeof data.conversation?.id !== 'string') return false;
  const held = await store.get(buttonKey(platform, bot, data.conversation.id, action.id));
  if (held === undefined) return false;
  const button = JSON.parse(held) as { id: string; value: string; label: string };
  event.data = { ...data, text: button.label, action: { ...action, id: button.id, value: button.value } };
  return true;
}
