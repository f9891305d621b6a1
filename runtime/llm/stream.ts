import type { ChatResult } from './client.ts';
import { LlmError } from './errors.ts';

/**
 * An answer being streamed: read it with `for await` (each piece of text as the endpoint sends it), or
 * return it from `onMessage` as it is. `result` settles when the stream has been read to its end. It is
 * read once; nothing is sent until it is read.
 */
export class LlmStream implements AsyncIterable<string> {
  readonly result: Promise<ChatResult>;
  readonly #source: AsyncGenerator<string, ChatResult>;
  #resolve!: (r: ChatResult) => void;
  #reject!: (e: unknown) => void;
  #read = false;

  constructor(source: AsyncGenerator<string, ChatResult>) {
    this.#source = source;
    this.result = new Promise<ChatResult>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // Reading the text alone is fine: a failure is thrown to the reader, not left unhandled here.
    this.result.catch(() => {});
  }

  [Symbol.asyncIterator](): AsyncIterator<string> {
    if (this.#read) throw new Error('an LlmStream can be read only once');
    this.#read = true;
    return this.#drive();
  }

  /** The whole answer. */
  async text(): Promise<string> {
    let text = '';
    for await (const piece of this) text += piece;
    return text;
  }

  async *#drive(): AsyncGenerator<string, void> {
    try {
      this.#resolve(yield* this.#source);
    } catch (err) {
      this.#reject(err);
      throw err;
    } finally {
      // Closed before its end (the reader broke off): the call was cancelled (settling twice is a no-op).
      this.#reject(new LlmError('aborted', 'the stream was closed before its end'));
    }
  }
}

