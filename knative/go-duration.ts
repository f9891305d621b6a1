/** A Go `time.Duration` string ("30s", "1m30s", "1.5h"), in seconds; undefined when it is not one. */
const PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
const UNIT: Record<string, number> = { ns: 1e-9, us: 1e-6, µs: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

export function parseGoDuration(text: string): number | undefined {
  if (text === '0') return 0;
  PART.lastIndex = 0;
  let seconds = 0;
  let read = 0;
  for (let m = PART.exec(text); m; m = PART.exec(text)) {
    seconds += Number(m[1]) * UNIT[m[2]!]!;
    read = PART.lastIndex;
  }
  return read === text.length && read > 0 ? seconds : undefined;
}
