import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { CloudEvent } from '../cloudevent.ts';
import { fromJsonObject, toJsonObject } from '../json-format.ts';

// The broker's durable queue: SQLite (node:sqlite, shipped with Node 24) in WAL mode. Writes that
// arrive together (ingress, delivery outcomes) share one transaction (group commit); a commit writes
// the WAL, which already survives a crash of the process; the WAL is then fsynced on libuv's thread
// pool, off the event loop, and only then are the writers told (and ingress answers 202), so what is
// acknowledged also survives a crash of the machine. Commits made while an fsync runs share the next
// one. SQLite's own synchronous=NORMAL leaves the commit fsync to us and still syncs its checkpoints.
// One row per event, one per (event, route) delivery.

const { DatabaseSync: Database } = process.getBuiltinModule('node:sqlite');
const { fsync, openSync, closeSync } = process.getBuiltinModule('node:fs');

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

/** A write waiting for the next commit: it runs inside the transaction, then its promise settles. */
interface Waiting {
  write: (now: number) => void;
  /** Runs right after the commit, before the fsync: the rows are visible to queries from then on. */
  committed?: () => void;
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
  readonly #file: string;
  #waiting: Waiting[] = [];
  #flushScheduled = false;
  /** Committed, waiting for the WAL to reach the disk. */
  #unsynced: Waiting[] = [];
  #syncing = false;
  #walFd: number | undefined;

  constructor(file: string) {
    this.#file = file;
    this.#db = new Database(file);
    this.#db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = NORMAL;
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
    this.#nextDue = this.#db.prepare("SELECT MIN(next_at) AS at FROM deliveries WHERE state = 'pending' AND next_at > ?");
    this.#delete = this.#db.prepare('DELETE FROM deliveries WHERE seq = ? AND route = ?');
    this.#reschedule = this.#db.prepare('UPDATE deliveries SET attempt = ?, next_at = ? WHERE seq = ? AND route = ?');
    this.#dead = this.#db.prepare("UPDATE deliveries SET state = 'dead' WHERE seq = ? AND route = ?");
    this.#gc = this.#db.prepare('DELETE FROM events WHERE seq NOT IN (SELECT seq FROM deliveries)');
  }

  /**
   * Stores an event and its deliveries; resolves, once they are on disk, with the deliveries as
   * stored. `committed` gets them as soon as they are committed (and a scan of the store could find
   * them), so that their future owner can claim them before anything else does.
   */
  async append(event: CloudEvent, deliveries: NewDelivery[], committed?: (stored: PendingDelivery[]) => void): Promise<PendingDelivery[]> {
    let stored: PendingDelivery[] = [];
    await this.#enqueue(
      (now) => {
        const seq = this.#write(event, deliveries, now);
        stored = deliveries.map((d) => ({ seq, route: d.route, attempt: 0, partition: d.partition, ordered: d.ordered, event }));
      },
      committed && (() => committed(stored)),
    );
    return stored;
  }

  /**
   * Settles a delivery and stores what it produced (a reply to route, or the dead-letter copy) in one
   * commit, so a crash leaves either the old delivery pending or the new ones stored, never neither.
   */
  async settle(
    seq: number,
    route: string,
    outcome: 'delivered' | 'dead',
    produced?: { event: CloudEvent; deliveries: NewDelivery[] },
    committed?: (stored: PendingDelivery[]) => void,
  ): Promise<PendingDelivery[]> {
    let stored: PendingDelivery[] = [];
    await this.#enqueue(
      (now) => {
        if (produced) {
          const at = this.#write(produced.event, produced.deliveries, now);
          stored = produced.deliveries.map((d) => ({ seq: at, route: d.route, attempt: 0, partition: d.partition, ordered: d.ordered, event: produced.event }));
        }
        if (outcome === 'delivered') this.#delete.run(seq, route);
        else this.#dead.run(seq, route);
      },
      committed && (() => committed(stored)),
    );
    return stored;
  }

  retryLater(seq: number, route: string, attempt: number, at: number): Promise<void> {
    return this.#enqueue(() => this.#reschedule.run(attempt, at, seq, route));
  }

  /**
   * Group commit: every write asked for in this turn of the event loop goes into one transaction, so
   * one fsync covers a burst of ingress and delivery outcomes.
   */
  #enqueue(write: (now: number) => void, committed?: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ write, ...(committed ? { committed } : {}), resolve, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#flushScheduled = false;
    const batch = this.#waiting;
    this.#waiting = [];
    if (!batch.length) return;
    const now = Date.now();
    try {
      this.#db.exec('BEGIN');
      for (const w of batch) w.write(now);
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
    for (const w of batch) w.committed?.();
    this.#unsynced.push(...batch);
    this.#sync();
  }

  #sync(): void {
    if (this.#syncing || !this.#unsynced.length) return;
    const group = this.#unsynced;
    this.#unsynced = [];
    this.#syncing = true;
    this.#walFd ??= openSync(`${this.#file}-wal`, 'r');
    fsync(this.#walFd, (err) => {
      this.#syncing = false;
      for (const w of group) {
        if (err) w.reject(err);
        else w.resolve();
      }
      this.#sync();
    });
  }

  #write(event: CloudEvent, deliveries: NewDelivery[], now: number): number {
    if (!deliveries.length) return 0;
    const seq = Number(this.#insertEvent.run(JSON.stringify(toJsonObject(event))).lastInsertRowid);
    for (const d of deliveries) this.#insertDelivery.run(seq, d.route, now, d.partition, d.ordered ? 1 : 0);
    return seq;
  }

  /** Deliveries due at `now`, oldest first; those `skip` names (already held elsewhere) are not parsed. */
  due(now: number, limit: number, skip?: (seq: number, route: string) => boolean): PendingDelivery[] {
    const out: PendingDelivery[] = [];
    for (const row of this.#due.iterate(now, limit)) {
      const r = row as { seq: number; route: string; attempt: number; partition: string | null; ordered: number; body: string };
      if (skip?.(r.seq, r.route)) continue;
      const { event } = fromJsonObject(JSON.parse(r.body));
      out.push({ seq: r.seq, route: r.route, attempt: r.attempt, partition: r.partition, ordered: r.ordered === 1, event: event! });
    }
    return out;
  }

  /**
   * When the next delivery falls due after `now` (epoch ms), or undefined. Those due already are in
   * flight or found by the scan that asks.
   */
  nextDueAfter(now: number): number | undefined {
    const row = this.#nextDue.get(now) as { at: number | null } | undefined;
    return row?.at ?? undefined;
  }


  /** Drops events whose deliveries are all done. */
  collect(): void {
    this.#gc.run();
  }

  /** Events still stored (some delivery of theirs pending or dead). */
  eventCount(): number {
    return (this.#db.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n;
  }

  count(state: 'pending' | 'dead'): number {
    return (this.#db.prepare('SELECT COUNT(*) AS n FROM deliveries WHERE state = ?').get(state) as { n: number }).n;
  }

  close(): void {
    this.#flush();
    this.#db.close();
    if (this.#walFd !== undefined) closeSync(this.#walFd);
  }
}
