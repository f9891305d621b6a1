import { chatChunkEvent } from '../eventing/chat.ts';
import type { CloudEvent } from '../eventing/codec.ts';
import type { ChatMessage } from './bot.ts';

/**
 * Sends a streamed reply's pieces to `K_SINK` as `dev.knbot.chat.reply.chunk` events while the bot
 * writes (DESIGN §4: streamed to WebSocket and SSE clients as produced). One send at a time, in order;
 * pieces written while a send is in flight go out together in the next, so a fast bot makes fewer,
 * larger chunks instead of a queue. The bot never waits on the sink, and a failed send only stops the
 * chunks: the whole reply still goes back as the answer.
 */
export class ChunkStream {
  readonly #message: ChatMessage;
  readonly #source: string;
  readonly #send: (event: CloudEvent) => Promise<void>;
  #pending = '';
  #index = 0;
  #inFlight: Promise<void> | undefined;
  #failed = false;

  constructor(message: ChatMessage, source: string, send: (event: CloudEvent) => Promise<void>) {
    this.#message = message;
    this.#source = source;
    this.#send = send;
  }

  push(text: string): void {
    if (this.#failed) return;
    this.#pending += text;
    this.#inFlight ??= this.#pump();
  }

  /** Resolves once every piece pushed so far was sent (or sending failed). */
  async flush(): Promise<void> {
    await this.#inFlight;
  }

  async #pump(): Promise<void> {
    while (this.#pending !== '' && !this.#failed) {
      const text = this.#pending;
      this.#pending = '';
      try {
        await this.#send(chatChunkEvent(this.#message, text, this.#index++, this.#source));
      } catch {
        this.#failed = true;
      }
    }
    this.#inFlight = undefined;
  }
}
