/** One server-sent event. */
export interface SseEvent {
  event: string;
  data: string;
  id: string | undefined;
}

/**
 * A text/event-stream parser (WHATWG HTML §9.2.6) fed with text as it arrives, in pieces cut anywhere:
 * lines end in CRLF, LF or CR; `data` lines join with LF; a blank line dispatches; comments (`:`) and
 * unknown fields are skipped; an event not ended by a blank line when the stream ends is dropped.
 */
export class SseParser {
  #line = '';
  #afterCr = false;
  #data: string[] = [];
  #event = '';
  #id: string | undefined;
  #hasData = false;

  push(text: string): SseEvent[] {
    const out: SseEvent[] = [];
    // The LF of a CRLF cut between two pieces.
    let start = this.#afterCr && text.charCodeAt(0) === 10 ? 1 : 0;
    this.#afterCr = false;
    for (let i = start; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.#lineDone(this.#line + text.slice(start, i), out);
      this.#line = '';
      if (c === 13) {
        if (i + 1 === text.length) this.#afterCr = true;
        else if (text.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    if (start < text.length) this.#line += text.slice(start);
    return out;
  }

  #lineDone(line: string, out: SseEvent[]): void {
    if (line === '') {
      if (this.#hasData) out.push({ event: this.#event || 'message', data: this.#data.join('\n'), id: this.#id });
      this.#data = [];
      this.#hasData = false;
      this.#event = '';
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') {
      this.#data.push(value);
      this.#hasData = true;
    } else if (field === 'event') this.#event = value;
    else if (field === 'id' && !value.includes('\0')) this.#id = value;
  }
}
