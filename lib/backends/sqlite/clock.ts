/**
 * The embedded store's clock: epoch milliseconds that a wall-clock step cannot move.
 *
 * Leases in the store are compared across processes of one host, so they need one clock that
 * every process reads alike. `Date.now()` is that, until NTP (or an operator) steps the wall clock:
 * a process whose clock jumped ahead takes live locks (found by the torture checker: 129
 * overlapping critical sections under client clock jumps). CLOCK_MONOTONIC never steps and is
 * shared by every process of the host (`process.hrtime`), but it starts at boot. So the store's
 * time is `epoch at boot + monotonic`, where the epoch at boot is written once per boot (keyed by
 * the kernel's boot id) by the first process to open the file, and read by every other one.
 * Where there is no boot id (not Linux), it is `Date.now()` as before.
 */
import { readFileSync } from 'node:fs';

import type Database from 'better-sqlite3';

const BOOT_ID = '/proc/sys/kernel/random/boot_id';

function bootId(): string | null {
  try {
    const id = readFileSync(BOOT_ID, 'utf8').trim();
    return /^[0-9a-f-]{36}$/.test(id) ? id : null;
  } catch {
    return null;
  }
}

/** CLOCK_MONOTONIC in ms: time since boot, the same in every process of the host. */
const monotonicMs = () => Number(process.hrtime.bigint() / 1_000_000n);

/** The store's `now()`, for the database `db` (creates its small `host_clock` table). */
export function hostClock(db: Database.Database): () => number {
  const id = bootId();
  if (!id) return Date.now;
  db.exec('CREATE TABLE IF NOT EXISTS host_clock (boot_id TEXT PRIMARY KEY, epoch_at_boot INTEGER NOT NULL)');
  db.prepare('INSERT OR IGNORE INTO host_clock (boot_id, epoch_at_boot) VALUES (?, ?)').run(id, Date.now() - monotonicMs());
  const row = db.prepare<[string], { epoch_at_boot: number }>('SELECT epoch_at_boot FROM host_clock WHERE boot_id = ?').get(id);
  if (!row) return Date.now;
  const epochAtBoot = row.epoch_at_boot;
  return () => epochAtBoot + monotonicMs();
}
