/**
 * ISO 8601 durations as Knative's DeliverySpec takes them (`PT0.2S`, `PT1M`, `P1D`): milliseconds, or
 * undefined when the text is not one. Years and months count 365 and 30 days, as Knative's
 * approximation does.
 */
const ISO_DURATION = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

export function parseDuration(text: string): number | undefined {
  const m = ISO_DURATION.exec(text);
  if (!m || text === 'P' || text.endsWith('T')) return undefined;
  const [y, mo, w, d, h, mi, s] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x))) as number[];
  const days = y! * 365 + mo! * 30 + w! * 7 + d!;
  return Math.round((((days * 24 + h!) * 60 + mi!) * 60 + s!) * 1000);
}
