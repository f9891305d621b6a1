// Reply buttons (quick replies): the `buttons` field of a `dev.knbot.chat.reply.send`, read and checked
// here once for every platform, and the pieces each platform's rendering shares (labels cut to fit, ids
// shortened to fit, a numbered list for when there are more than a platform shows). A press comes back
// as `dev.knbot.chat.action.invoked` with `action.id` = the button's id.
import { createHash } from 'node:crypto';
import type { ChatPlatform } from './types.ts';

/** One button, defaults filled in: `id` and `value` are the label unless the bot gave them. */
export interface Button {
  label: string;
  id: string;
  value: string;
}

/** Why a reply's `buttons` were not used; names the field, never its text. */
export interface ButtonsProblem {
  code: 'not_an_array' | 'too_many' | 'bad_button' | 'duplicate_id';
  /** `buttons`, `buttons[2].label`, … */
  path: string;
  message: string;
}

/** More than any platform shows at once even as a list (WhatsApp 10, LINE 13, Slack 25 per block, Discord 125 as menus). */
export const MAX_BUTTONS = 100;

/**
 * The buttons of a reply's data. Absent, `null` or `[]`: none. Anything malformed (not an array, an item
 * that is neither a non-blank string nor `{label, id?, value?}` with strings, two buttons with one id, more
 * than MAX_BUTTONS) gives no buttons and a problem: the reply still goes out, as text.
 */
export function replyButtons(data: unknown): { buttons: Button[]; problem?: ButtonsProblem } {
  const raw = data !== null && typeof data === 'object' ? (data as { buttons?: unknown }).buttons : undefined;
  if (raw === undefined || raw === null) return { buttons: [] };
  const bad = (code: ButtonsProblem['code'], path: string, message: string) => ({ buttons: [], problem: { code, path, message } });
  if (!Array.isArray(raw)) return bad('not_an_array', 'buttons', 'buttons must be an array');
  if (raw.length > MAX_BUTTONS) return bad('too_many', 'buttons', `at most ${MAX_BUTTONS} buttons`);
  const buttons: Button[] = [];
  const ids = new Set<string>();
  for (const [i, item] of raw.entries()) {
    const at = `buttons[${i}]`;
    let label: string;
    let id: unknown;
    let value: unknown;
    if (typeof item === 'string') label = item;
    else if (item !== null && typeof item === 'object' && !Array.isArray(item)) {
      const o = item as Record<string, unknown>;
      if (typeof o.label !== 'string') return bad('bad_button', `${at}.label`, 'a button needs a label string');
      ({ label, id, value } = o as { label: string; id?: unknown; value?: unknown });
    } else return bad('bad_button', at, 'a button is a string or {label, id?, value?}');
    // A label is one line: platforms show buttons on one line, and some refuse line breaks in them.
    label = label.replace(/\s+/gu, ' ').trim();
    if (label === '') return bad('bad_button', typeof item === 'string' ? at : `${at}.label`, 'a button label must not be blank');
    if (id !== undefined && (typeof id !== 'string' || id === '')) return bad('bad_button', `${at}.id`, 'a button id is a non-empty string');
    if (value !== undefined && typeof value !== 'string') return bad('bad_button', `${at}.value`, 'a button value is a string');
    const button = { label, id: (id as string | undefined) ?? label, value: (value as string | undefined) ?? label };
    if (ids.has(button.id)) return bad('duplicate_id', `${at}.id`, 'two buttons have the same id');
    ids.add(button.id);
    buttons.push(button);
  }
  return { buttons };
}

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * `text` in at most `max` UTF-16 units (how the platforms count, or stricter), cut between graphemes
 * and ended with an ellipsis when it had to be cut.
 */
export function fit(text: string, max: number): string {
  if (text.length <= max) return text;
  let out = '';
  for (const { segment } of segmenter.segment(text)) {
    if (out.length + segment.length + 1 > max) break;
    out += segment;
  }
  return `${out.trimEnd()}…`;
}

/**
 * The most bytes of a button id each platform carries back (Telegram callback_data 64, Discord custom_id
 * 100, WhatsApp list row id 200 (reply button ids 256), Slack action_id 255, LINE postback data 300).
 * Counted in UTF-8 bytes, which is never fewer than the characters some of them count.
 */
export const WIRE_ID_BYTES: Readonly<Record<ChatPlatform, number>> = { slack: 255, telegram: 64, discord: 100, line: 300, whatsapp: 200 };

/**
 * What a button's id is on the wire: the id itself when the platform carries it, else `#` and a digest of
 * it. The gateway remembers each digest it sends (`gateway/platform-buttons.ts`), so a press on it comes
 * back with the bot's own id.
 */
export function wireId(platform: ChatPlatform, id: string): string {
  if (Buffer.byteLength(id, 'utf8') <= WIRE_ID_BYTES[platform]) return id;
  return `#${createHash('sha256').update(id).digest('base64url').slice(0, 27)}`;
}

/**
 * The text followed by the buttons as a numbered list, for a platform that cannot show that many: the
 * user answers with a number or a label, which reaches the bot as an ordinary message.
 */
export function withNumberedList(text: string, buttons: readonly Button[], maxLabel = 100): string {
  return `${text}\n\n${buttons.map((b, i) => `${i + 1}. ${fit(b.label, maxLabel)}`).join('\n')}`;
}

/** `items` in rows of at most `size`. */
export function rows<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Splits `text` into a head and a tail of at most `max` UTF-16 units, for a platform whose message with
 * buttons holds less text than its plain messages: the tail goes with the buttons. Like `splitText` it
 * prefers a line break, then a space, in the tail's first half, drops the break, and never cuts a
 * surrogate pair; the head is empty when the whole text fits.
 */
export function splitTail(text: string, max: number): { head: string; tail: string } {
  if (text.length <= max) return { head: '', tail: text };
  const start = text.length - max;
  const within = (i: number) => i >= start - 1 && i <= start - 1 + max / 2;
  for (const sep of ['\n', ' ']) {
    const at = text.indexOf(sep, start - 1);
    if (at !== -1 && within(at)) return { head: text.slice(0, at), tail: text.slice(at + 1) };
  }
  const code = text.charCodeAt(start);
  const cut = code >= 0xdc00 && code <= 0xdfff ? start + 1 : start;
  return { head: text.slice(0, cut), tail: text.slice(cut) };
}
