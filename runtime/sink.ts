import { randomUUID } from 'node:crypto';
import { type CloudEvent, encodeBinary, validateCloudEvent } from '../eventing/codec.ts';
import type { EmitEvent } from './bot.ts';

/** `K_CE_OVERRIDES` (Knative SinkBinding): `{"extensions": {name: value}}` set on every event sent. */
export function parseCeOverrides(value: string | undefined): Record<string, string> {
  if (!value) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (e) {
    throw new Error(`K_CE_OVERRIDES is not JSON: ${(e as Error).message}`);
  }
  const ext = (parsed as { extensions?: unknown } | null)?.extensions;
  if (ext === undefined) return {};
  if (ext === null || typeof ext !== 'object' || Array.isArray(ext)) throw new Error('K_CE_OVERRIDES.extensions must be an object');
  return Object.fromEntries(Object.entries(ext).map(([k, v]) => [k, String(v)]));
}

export interface SinkOptions {
  url: string | undefined;
  overrides: Record<string, string>;
  source: string;
  timeoutMs: number;
}

/** Completes an event a bot emits: `specversion`, `id`, `source`, `time` when missing, then the overrides. */
export function completeEvent(partial: EmitEvent, options: Pick<SinkOptions, 'overrides' | 'source'>): CloudEvent {
  const event = { specversion: '1.0', id: randomUUID(), source: options.source, time: new Date().toISOString(), ...partial } as CloudEvent;
  if (event.data !== undefined && event.datacontenttype === undefined && !(event.data instanceof Uint8Array) && typeof event.data !== 'string') {
    event.datacontenttype = 'application/json';
  }
  Object.assign(event, options.overrides);
  return event;
}

/** Sends one event to `K_SINK` in binary mode; rejects on a network error or a non-2xx answer. */
export async function sendToSink(event: CloudEvent, options: SinkOptions, signal?: AbortSignal): Promise<void> {
  if (!options.url) throw new Error('K_SINK is not set: this bot has no sink to emit to');
  const errors = validateCloudEvent(event);
  if (errors.length) throw new Error(`cannot emit an invalid event: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`);
  const msg = encodeBinary(event);
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const res = await fetch(options.url, {
    method: 'POST',
    headers: msg.headers,
    body: msg.body,
    signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
  });
  await res.arrayBuffer();
  if (!res.ok) throw new Error(`K_SINK answered ${res.status}`);
}
