import 'server-only';

/**
 * The console's own database, `<LOCKDECK_DATA_DIR>/console.db`: lock history and the audit log.
 * It is separate from any lock store (the embedded one included): the console must be able to
 * record and audit while a store is down, and its bookkeeping must not contend with lock traffic.
 *
 * Tables
 *  - `history`: one row per lock change seen (watch or reconcile), bounded per key and in total;
 *    `waited_ms` / `held_ms` where the change said (layout 2).
 *  - `lock_activity`: the compact stream behind the contention statistics (contention.ts): one
 *    row per acquired / released / expired / forced, with waited or held ms, and per `attempt` /
 *    `lost` reported by lockdeck clients (no duration; counted only). Bounded by age and
 *    in total, not per key (a hot lock must keep its whole window).
 *  - `waiter_samples`: a lock's waiter count, written when it changes (step function).
 *  - `audit`: one row per force-release attempt. Append-only, enforced by the schema itself:
 *    triggers abort any UPDATE or DELETE, so no code path (nor a mistaken one) can rewrite it.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { getConfig } from './config';
import { singleton } from './singleton';

// 2: history.waited_ms / held_ms, lock_activity, waiter_samples.
const SCHEMA_VERSION = 3;

const DDL = `
CREATE TABLE IF NOT EXISTS history (
  id       INTEGER PRIMARY KEY AUTOINCREMENT,
  at       INTEGER NOT NULL,
  backend  TEXT NOT NULL,
  key      TEXT NOT NULL,
  type     TEXT NOT NULL,
  owner    TEXT,
  fence    TEXT,
  source   TEXT NOT NULL,
  lock     TEXT
);
CREATE INDEX IF NOT EXISTS history_key ON history (backend, key, id);

CREATE TABLE IF NOT EXISTS lock_activity (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  at         INTEGER NOT NULL,
  backend    TEXT NOT NULL,
  key        TEXT NOT NULL,
  type       TEXT NOT NULL,
  waited_ms  INTEGER,
  held_ms    INTEGER,
  source     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lock_activity_key ON lock_activity (backend, key, at);
CREATE INDEX IF NOT EXISTS lock_activity_at ON lock_activity (at);

CREATE TABLE IF NOT EXISTS waiter_samples (
  id       INTEGER PRIMARY KEY AUTOINCREMENT,
  at       INTEGER NOT NULL,
  backend  TEXT NOT NULL,
  key      TEXT NOT NULL,
  waiters  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS waiter_samples_key ON waiter_samples (backend, key, at);
CREATE INDEX IF NOT EXISTS waiter_samples_at ON waiter_samples (at);

CREATE TABLE IF NOT EXISTS audit (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  at            INTEGER NOT NULL,
  actor         TEXT NOT NULL,
  via           TEXT,
  backend       TEXT,
  key           TEXT,
  owner         TEXT,
  fence         TEXT,
  expect_owner  TEXT,
  expect_fence  TEXT,
  reason        TEXT,
  result        TEXT NOT NULL,
  status        INTEGER NOT NULL,
  code          TEXT,
  message       TEXT,
  action        TEXT NOT NULL DEFAULT 'release'
);
CREATE INDEX IF NOT EXISTS audit_backend_key ON audit (backend, key, id);
CREATE INDEX IF NOT EXISTS audit_actor ON audit (actor, id);

CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
`;

/** Opens (creating when needed) console.db in `dataDir`. */
export function openConsoleDb(dataDir: string): Database.Database {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, 'console.db'), { timeout: 5000 });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new Error(`console.db was written by a newer lockdeck (layout ${version}, this one knows ${SCHEMA_VERSION})`);
    }
    db.transaction(() => {
      db.exec(DDL);
      const cols = new Set((db.prepare("SELECT name FROM pragma_table_info('history')").all() as { name: string }[]).map((c) => c.name));
      if (!cols.has('waited_ms')) db.exec('ALTER TABLE history ADD COLUMN waited_ms INTEGER');
      if (!cols.has('held_ms')) db.exec('ALTER TABLE history ADD COLUMN held_ms INTEGER');
      // Layout 3: what the operator asked for (a release, or an etcd lease revocation).
      const auditCols = new Set((db.prepare("SELECT name FROM pragma_table_info('audit')").all() as { name: string }[]).map((c) => c.name));
      if (!auditCols.has('action')) db.exec("ALTER TABLE audit ADD COLUMN action TEXT NOT NULL DEFAULT 'release'");
      if (version < SCHEMA_VERSION) db.pragma(`user_version = ${SCHEMA_VERSION}`);
    }).immediate();
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/** console.db of this server process, in the configured data directory. */
export function getConsoleDb(): Database.Database {
  return singleton('console-db', () => openConsoleDb(getConfig().dataDir));
}
