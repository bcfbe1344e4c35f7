import 'server-only';

/**
 * Lock history: every change the console saw, per backend and key, kept in console.db so the
 * detail view can show who held a lock before and how it ended (released, expired, forced).
 *
 * Bounded twice: the newest {@link HistoryLimits.perKey} rows per key (trimmed on each insert,
 * through the (backend, key, id) index) and the newest {@link HistoryLimits.total} rows overall
 * (trimmed every 256 inserts, so the per-event cost stays one insert and one indexed delete).
 */
import type Database from 'better-sqlite3';

import type { LockEventType, LockInfo } from '../locks/types';
import { getConsoleDb } from './db';
import { singleton } from './singleton';

export type ChangeSource = 'watch' | 'reconcile';

/** One recorded change, as the API returns it (`history` in /api/locks/detail). */
export interface HistoryEvent {
  id: number;
  at: number;
  type: LockEventType;
  backend: string;
  key: string;
  /** The holder the change was about (the new one for acquired/changed, the old one otherwise). */
  owner: string | null;
  fence: string | null;
  /** `watch`: pushed by the backend; `reconcile`: found by the console's periodic re-list. */
  source: ChangeSource;
  /** The lock as it was after (acquired/changed) or before (released/expired/forced) the change. */
  lock: LockInfo | null;
  /** `acquired` by a lockdeck client: how long it waited, as it reported. */
  waitedMs?: number;
  /** `released` / `expired` / `forced`: how long the holder had it (reported, or from acquiredAt). */
  heldMs?: number;
}

export interface HistoryLimits {
  perKey: number;
  total: number;
}

export const DEFAULT_HISTORY_LIMITS: Readonly<HistoryLimits> = Object.freeze({ perKey: 200, total: 100_000 });

/** Waiters kept in a stored copy of a lock: the full queue is live data, not history. */
const STORED_WAITERS = 20;

interface Row {
  id: number;
  at: number;
  type: string;
  backend: string;
  key: string;
  owner: string | null;
  fence: string | null;
  source: string;
  lock: string | null;
  waited_ms: number | null;
  held_ms: number | null;
}

export class HistoryStore {
  private readonly s;
  private inserts = 0;

  constructor(
    db: Database.Database,
    private readonly limits: HistoryLimits = DEFAULT_HISTORY_LIMITS,
  ) {
    this.s = {
      insert: db.prepare<[number, string, string, string, string | null, string | null, string, string | null, number | null, number | null]>(
        'INSERT INTO history (at, backend, key, type, owner, fence, source, lock, waited_ms, held_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      trimKey: db.prepare<[string, string, string, string, number]>(
        `DELETE FROM history WHERE backend = ? AND key = ? AND id < (
           SELECT id FROM history WHERE backend = ? AND key = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
      ),
      trimTotal: db.prepare<[number]>('DELETE FROM history WHERE id <= (SELECT max(id) FROM history) - ?'),
      forKey: db.prepare<[string, string, number], Row>('SELECT * FROM history WHERE backend = ? AND key = ? ORDER BY id DESC LIMIT ?'),
    };
  }

  record(e: Omit<HistoryEvent, 'id'>): HistoryEvent {
    const stored = e.lock ? JSON.stringify({ ...e.lock, waiters: e.lock.waiters.slice(0, STORED_WAITERS) }) : null;
    const { lastInsertRowid } = this.s.insert.run(e.at, e.backend, e.key, e.type, e.owner, e.fence, e.source, stored, e.waitedMs ?? null, e.heldMs ?? null);
    this.s.trimKey.run(e.backend, e.key, e.backend, e.key, this.limits.perKey - 1);
    if (++this.inserts % 256 === 0) this.s.trimTotal.run(this.limits.total);
    return { id: Number(lastInsertRowid), ...e };
  }

  /** The newest `limit` changes of one lock, newest first. */
  forKey(backend: string, key: string, limit = this.limits.perKey): HistoryEvent[] {
    return this.s.forKey.all(backend, key, limit).map((r) => ({
      id: r.id,
      at: r.at,
      type: r.type as LockEventType,
      backend: r.backend,
      key: r.key,
      owner: r.owner,
      fence: r.fence,
      source: r.source as ChangeSource,
      lock: r.lock === null ? null : (JSON.parse(r.lock) as LockInfo),
      ...(r.waited_ms !== null ? { waitedMs: r.waited_ms } : {}),
      ...(r.held_ms !== null ? { heldMs: r.held_ms } : {}),
    }));
  }

  /** Applies the overall bound now (tests; otherwise every 256 inserts). */
  trim(): void {
    this.s.trimTotal.run(this.limits.total);
  }
}

export function getHistory(): HistoryStore {
  return singleton('history', () => new HistoryStore(getConsoleDb()));
}
