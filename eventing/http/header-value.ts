// Binary-mode header values (HTTP binding §3.1.3.2): senders percent-encode space, `"`, `%` and every
// character outside U+0021–U+007E as UTF-8 bytes; receivers percent-decode and reject invalid UTF-8.

const utf8 = new TextDecoder('utf-8', { fatal: true });
const NEEDS_DECODING = /[%\u0080-\u00ff]/;
const NEEDS_ENCODING = /[^\u0021\u0023\u0024\u0026-\u007e]/;
const HEX = '0123456789ABCDEF';

/**
 * Decodes a `ce-` header value as Node's HTTP parser hands it over (one char per byte). Raw UTF-8
 * bytes, as Go senders write them unencoded, are recovered; a byte sequence that is not UTF-8, or a
 * `%` not followed by two hex digits, gives `undefined`.
 */
export function decodeHeaderValue(raw: string): string | undefined {
  if (!NEEDS_DECODING.test(raw)) return raw;
  const bytes = new Uint8Array(raw.length);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c > 0xff) return undefined;
    if (c !== 0x25) {
      bytes[n++] = c;
      continue;
    }
    const hi = hexValue(raw.charCodeAt(i + 1));
    const lo = hexValue(raw.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return undefined;
    bytes[n++] = (hi << 4) | lo;
    i += 2;
  }
  try {
    return utf8.decode(bytes.subarray(0, n));
  } catch {
    return undefined;
  }
}

/** Percent-encodes a value for a `ce-` header, upper-case hex, UTF-8 bytes. */
export function encodeHeaderValue(value: string): string {
  if (!NEEDS_ENCODING.test(value)) return value;
  let out = '';
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (c >= 0x21 && c <= 0x7e && c !== 0x22 && c !== 0x25) {
      out += ch;
      continue;
    }
    for (const b of Buffer.from(ch, 'utf8')) out += `%${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}
