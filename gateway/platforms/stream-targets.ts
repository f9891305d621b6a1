// The platforms that can edit a message, as `EditTarget`s for `relayStream`.
import type { Conversation } from '../../eventing/chat.ts';
import type { Button } from './buttons.ts';
import { type ApiResult, errorText } from './egress.ts';
import { discordWebhookCall } from './discord.ts';
import { str } from './events.ts';
import { slackPost, slackUpdate } from './slack.ts';
import type { EditTarget } from './stream.ts';
import { telegramCall, telegramEditVerdict, telegramKeyboard } from './telegram.ts';
import type { EgressContext, ReplyHandle } from './types.ts';

/** A failed platform call inside a stream; carries the outcome fields, never the text or a token. */
export class StreamSendError extends Error {
  readonly status: number | undefined;
  readonly retryable: boolean;

  constructor(r: Extract<ApiResult, { ok: false }>) {
    super(r.reason);
    this.name = 'StreamSendError';
    this.status = r.status;
    this.retryable = r.retryable;
  }
}

function check(r: ApiResult): unknown {
  if (!r.ok) throw new StreamSendError(r);
  return r.body;
}

function idFrom(value: unknown): string {
  const id = str(value);
  if (id === undefined) throw new StreamSendError({ ok: false, reason: errorText(value) ?? 'the platform returned no message id', retryable: false });
  return id;
}

/** Slack: chat.postMessage, then chat.update on the message's `ts`. */
export function slackEditTarget(ctx: EgressContext, botToken: string, conversation: Conversation): EditTarget {
  return {
    post: async (text, buttons) => idFrom((check(await slackPost(ctx, botToken, conversation.id, text, conversation.thread, buttons)) as { ts?: unknown }).ts),
    edit: async (ts, text, buttons) => void check(await slackUpdate(ctx, botToken, conversation.id, ts, text, buttons)),
  };
}

/** Telegram: sendMessage, then editMessageText on its message_id; buttons as the inline keyboard. */
export function telegramEditTarget(ctx: EgressContext, botToken: string, conversation: Conversation): EditTarget {
  const thread = conversation.thread !== undefined && /^\d+$/.test(conversation.thread) ? { message_thread_id: Number(conversation.thread) } : {};
  const markup = (buttons: readonly Button[] | undefined) => (buttons?.length ? { reply_markup: telegramKeyboard(buttons) } : {});
  return {
    post: async (text, buttons) =>
      idFrom((check(await telegramCall(ctx, botToken, 'sendMessage', conversation.id, { text, ...thread, ...markup(buttons) })) as { result?: { message_id?: unknown } }).result?.message_id),
    edit: async (id, text, buttons) => void check(await telegramCall(ctx, botToken, 'editMessageText', conversation.id, { message_id: Number(id), text, ...markup(buttons) }, telegramEditVerdict)),
  };
}

/**
 * Discord, through the interaction token: the first message replaces the deferred placeholder when
 * there is one, and is then addressed as `@original` (Edit Original Interaction Response); later
 * messages are follow-ups, edited by their message id (Edit Followup Message).
 */
export function discordEditTarget(ctx: EgressContext, applicationId: string, handle: ReplyHandle): EditTarget {
  let editOriginal = handle.editOriginal === true;
  return {
    post: async (text, buttons) => {
      const original = editOriginal;
      const body = check(await discordWebhookCall(ctx, applicationId, handle.value, text, original ? ORIGINAL : undefined, buttons));
      editOriginal = false;
      const id = idFrom((body as { id?: unknown }).id);
      return original ? ORIGINAL : id;
    },
    edit: async (id, text, buttons) => void check(await discordWebhookCall(ctx, applicationId, handle.value, text, id, buttons)),
  };
}

const ORIGINAL = '@original';
