import type { BotSnapshot } from './scaler.ts';

export interface Sample {
  t: number;
  bots: Record<string, { ready: number; starting: number; draining: number; inFlight: number; held: number }>;
}

/** The last `size` samples of every bot's instances and load, one per tick: the dashboard's chart. */
export class Timeline {
  readonly #size: number;
  readonly #samples: Sample[] = [];

  constructor(size: number) {
    this.#size = size;
  }

  add(snapshots: BotSnapshot[]): void {
    const bots: Sample['bots'] = {};
    for (const s of snapshots) {
      const count = (state: string) => s.instances.filter((i) => i.state === state).length;
      bots[s.name] = { ready: count('ready'), starting: count('starting'), draining: count('draining'), inFlight: s.inFlight, held: s.held };
    }
    this.#samples.push({ t: Date.now(), bots });
    if (this.#samples.length > this.#size) this.#samples.shift();
  }

  samples(): Sample[] {
    return this.#samples;
  }
}
