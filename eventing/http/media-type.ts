/** A parsed `Content-Type` (RFC 9110 §8.3.1): type and subtype lower-cased, parameter names lower-cased. */
export interface MediaType {
  type: string;
  subtype: string;
  /** `type/subtype`, lower case, without parameters. */
  essence: string;
  params: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Parses a media type; `undefined` when the value is not `token/token *(; name=value)`. */
export function parseMediaType(value: string): MediaType | undefined {
  const semi = value.indexOf(';');
  const essence = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  const slash = essence.indexOf('/');
  if (slash <= 0) return undefined;
  const type = essence.slice(0, slash);
  const subtype = essence.slice(slash + 1);
  if (!TOKEN.test(type) || !TOKEN.test(subtype)) return undefined;
  const params: Record<string, string> = {};
  if (semi >= 0 && !parseParams(value.slice(semi + 1), params)) return undefined;
  return { type, subtype, essence, params };
}

function parseParams(text: string, into: Record<string, string>): boolean {
  let i = 0;
  const skipSpace = () => {
    while (text[i] === ' ' || text[i] === '\t') i++;
  };
  for (;;) {
    skipSpace();
    if (i >= text.length) return true;
    const eq = text.indexOf('=', i);
    if (eq < 0) return false;
    const name = text.slice(i, eq).toLowerCase();
    if (!TOKEN.test(name)) return false;
    i = eq + 1;
    let value = '';
    if (text[i] === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) value += text[i] === '\\' ? text[++i] : text[i];
      if (text[i++] !== '"') return false;
    } else {
      while (i < text.length && text[i] !== ';' && text[i] !== ' ' && text[i] !== '\t') value += text[i++];
      if (!TOKEN.test(value)) return false;
    }
    into[name] = value;
    skipSpace();
    if (i >= text.length) return true;
    if (text[i++] !== ';') return false;
  }
}

/** JSON-formatted data: subtype `json` or a `+json` suffix (JSON format §3.1). */
export function isJsonMediaType(mt: MediaType): boolean {
  return mt.subtype === 'json' || mt.subtype.endsWith('+json');
}

/** Data that is text: `text/*`, XML, or any media type that names a charset. */
export function isTextMediaType(mt: MediaType): boolean {
  return mt.type === 'text' || mt.subtype === 'xml' || mt.subtype.endsWith('+xml') || 'charset' in mt.params;
}

/** The CloudEvents content modes a `Content-Type` selects (HTTP binding §3). */
export type ContentMode = 'binary' | 'structured' | 'batch';

export function contentModeOf(mt: MediaType | undefined): ContentMode {
  if (mt === undefined || mt.type !== 'application') return 'binary';
  if (mt.subtype.startsWith('cloudevents-batch')) return 'batch';
  if (mt.subtype.startsWith('cloudevents')) return 'structured';
  return 'binary';
}
