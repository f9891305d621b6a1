import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { CloudEvent } from '../cloudevent.ts';
import { fromJsonObject, toJsonObject } from '../json-format.ts';

// The broker's durable queue: SQLite (node:sqlite, shipped with Node 24) in WAL mode with
// synchronous=FULL, so a commit is on disk before the ingress answers 202 and survives a crash of the
// process or of the machine. Ingress requests that arrive together share one commit (group commit),
// which keeps the fsync off each request's bill. One row per event, one per (event, route) delivery.

const { DatabaseSync: Database } = process.getBuiltinModule('node:sqlite');

export interface NewDelivery {
  route: string;
  /** Deliveries of one partition to an ordered route go one at a time, in order. */
  partition: string | null;
  ordered: boolean;
}

export interface PendingDelivery {
  seq: number;
  route: string;
  attempt: number;
  partition: string | null;
  ordered: boolean;
  event: CloudEvent;
}

interface Waiting {
  event: CloudEvent;
  deliveries: NewDelivery[];
  resolve: () => void;
  reject: (e: Error) => void;
}

export class BrokerStore {
  readonly #db: DatabaseSync;
  readonly #insertEvent: StatementSync;
  readonly #insertDelivery: StatementSync;
  readonly #due: StatementSync;
  readonly #nextDue: StatementSync;
  readonly #delete: StatementSync;
  readonly #reschedule: StatementSync;
  /** A dead delivery is kept, not deleted: an event nobody could take stays on record. */
  readonly #dead: StatementSync;
  readonly #gc: StatementSync;
  #waiting: Waiting[] = [];
  #flushScheduled = false;

  constructor(file: string) {
    this.#db = new Database(file);
    this.#db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = FULL;
      CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS deliveries (
        seq INTEGER NOT NULL, route TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending', partition TEXT, ordered INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (seq, route));
      CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_at);
      CREATE INDEX IF NOT EXISTS deliveries_partition ON deliveries (route, partition, state, seq);
    `);
    this.#insertEvent = this.#db.prepare('INSERT INTO events (body) VALUES (?)');
    this.#insertDelivery = this.#db.prepare('INSERT INTO deliveries (seq, route, next_at, partition, ordered) VALUES (?, ?, ?, ?, ?)');
    // An ordered delivery is due only when it is the oldest pending one of its partition and route.
    this.#due = this.#db.prepare(`
      SELECT d.seq, d.route, d.attempt, d.partition, d.ordered, e.body FROM deliveries d JOIN events e ON e.seq = d.seq
      WHERE d.state = 'pending' AND d.next_at <= ?
        AND (d.ordered = 0 OR d.seq = (SELECT MIN(seq) FROM deliveries o WHERE o.route = d.route AND o.partition IS d.partition AND o.state = 'pending'))
      ORDER BY d.next_at, d.seq LIMIT ?`);
    this.#nextDue = this.#db.prepare("SELECT MIN(next_at) AS at FROM deliveries WHERE state = 'pending'");
    this.#delete = this.#db.prepare('DELETE FROM deliveries WHERE seq = ? AND route = ?');
    this.#reschedule = this.#db.prepare('UPDATE deliveries SET attempt = ?, next_at = ? WHERE seq = ? AND route = ?');
    this.#dead = this.#db.prepare("UPDATE deliveries SET state = 'dead' WHERE seq = ? AND route = ?");
    this.#gc = this.#db.prepare('DELETE FROM events WHERE seq NOT IN (SELECT seq FROM deliveries)');
  }

  /** Stores an event and its deliveries; resolves once they are committed to disk. */
  append(event: CloudEvent, deliveries: NewDelivery[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ event, deliveries, resolve, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  /**
   * Settles a delivery and stores what it produced (a reply to route, or the dead-letter copy) in one
   * commit, so a crash leaves either the old delivery pending or the new ones stored, never neither.
   */
  settle(seq: number, route: string, outcome: 'delivered' | 'dead', produced?: { event: CloudEvent; deliveries: NewDelivery[] }): void {
    this.#db.exec('BEGIN');
    try {
      if (produced) this.#write(produced.event, produced.deliveries, Date.now());
      if (outcome === 'delivered') this.#delete.run(seq, route);
      else this.#dead.run(seq, route);
      this.#db.exec('COMMIT');
    } catch (e) {
      this.#db.exec('ROLLBACK');
      throw e;
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    const batch = this.#waiting;
    this.#waiting = [];
    if (!batch.length) return;
    const now = Date.now();
    try {
      this.#db.exec('BEGIN');
      for (const w of batch) this.#write(w.event, w.deliveries, now);
      this.#db.exec('COMMIT');
    } catch (e) {
      try {
        this.#db.exec('ROLLBACK');
      } catch {
        /* the failed COMMIT already ended it */
      }
      for (const w of batch) w.reject(e as Error);
      return;
    }
    for (const w of batch) w.resolve();
  }

  #write(event: CloudEvent, deliveries: NewDelivery[], now: number): void {
    if (!deliveries.length) return;
    const { lastInsertRowid } = this.#insertEvent.run(JSON.stringify(toJsonObject(event)));
    for (const d of deliveries) this.#insertDelivery.run(lastInsertRowid, d.route, now, d.partition, d.ordered ? 1 : 0);
  }

  due(now: number, limit: number): PendingDelivery[] {
    return this.#due.all(now, limit).map((row) => {
      const r = row as { seq: number; route: string; attempt: number; partition: string | null; ordered: number; body: string };
      const { event } = fromJsonObject(JSON.parse(r.body));
      return { seq: r.seq, route: r.route, attempt: r.attempt, partition: r.partition, ordered: r.ordered === 1, event: event! };
    });
  }

  /** When the next pending delivery is due (epoch ms), or undefined when none is pending. */
  nextDueAt(): number | undefined {
    const row = this.#nextDue.get() as { at: number | null } | undefined;
    return row?.at ?? undefined;
  }

  retryLater(seq: number, route: string, attempt: number, at: number): void {
    this.#reschedule.run(attempt, at, seq, route);
  }

  /** Drops events whose deliveries are all done. */
  collect(): void {
    this.#gc.run();
  }

  count(state: 'pending' | 'dead'): number {
    return (this.#db.prepare('SELECT COUNT(*) AS n FROM deliveries WHERE state = ?').get(state) as { n: number }).n;
  }

  close(): void {
    this.#flush();
    this.#db.close();
  }
}
