import type { Price } from './settings.ts';

/** Token counts of one call. `estimated` when the endpoint reported none and they were counted from characters. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  estimated: boolean;
}

/**
 * The price of `model`: its own entry, else the longest entry it starts with, since endpoints answer
 * with dated names (`gpt-4o-mini` prices `gpt-4o-mini-2024-07-18`). Undefined when the table has none.
 */
export function priceFor(prices: Readonly<Record<string, Price>>, model: string): Price | undefined {
  const exact = prices[model];
  if (exact) return exact;
  let best: string | undefined;
  for (const name of Object.keys(prices)) if (model.startsWith(name) && (best === undefined || name.length > best.length)) best = name;
  return best === undefined ? undefined : prices[best];
}

/** USD for `usage` at `price` (per million tokens). */
export function costUsd(usage: Usage, price: Price | undefined): number {
  if (!price) return 0;
  return (usage.inputTokens * price.input + usage.outputTokens * price.output) / 1_000_000;
}

/**
 * A rough token count for text the endpoint has not counted (about four characters a token for
 * English with OpenAI's tokenizers): used to reserve rate budget before a call, and for usage when
 * an endpoint reports none.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}
