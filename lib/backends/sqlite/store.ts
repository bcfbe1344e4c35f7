/**
 * The lock operations on one connection, each a single SQLite transaction. Everything here is
 * synchronous (better-sqlite3), so no other code of this process runs inside a transaction; other
 * processes are kept out by `BEGIN IMMEDIATE` (the write lock) and `busy_timeout`.
 *
 * Every write transaction reports `touched` when it changed something other instances must look
 * at (a lock taken or freed, the waiter queue); the caller then sends a wake-up. Renewals and
 * waiter lease refreshes do not: nobody can act on them.
 */
import type Database from 'better-sqlite3';

import { lockHealth } from '../../locks/health';
import type { LockEventType, LockInfo, OwnerInfo } from '../../locks/types';
import { tokenHash } from '../../locks/util';
import { hostClock } from './clock';
import type { EventRow, LockRow, WaiterRow } from './schema';

/** A LockInfo as stored in an event: `backend` is filled in by the reader (config ids may differ). */
export type StoredInfo = Omit<LockInfo, 'backend'>;

export interface AttemptRequest {
  name: string;
  owner: OwnerInfo;
  token: string;
  ttlMs: number;
  labels: Record<string, string> | undefined;
  /** Our row in `waiters`, once we queue. */
  waiterId: number | null;
  /** Queue when the lock cannot be taken (a blocking acquire); false for a single try. */
  enqueue: boolean;
  /** When the wait started, kept if our waiter row has to be written again. */
  since: number;
}

export interface BusyResult {
  kind: 'busy';
  waiterId: number | null;
  /** Epoch ms at which time alone may change the answer (the lease or the head waiter's runs out). */
  retryAt: number | null;
  touched: boolean;
}

export type AttemptResult = { kind: 'acquired'; fence: string; expiresAt: number; touched: boolean } | BusyResult;

export type ForceOutcome =
  | { status: 'released'; lock: StoredInfo }
  | { status: 'changed'; lock: StoredInfo }
  | { status: 'not-found' };

/** Why a handle's row is gone, from the events that removed it. */
export type HeldState = 'held' | 'forced' | 'expired';

export interface StoreOptions {
  /** How long a waiter row stays live without a refresh. */
  waiterLeaseMs: number;
  /** Newest events kept. */
  eventRetention: number;
}

export class LockStore {
  private readonly s;

  /** Epoch ms from the host's monotonic clock (clock.ts): a wall-clock step moves no lease. */
  readonly now: () => number;

  constructor(
    private readonly db: Database.Database,
    private readonly opts: StoreOptions,
  ) {
    this.now = hostClock(db);
    // Case-insensitive substring in JS rather than LIKE: LIKE folds ASCII only and gives `%`/`_` a
    // meaning, while the filter must be plain text.
    db.function('lockdeck_icontains', { deterministic: true }, (s: unknown, q: unknown) =>
      String(s).toLowerCase().includes(String(q).toLowerCase()) ? 1 : 0,
    );
    this.s = {
      lock: db.prepare<[string], LockRow>('SELECT * FROM locks WHERE name = ?'),
      lockToken: db.prepare<[string], Pick<LockRow, 'token' | 'fence'>>('SELECT token, fence FROM locks WHERE name = ?'),
      insertLock: db.prepare(
        `INSERT INTO locks (name, token, owner, fence, acquired_at, expires_at, ttl_ms, labels, holder_instance, holder_host, holder_pid)
         VALUES (@name, @token, @owner, @fence, @acquired_at, @expires_at, @ttl_ms, @labels, @holder_instance, @holder_host, @holder_pid)`,
      ),
      deleteLock: db.prepare<[string]>('DELETE FROM locks WHERE name = ?'),
      extend: db.prepare<[number, number, string, string, number]>(
        'UPDATE locks SET expires_at = ?, ttl_ms = ? WHERE name = ? AND token = ? AND expires_at > ?',
      ),
      bumpFence: db.prepare<[string], { fence: number }>(
        `INSERT INTO fences (name, fence) VALUES (?, 1)
         ON CONFLICT (name) DO UPDATE SET fence = fence + 1 RETURNING fence`,
      ),
      expiredLocks: db.prepare<[number], LockRow>('SELECT * FROM locks WHERE expires_at <= ? ORDER BY expires_at'),
      nextExpiry: db.prepare<[], { at: number | null }>('SELECT min(expires_at) AS at FROM locks'),
      list: db.prepare<[string | null, string | null, number], LockRow>(
        `SELECT * FROM locks WHERE (? IS NULL OR lockdeck_icontains(name, ?)) ORDER BY name LIMIT ?`,
      ),
      pruneWaiters: db.prepare<[string, number]>('DELETE FROM waiters WHERE name = ? AND lease_until <= ?'),
      liveWaiters: db.prepare<[string, number], WaiterRow>(
        'SELECT * FROM waiters WHERE name = ? AND lease_until > ? ORDER BY id',
      ),
      headWaiter: db.prepare<[string], Pick<WaiterRow, 'id' | 'lease_until'>>(
        'SELECT id, lease_until FROM waiters WHERE name = ? ORDER BY id LIMIT 1',
      ),
      waiter: db.prepare<[number], Pick<WaiterRow, 'lease_until'>>('SELECT lease_until FROM waiters WHERE id = ?'),
      insertWaiter: db.prepare<[string, string, string, number, number]>(
        'INSERT INTO waiters (name, owner, instance, since, lease_until) VALUES (?, ?, ?, ?, ?)',
      ),
      refreshWaiter: db.prepare<[number, number]>('UPDATE waiters SET lease_until = ? WHERE id = ?'),
      deleteWaiter: db.prepare<[number]>('DELETE FROM waiters WHERE id = ?'),
      insertEvent: db.prepare<[number, string, string, number | null, string | null, number | null]>(
        'INSERT INTO events (at, type, name, fence, lock, ms) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      trimEvents: db.prepare<[number]>('DELETE FROM events WHERE id <= ?'),
      eventsAfter: db.prepare<[number, number], EventRow>('SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?'),
      maxEventId: db.prepare<[], { id: number | null }>('SELECT max(id) AS id FROM events'),
      lossEvent: db.prepare<[string, number], { type: string }>(
        `SELECT type FROM events WHERE name = ? AND fence = ? AND type IN ('forced', 'expired', 'released')
         ORDER BY id DESC LIMIT 1`,
      ),
      ping: db.prepare<[], { one: number }>('SELECT 1 AS one'),
    };
  }

  /**
   * One attempt to take `name`, in one IMMEDIATE transaction. The lock can be taken when no live
   * row holds it and either nobody waits or we are the oldest live waiter: a newcomer never
   * overtakes the queue. Expired rows and waiters whose lease ran out are cleared on the way.
   */
  attempt(req: AttemptRequest): AttemptResult {
    return this.db
      .transaction((): AttemptResult => {
        const now = this.now();
        let waitersChanged = this.s.pruneWaiters.run(req.name, now).changes > 0;
        let waiterId = req.waiterId;
        if (waiterId !== null && !this.s.waiter.get(waiterId)) {
          // Our row was pruned (this process stalled past its lease): queue again, at the back.
          waiterId = null;
          waitersChanged = true;
        }
        const row = this.s.lock.get(req.name);
        const head = this.s.headWaiter.get(req.name);
        const free = !row || row.expires_at <= now;
        const ourTurn = !head || (waiterId !== null && head.id === waiterId);

        if (free && ourTurn) {
          if (row) {
            this.event(now, 'expired', row);
            this.s.deleteLock.run(req.name);
          }
          const { fence } = this.s.bumpFence.get(req.name)!;
          const expiresAt = now + req.ttlMs;
          this.s.insertLock.run({
            name: req.name,
            token: req.token,
            owner: req.owner.id,
            fence,
            acquired_at: now,
            expires_at: expiresAt,
            ttl_ms: req.ttlMs,
            labels: req.labels && Object.keys(req.labels).length > 0 ? JSON.stringify(req.labels) : null,
            holder_instance: req.owner.instance,
            holder_host: req.owner.host,
            holder_pid: req.owner.pid,
          });
          if (waiterId !== null) this.s.deleteWaiter.run(waiterId);
          this.event(now, 'acquired', this.s.lock.get(req.name)!, Math.max(0, now - req.since));
          return { kind: 'acquired', fence: String(fence), expiresAt, touched: true };
        }

        if (waiterId !== null) {
          const lease = this.s.waiter.get(waiterId)!.lease_until;
          // Refresh at most about once a second per waiter, not on every wake-up.
          if (lease - now < this.opts.waiterLeaseMs * 0.8) this.s.refreshWaiter.run(now + this.opts.waiterLeaseMs, waiterId);
        } else if (req.enqueue) {
          const info = this.s.insertWaiter.run(req.name, req.owner.id, req.owner.instance, req.since, now + this.opts.waiterLeaseMs);
          waiterId = Number(info.lastInsertRowid);
          waitersChanged = true;
        }
        if (waitersChanged && row) this.event(now, 'changed', row);
        // Telemetry: one `attempt` per refused try or per acquire that joins the queue, never for
        // a queued waiter's re-checks (those come with its waiter id).
        if (req.waiterId === null) {
          this.insert(now, 'attempt', req.name, row && !free ? row.fence : null, null, null);
        }
        const retryAt = !free ? row!.expires_at : head ? head.lease_until : null;
        return { kind: 'busy', waiterId, retryAt, touched: waitersChanged };
      })
      .immediate();
  }

  /**
   * A read-only look before a queued waiter's attempt: null when the attempt could change
   * something (the lock is free and it is our turn or the head's lease ran out, our row needs a
   * refresh or is gone), else when to look again. Waking every waiter on every change is then a
   * read each, not a write transaction each.
   */
  recheckLater(name: string, waiterId: number): { retryAt: number } | null {
    return this.db.transaction(() => {
      const now = this.now();
      const mine = this.s.waiter.get(waiterId);
      if (!mine || mine.lease_until - now < this.opts.waiterLeaseMs * 0.8) return null;
      const row = this.s.lock.get(name);
      if (row && row.expires_at > now) return { retryAt: row.expires_at };
      const head = this.s.headWaiter.get(name);
      if (!head || head.id === waiterId || head.lease_until <= now) return null;
      return { retryAt: head.lease_until };
    })();
  }

  /** The new expiry, or null when the lock is no longer ours (gone, taken, or expired). */
  extend(name: string, token: string, ttlMs: number): number | null {
    return this.db
      .transaction(() => {
        const now = this.now();
        const expiresAt = now + ttlMs;
        return this.s.extend.run(expiresAt, ttlMs, name, token, now).changes === 1 ? expiresAt : null;
      })
      .immediate();
  }

  /** Deletes the lock if `token` still holds it. True when something was released. */
  release(name: string, token: string): boolean {
    return this.db
      .transaction(() => {
        const row = this.s.lock.get(name);
        if (!row || row.token !== token) return false;
        this.event(this.now(), 'released', row);
        this.s.deleteLock.run(name);
        return true;
      })
      .immediate();
  }

  /** Removes a waiter that gave up. True when its row was still there. */
  leave(name: string, waiterId: number): boolean {
    return this.db
      .transaction(() => {
        if (this.s.deleteWaiter.run(waiterId).changes === 0) return false;
        const row = this.s.lock.get(name);
        if (row) this.event(this.now(), 'changed', row);
        return true;
      })
      .immediate();
  }

  /** Compare-and-delete by fence and/or owner (contract: `changed` releases nothing). */
  forceRelease(name: string, expect: { fence?: string; owner?: string }): ForceOutcome {
    return this.db
      .transaction((): ForceOutcome => {
        const now = this.now();
        const row = this.s.lock.get(name);
        if (!row) return { status: 'not-found' };
        const info = this.info(row, now);
        if ((expect.fence !== undefined && expect.fence !== String(row.fence)) || (expect.owner !== undefined && expect.owner !== row.owner)) {
          return { status: 'changed', lock: info };
        }
        this.event(now, 'forced', row);
        this.s.deleteLock.run(name);
        return { status: 'released', lock: info };
      })
      .immediate();
  }

  /** Deletes every expired row, recording `expired`. Returns how many. */
  sweep(): number {
    return this.db
      .transaction(() => {
        const now = this.now();
        const rows = this.s.expiredLocks.all(now);
        for (const row of rows) {
          this.event(now, 'expired', row);
          this.s.deleteLock.run(row.name);
        }
        return rows.length;
      })
      .immediate();
  }

  /**
   * Whether the handle with this token and fence still holds `name`, and if not, why: the event
   * that removed its fence says `forced` or `expired`. With no such event left (trimmed), `forced`:
   * someone removed a row we never released.
   */
  heldState(name: string, token: string, fence: string): HeldState {
    const row = this.s.lockToken.get(name);
    if (row?.token === token) return 'held';
    const ev = this.s.lossEvent.get(name, Number(fence));
    return ev?.type === 'expired' ? 'expired' : 'forced';
  }

  get(name: string): StoredInfo | null {
    return this.db.transaction(() => {
      const row = this.s.lock.get(name);
      return row ? this.info(row, this.now()) : null;
    })();
  }

  list(q: string | null, limit: number): StoredInfo[] {
    return this.db.transaction(() => {
      const now = this.now();
      return this.s.list.all(q, q, limit).map((row) => this.info(row, now));
    })();
  }

  nextExpiry(): number | null {
    return this.s.nextExpiry.get()?.at ?? null;
  }

  maxEventId(): number {
    return this.s.maxEventId.get()?.id ?? 0;
  }

  eventsAfter(id: number, limit: number): Array<{ id: number; at: number; type: LockEventType; name: string; lock: StoredInfo | null; ms: number | null }> {
    return this.s.eventsAfter.all(id, limit).map((e) => ({
      id: e.id,
      at: e.at,
      type: e.type as LockEventType,
      name: e.name,
      lock: e.lock === null ? null : (JSON.parse(e.lock) as StoredInfo),
      ms: e.ms ?? null,
    }));
  }

  /**
   * Records that one of our holders lost `name` (telemetry for watchers; it changes no lock). The
   * stored lock is what the holder knew, with the reason in `meta.reason`.
   */
  recordLost(name: string, fence: string, owner: OwnerInfo, reason: string): void {
    this.db
      .transaction(() => {
        const now = this.now();
        const info: StoredInfo = {
          key: name, format: 'lockdeck', kind: 'mutex', owner: owner.id, holders: [{ owner: owner.id, fence, acquiredAt: null }], fence,
          acquiredAt: null, expiresAt: null, ttlMs: null, waiters: [], health: 'unknown', meta: { reason },
        };
        this.insert(now, 'lost', name, Number(fence), JSON.stringify(info), null);
      })
      .immediate();
  }

  ping(): void {
    this.s.ping.get();
  }

  private info(row: LockRow, now: number): StoredInfo {
    const fence = String(row.fence);
    const waiters = this.s.liveWaiters.all(row.name, now);
    const info: StoredInfo = {
      key: row.name,
      format: 'lockdeck',
      kind: 'mutex',
      owner: row.owner,
      holders: [{ owner: row.owner, fence, acquiredAt: row.acquired_at }],
      fence,
      acquiredAt: row.acquired_at,
      expiresAt: row.expires_at,
      ttlMs: Math.max(0, row.expires_at - now),
      waiters: waiters.map((w) => ({ owner: w.owner, since: w.since })),
      health: lockHealth({ now, expiresAt: row.expires_at, ttlMs: row.ttl_ms }),
      meta: {
        tokenHash: tokenHash(row.token),
        leaseMs: row.ttl_ms,
        holderInstance: row.holder_instance,
        holderHost: row.holder_host,
        holderPid: row.holder_pid,
      },
    };
    if (row.labels !== null) info.labels = JSON.parse(row.labels) as Record<string, string>;
    return info;
  }

  /** `ms`: how long the acquirer waited (`acquired`), else how long the holder held it. */
  private event(now: number, type: LockEventType, row: LockRow, waitedMs?: number): void {
    const ms = type === 'acquired' ? (waitedMs ?? null) : type === 'changed' ? null : now - row.acquired_at;
    this.insert(now, type, row.name, row.fence, JSON.stringify(this.info(row, now)), ms);
  }

  /** One events row; trims the table every 64 rows (the per-event cost stays one insert). */
  private insert(now: number, type: LockEventType, name: string, fence: number | null, lock: string | null, ms: number | null): void {
    const { lastInsertRowid } = this.s.insertEvent.run(now, type, name, fence, lock, ms);
    const id = Number(lastInsertRowid);
    // Trimming in batches keeps the per-event cost at one insert.
    if (id % 64 === 0) this.s.trimEvents.run(id - this.opts.eventRetention);
  }
}
