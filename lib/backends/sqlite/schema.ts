/**
 * The embedded store's on-disk layout. One SQLite file in WAL mode holds every lock of one host;
 * any process that opens the same file takes part in the same locks.
 *
 * Tables
 *  - `locks`: one row per lock that has a holder. `token` is the holder's secret (compare for
 *    release/extend; never shown, the inspector shows `tokenHash`). `expires_at` is epoch ms by
 *    the store's clock (clock.ts: the epoch at boot plus the host's monotonic clock, so that a
 *    wall-clock step moves no lease; the epoch at boot is in `host_clock`, one row per boot). A row whose
 *    `expires_at` has passed is free: the next acquirer deletes it (recording `expired`) in the
 *    same transaction that takes the lock. Until then, or until a watching instance sweeps it, the
 *    inspector shows it with health `expired`.
 *  - `fences`: the last fence handed out per name. It is never reset nor deleted, so fences
 *    strictly increase across holders even after the lock row is gone. It grows by one small row
 *    per distinct lock name ever used.
 *  - `waiters`: blocked `acquire` calls, so the inspector can show the queue and so that a freed
 *    lock goes to the oldest live waiter (FIFO by the AUTOINCREMENT id, never reused). A waiter
 *    holds a lease (`lease_until`) that it refreshes while it waits; a crashed waiter's row is
 *    pruned once its lease passes, so it cannot block the queue for longer than that.
 *  - `job_runs`: the scheduler's run records (lib/scheduler), one per job, occurrence and
 *    instance; the newest occurrences per job are kept.
 *  - `jobs`, `job_instances`: job registration (lib/scheduler): each job's newest announced
 *    definition (schedule, lockAtMostFor...) and when each instance last announced it; instances
 *    unseen for a week are deleted at the next announcement.
 *  - `events`: acquired / released / expired / forced / changed, each with the LockInfo (without
 *    `backend`) as it was then; and the clients' telemetry, which changes no lock: `attempt` (a
 *    refused try or a queue join; no lock) and `lost` (a holder's owner and fence, the reason in
 *    the stored lock's `meta.reason`). Instances in other processes read it when woken to push changes to
 *    `watch` subscribers and to learn why one of their handles disappeared. Bounded: only the
 *    newest `eventRetention` rows are kept.
 *
 * `PRAGMA user_version` is the layout version; a file written by a newer layout is refused rather
 * than misread.
 */
import type Database from 'better-sqlite3';

// 2 added `job_runs` (DDL is idempotent, so an older file just gains it); 3 added `events.ms`;
// 4 added `jobs` and `job_instances` (job registration, created by the idempotent DDL).
export const SCHEMA_VERSION = 4;

const DDL = `
CREATE TABLE IF NOT EXISTS locks (
  name            TEXT PRIMARY KEY,
  token           TEXT NOT NULL,
  owner           TEXT NOT NULL,
  fence           INTEGER NOT NULL,
  acquired_at     INTEGER NOT NULL,
  expires_at      INTEGER NOT NULL,
  ttl_ms          INTEGER NOT NULL,
  labels          TEXT,
  holder_instance TEXT NOT NULL,
  holder_host     TEXT NOT NULL,
  holder_pid      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS locks_expires_at ON locks (expires_at);

CREATE TABLE IF NOT EXISTS fences (
  name  TEXT PRIMARY KEY,
  fence INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS waiters (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  name        TEXT NOT NULL,
  owner       TEXT NOT NULL,
  instance    TEXT NOT NULL,
  since       INTEGER NOT NULL,
  lease_until INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS waiters_name ON waiters (name, id);

CREATE TABLE IF NOT EXISTS events (
  id    INTEGER PRIMARY KEY AUTOINCREMENT,
  at    INTEGER NOT NULL,
  type  TEXT NOT NULL,
  name  TEXT NOT NULL,
  fence INTEGER,
  lock  TEXT,
  ms    INTEGER
);
CREATE INDEX IF NOT EXISTS events_name ON events (name, id);

CREATE TABLE IF NOT EXISTS job_runs (
  job         TEXT NOT NULL,
  occurrence  INTEGER NOT NULL,
  instance    TEXT NOT NULL,
  outcome     TEXT NOT NULL,
  started_at  INTEGER,
  finished_at INTEGER,
  fence       TEXT,
  detail      TEXT,
  PRIMARY KEY (job, occurrence, instance)
);
CREATE INDEX IF NOT EXISTS job_runs_recent ON job_runs (job, occurrence DESC);

CREATE TABLE IF NOT EXISTS jobs (
  name       TEXT PRIMARY KEY,
  spec       TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS job_instances (
  job      TEXT NOT NULL,
  instance TEXT NOT NULL,
  seen_at  INTEGER NOT NULL,
  PRIMARY KEY (job, instance)
);
`;

export interface LockRow {
  name: string;
  token: string;
  owner: string;
  fence: number;
  acquired_at: number;
  expires_at: number;
  ttl_ms: number;
  labels: string | null;
  holder_instance: string;
  holder_host: string;
  holder_pid: number;
}

export interface WaiterRow {
  id: number;
  name: string;
  owner: string;
  instance: string;
  since: number;
  lease_until: number;
}

export interface EventRow {
  id: number;
  at: number;
  type: string;
  name: string;
  fence: number | null;
  lock: string | null;
  ms: number | null;
}

/**
 * Sets the connection up and creates the tables. Safe to run from several processes at once:
 * the DDL runs in an IMMEDIATE transaction, and every statement is idempotent.
 */
export function migrate(db: Database.Database): void {
  // WAL lets readers (the inspector) run while a writer commits; NORMAL sync is durable against
  // a crashed process. A power loss may drop the last commits, and so reissue a fence that was
  // handed out just before it: the protected resource then refuses that fence as not newer, which
  // costs liveness, never mutual exclusion.
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = OFF');
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new Error(`lock store was written by a newer lockdeck (layout ${version}, this one knows ${SCHEMA_VERSION})`);
  }
  if (version === SCHEMA_VERSION) return;
  db.transaction(() => {
    db.exec(DDL);
    // `events.ms` (waited for `acquired`, held for the others): added in layout 3.
    const cols = db.prepare("SELECT name FROM pragma_table_info('events')").all() as { name: string }[];
    if (!cols.some((c) => c.name === 'ms')) db.exec('ALTER TABLE events ADD COLUMN ms INTEGER');
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
