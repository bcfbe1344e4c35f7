/**
 * The embedded lock store: real locks between the processes of one host, in one SQLite file.
 * It is the console's default backend when no configuration exists.
 *
 * - Acquisition is one IMMEDIATE transaction (see store.ts and the layout in schema.ts).
 * - Waiting is push-based: every commit that frees a lock or changes the queue touches
 *   `<path>.wake`, which waiting instances watch (wake.ts). Each waiter also re-checks on a timer
 *   set to when time alone could change its answer (the holder's expiry, a dead head waiter's
 *   lease), capped at `recheckMs`, so that a lost notification can delay it but never strand it.
 * - Fairness: a freed lock goes to the oldest live waiter; newcomers (tryAcquire included) queue
 *   behind it.
 * - Holders learn of a forced release at the next wake-up (`notifiesHolderOnForce`), of a missed
 *   renewal from ManagedHandle.
 * - Times are the store's clock (clock.ts): epoch ms from the host's monotonic clock, the same in
 *   every process, which a wall-clock step cannot move.
 */
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

import { AcquireTimeoutError, BackendUnavailableError, InvalidArgumentError, LockError, abortError } from '../../locks/errors';
import { ManagedHandle } from '../../locks/handle';
import type {
  RunStore,
  RunStoreProvider,
  AcquireOptions,
  Capabilities,
  ForceReleaseExpectation,
  ForceReleaseResult,
  ListFilter,
  LockBackend,
  LockChange,
  LockHandle,
  LockInfo,
  OwnerInfo,
  Unsubscribe,
  WatchOptions,
} from '../../locks/types';
import { makeOwner, randomId, resolveAcquireOptions, validateName } from '../../locks/util';
import type { SqliteBackendConfig } from '../config';
import { SqliteRunStore } from './runs';
import { migrate } from './schema';
import { LockStore, type AttemptResult, type BusyResult, type StoredInfo } from './store';
import { touch, WakeListener } from './wake';

export interface SqliteBackendOptions {
  /** How long a transaction waits for another process's write lock (default 5000). */
  busyTimeoutMs?: number;
  /**
   * Upper bound between a waiter's re-checks when no wake-up arrives (default 1000). It bounds the
   * delay a lost notification can cause; waiter leases are max(5000, 5 × this).
   */
  recheckMs?: number;
  /** Newest events kept in the `events` table (default 1000). */
  eventRetention?: number;
  /**
   * Listen for wake-ups (default true). Off, this instance's waiters, holders and watchers rely on
   * the bounded re-check alone: for file systems without inotify, and for tests of that path.
   */
  wakeups?: boolean;
}

const CAPABILITIES: Capabilities = Object.freeze({
  fencing: true,
  ttl: true,
  waiters: true,
  fifo: true,
  pushWatch: true,
  notifiesHolderOnForce: true,
  telemetry: true,
});

/** Re-check period of `watch` subscribers when no wake-up arrives (a lost one, an expiring lock). */
const WATCH_RECHECK_MS = 1000;
const DEFAULT_LIST_LIMIT = 1000;

interface PendingWait {
  readonly name: string;
  /** Its row's id: the queue's order (null before it has one). */
  waiterId(): number | null;
  /**
   * Runs one attempt and settles or re-arms the fallback timer: 'acquired', 'queued' (not its
   * turn; `requeued` when its row had lapsed and it joined again at the tail), or 'done'
   * (settled already, timed out, failed).
   */
  check(): { result: 'acquired' | 'queued' | 'done'; requeued?: boolean };
  /** Rejects the wait (close()). */
  cancel(err: unknown): void;
}

interface Held {
  readonly handle: ManagedHandle;
  readonly token: string;
}

/**
 * Opens (creating when needed) the lock store at `config.path` and returns a backend on its own
 * connection. Synchronous: better-sqlite3 opens the file in the calling thread, so a bad path
 * throws here, as a BackendUnavailableError. Call `close()` when done.
 */
export function createSqliteBackend(config: SqliteBackendConfig, opts: SqliteBackendOptions = {}): LockBackend & RunStoreProvider {
  return new SqliteLockBackend(config, opts);
}

class SqliteLockBackend implements LockBackend, RunStoreProvider {
  readonly type = 'sqlite' as const;
  readonly capabilities = CAPABILITIES;
  readonly id: string;

  private readonly db: Database.Database;
  private readonly store: LockStore;
  private readonly wakePath: string;
  private readonly instance = randomId(6);
  private readonly recheckMs: number;
  private readonly listener: WakeListener | undefined;
  private readonly waits = new Set<PendingWait>();
  private readonly held = new Set<Held>();
  private readonly subscribers = new Set<(c: LockChange) => void>();
  private eventCursor = 0;
  private watchTimer: NodeJS.Timeout | undefined;
  private wakeQueued = false;
  private closing: Promise<void> | undefined;
  private dbClosed = false;

  constructor(config: SqliteBackendConfig, opts: SqliteBackendOptions) {
    this.id = config.id;
    if (config.path === ':memory:' || config.path.startsWith('file:')) {
      throw new InvalidArgumentError('sqlite path must be a file path: the store is shared through the file');
    }
    const busyTimeoutMs = positiveInt(opts.busyTimeoutMs ?? 5000, 'busyTimeoutMs');
    this.recheckMs = positiveInt(opts.recheckMs ?? 1000, 'recheckMs');
    const eventRetention = positiveInt(opts.eventRetention ?? 1000, 'eventRetention');
    const path = resolve(config.path);
    this.wakePath = `${path}.wake`;
    let db: Database.Database | undefined;
    try {
      mkdirSync(dirname(path), { recursive: true });
      db = new Database(path, { timeout: busyTimeoutMs });
      migrate(db);
      this.store = new LockStore(db, { waiterLeaseMs: Math.max(5000, 5 * this.recheckMs), eventRetention });
    } catch (err) {
      db?.close();
      throw unavailable(err, `cannot open lock store ${path}`);
    }
    this.db = db;
    if (opts.wakeups !== false) this.listener = new WakeListener(this.wakePath, () => this.queueWake());
  }

  // ---- client ---------------------------------------------------------------------------------

  async tryAcquire(name: string, opts?: Partial<Omit<AcquireOptions, 'waitMs'>>): Promise<LockHandle | null> {
    validateName(name);
    const o = resolveAcquireOptions({ ...opts, waitMs: 0 });
    this.assertOpen();
    const { handle } = this.attempt(name, o, null, false, this.store.now());
    return handle;
  }

  async acquire(name: string, opts?: Partial<AcquireOptions>): Promise<LockHandle> {
    validateName(name);
    const o = resolveAcquireOptions(opts);
    this.assertOpen();
    if (o.signal?.aborted) throw abortError(o.signal);
    const since = this.store.now();
    const first = this.attempt(name, o, null, o.waitMs > 0, since);
    if (first.handle) return first.handle;
    if (o.waitMs === 0) throw new AcquireTimeoutError(name, 0);
    return this.wait(name, o, first.busy, since);
  }

  /**
   * One attempt. On success wraps the lease in a ManagedHandle; otherwise returns the store's
   * answer (with our waiter id, when we queued).
   */
  private attempt(
    name: string,
    o: AcquireOptions,
    waiterId: number | null,
    enqueue: boolean,
    since: number,
  ): { handle: ManagedHandle } | { handle: null; busy: BusyResult } {
    const owner = makeOwner(this.instance, o.owner);
    const token = randomId();
    const leaseStart = performance.now();
    let res: AttemptResult;
    try {
      res = this.store.attempt({ name, owner, token, ttlMs: o.ttlMs, labels: o.labels, waiterId, enqueue, since });
    } catch (err) {
      throw unavailable(err, `cannot acquire "${name}"`);
    }
    if (res.touched) this.notify();
    if (res.kind === 'busy') return { handle: null, busy: res };
    return { handle: this.track(name, owner, token, res.fence, res.expiresAt, leaseStart, o) };
  }

  private track(
    name: string,
    owner: OwnerInfo,
    token: string,
    fence: string,
    expiresAt: number,
    leaseStart: number,
    o: AcquireOptions,
  ): ManagedHandle {
    let entry: Held;
    const handle = new ManagedHandle({
      backend: this.id,
      name,
      fence,
      owner,
      ttlMs: o.ttlMs,
      leaseMs: o.ttlMs,
      leaseStart,
      expiresAt,
      autoRenew: o.autoRenew ?? true,
      ops: {
        extend: async (ttlMs) => {
          resolveAcquireOptions({ ttlMs });
          this.assertDb();
          try {
            return this.store.extend(name, token, ttlMs);
          } catch (err) {
            throw unavailable(err, `cannot extend "${name}"`);
          }
        },
        release: async () => {
          this.assertDb();
          let released: boolean;
          try {
            released = this.store.release(name, token);
          } catch (err) {
            throw unavailable(err, `cannot release "${name}"`);
          }
          if (released) this.notify();
        },
      },
      onLost: (reason) => {
        // Telemetry for watchers (any process on this file): never throws, never blocks long.
        if (this.dbClosed) return;
        try {
          this.store.recordLost(name, fence, owner, reason);
          this.notify();
        } catch {
          // A busy or broken store: the watchers still see the forced/expired change itself.
        }
      },
      onDone: () => {
        this.held.delete(entry);
        this.updateRef();
      },
    });
    entry = { handle, token };
    this.held.add(entry);
    this.updateRef();
    return handle;
  }

  /**
   * Waits in the queue until an attempt succeeds. Attempts run on every wake-up and on a fallback
   * timer; abort, timeout and close remove our waiter row before rejecting, so the inspector never
   * shows a waiter that is gone.
   */
  private wait(name: string, o: AcquireOptions, first: BusyResult, since: number): Promise<LockHandle> {
    const deadline = o.waitMs === Infinity ? Infinity : performance.now() + o.waitMs;
    return new Promise<LockHandle>((resolvePromise, rejectPromise) => {
      let waiterId = first.waiterId;
      let timer: NodeJS.Timeout | undefined;
      let settled = false;

      const finish = (handle: ManagedHandle | null, err?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
        this.waits.delete(pending);
        this.updateRef();
        if (handle) return resolvePromise(handle);
        if (waiterId !== null && !this.dbClosed) {
          try {
            if (this.store.leave(name, waiterId)) this.notify();
          } catch {
            // The row's lease runs out on its own; the caller must hear about its own error.
          }
        }
        rejectPromise(err);
      };

      const arm = (retryAt: number | null) => {
        clearTimeout(timer);
        let ms = this.recheckMs;
        // +1: a timer may fire a hair before the store's clock reaches the expiry.
        if (retryAt !== null) ms = Math.min(ms, retryAt - this.store.now() + 1);
        ms = Math.max(0, Math.min(ms, deadline - performance.now()));
        timer = setTimeout(() => pending.check(), ms);
      };

      const pending: PendingWait = {
        name,
        waiterId: () => waiterId,
        check: () => {
          if (settled) return { result: 'done' };
          if (performance.now() >= deadline) {
            finish(null, new AcquireTimeoutError(name, o.waitMs));
            return { result: 'done' };
          }
          let r;
          try {
            const later = waiterId === null ? null : this.store.recheckLater(name, waiterId);
            if (later) {
              arm(later.retryAt);
              return { result: 'queued' };
            }
            r = this.attempt(name, o, waiterId, true, since);
          } catch (err) {
            finish(null, unavailable(err, `cannot acquire "${name}"`));
            return { result: 'done' };
          }
          if (r.handle) {
            finish(r.handle);
            return { result: 'acquired' };
          }
          const requeued = r.busy.waiterId !== waiterId;
          waiterId = r.busy.waiterId;
          arm(r.busy.retryAt);
          return { result: 'queued', requeued };
        },
        cancel: (err) => finish(null, err),
      };

      const onAbort = () => finish(null, abortError(o.signal!));
      o.signal?.addEventListener('abort', onAbort, { once: true });
      this.waits.add(pending);
      this.updateRef();
      arm(first.retryAt);
    });
  }

  // ---- wake-ups -------------------------------------------------------------------------------

  /** Tells every instance on this file (this one included) to look again. */
  private notify(): void {
    touch(this.wakePath);
  }

  /** Coalesces a burst of wake-ups into one pass, run outside the caller's stack. */
  private queueWake(): void {
    if (this.wakeQueued || this.closed()) return;
    this.wakeQueued = true;
    setImmediate(() => {
      this.wakeQueued = false;
      this.onWake();
    });
  }

  private onWake(): void {
    if (this.closed()) return;
    this.checkHeld();
    this.checkWaits();
    this.drainEvents();
    this.armWatch();
  }

  /**
   * On a wake-up, each name's local waiters look in queue order, and stop at the first that is
   * not let in: the queue is FIFO (one holder), so if the oldest of ours must wait, every younger
   * one must too, and after the oldest got the lock the others are behind a holder. So a release
   * costs each process one look per name instead of one per waiter (16 contenders in two
   * processes: 2 instead of 15 per release). Younger waiters still look on their own timers.
   */
  private checkWaits(): void {
    const byName = new Map<string, PendingWait[]>();
    for (const w of this.waits) {
      let list = byName.get(w.name);
      if (!list) byName.set(w.name, (list = []));
      list.push(w);
    }
    for (const list of byName.values()) {
      list.sort((a, b) => (a.waiterId() ?? -1) - (b.waiterId() ?? -1));
      for (const w of list) {
        const r = w.check();
        // A waiter whose row had lapsed joined again at the tail: the next of ours may be first now.
        if (r.result === 'acquired' || (r.result === 'queued' && !r.requeued)) break;
      }
    }
  }

  /** Marks our handles whose rows were removed by someone else (force-release, expiry takeover). */
  private checkHeld(): void {
    for (const { handle, token } of [...this.held]) {
      if (!handle.held) continue;
      let state;
      try {
        state = this.store.heldState(handle.name, token, handle.fence);
      } catch {
        return; // The renewal will find out.
      }
      if (state !== 'held') handle.markLost(state);
    }
  }

  /**
   * Like an open connection, the wake-up watcher keeps the process alive while held locks, waits or
   * watchers depend on it, and never while the backend is idle.
   */
  private updateRef(): void {
    this.listener?.setRef(!this.closed() && this.held.size + this.waits.size + this.subscribers.size > 0);
  }

  // ---- inspector ------------------------------------------------------------------------------

  async list(filter: ListFilter = {}): Promise<LockInfo[]> {
    this.assertOpen();
    const limit = filter.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isInteger(limit) || limit < 0) throw new InvalidArgumentError(`limit must be a non-negative integer, got ${String(limit)}`);
    const q = filter.q ? filter.q : null;
    try {
      return this.store.list(q, limit).map((i) => this.withBackend(i));
    } catch (err) {
      throw unavailable(err, 'cannot list locks');
    }
  }

  async get(key: string): Promise<LockInfo | null> {
    validateName(key);
    this.assertOpen();
    try {
      const info = this.store.get(key);
      return info ? this.withBackend(info) : null;
    } catch (err) {
      throw unavailable(err, `cannot read "${key}"`);
    }
  }

  async forceRelease(key: string, expect: ForceReleaseExpectation = {}): Promise<ForceReleaseResult> {
    validateName(key);
    this.assertOpen();
    let out;
    try {
      out = this.store.forceRelease(key, expect);
    } catch (err) {
      throw unavailable(err, `cannot release "${key}"`);
    }
    if (out.status === 'not-found') return out;
    if (out.status === 'released') this.notify();
    return { status: out.status, lock: this.withBackend(out.lock) };
  }

  /**
   * Pushes changes from every process on this file, read from the `events` table on each wake-up.
   * While someone watches, this instance also sweeps locks whose lease ran out (recording
   * `expired`), at their expiry, so the console sees expiries that nobody acquires over.
   */
  watch(onChange: (change: LockChange) => void, opts: WatchOptions = {}): Unsubscribe {
    this.assertOpen();
    // Client telemetry (attempt, lost) only for watchers that asked for it.
    const fn = opts.telemetry ? onChange : (c: LockChange) => (c.type === 'attempt' || c.type === 'lost' ? undefined : onChange(c));
    if (this.subscribers.size === 0) {
      try {
        this.eventCursor = this.store.maxEventId();
      } catch (err) {
        throw unavailable(err, 'cannot watch');
      }
      this.subscribers.add(fn);
      this.armWatch();
    } else {
      this.subscribers.add(fn);
    }
    this.updateRef();
    return () => {
      this.subscribers.delete(fn);
      if (this.subscribers.size === 0) {
        clearTimeout(this.watchTimer);
        this.watchTimer = undefined;
      }
      this.updateRef();
    };
  }

  /** Re-checks at the next lease expiry (to sweep it), at least once a second, never under `minMs`. */
  private armWatch(minMs = 0): void {
    clearTimeout(this.watchTimer);
    if (this.subscribers.size === 0 || this.closed()) return;
    let ms = WATCH_RECHECK_MS;
    try {
      const next = this.store.nextExpiry();
      if (next !== null) ms = Math.min(ms, next - this.store.now() + 1);
    } catch {
      // Keep the default period: the next tick tries again.
    }
    this.watchTimer = setTimeout(() => this.watchTick(), Math.max(minMs, ms, 0));
    this.watchTimer.unref();
  }

  private watchTick(): void {
    if (this.closed()) return;
    let failed = false;
    try {
      // Take the write lock only when a lease has actually run out.
      const due = this.store.nextExpiry();
      if (due !== null && due <= this.store.now() && this.store.sweep() > 0) this.notify();
    } catch {
      failed = true;
    }
    this.drainEvents();
    // A failing store is retried at the default period, not in a tight loop.
    this.armWatch(failed ? WATCH_RECHECK_MS : 0);
  }

  private drainEvents(): void {
    if (this.subscribers.size === 0) return;
    try {
      for (;;) {
        const batch = this.store.eventsAfter(this.eventCursor, 500);
        for (const e of batch) {
          this.eventCursor = e.id;
          const change: LockChange = { type: e.type, backend: this.id, key: e.name, lock: e.lock && this.withBackend(e.lock), at: e.at };
          if (e.type === 'lost') {
            const reason = e.lock?.meta?.reason;
            if (typeof reason === 'string') change.reason = reason;
          } else if (e.ms !== null && e.type !== 'attempt') change[e.type === 'acquired' ? 'waitedMs' : 'heldMs'] = e.ms;
          for (const s of [...this.subscribers]) {
            try {
              s(change);
            } catch {
              // One failing subscriber must not starve the others.
            }
          }
        }
        if (batch.length < 500) break;
      }
    } catch {
      // Unread events stay after the cursor for the next pass.
    }
  }

  /** The scheduler's run records, kept in the same file as the locks. */
  runStore(opts: { retain?: number } = {}): RunStore {
    return new SqliteRunStore(this.db, positiveInt(opts.retain ?? 500, 'retain'));
  }

  async ping(): Promise<number> {
    this.assertOpen();
    const t0 = performance.now();
    try {
      this.store.ping();
    } catch (err) {
      throw unavailable(err, 'ping failed');
    }
    return performance.now() - t0;
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    const closedErr = new BackendUnavailableError(`backend "${this.id}" is closed`);
    for (const w of [...this.waits]) w.cancel(closedErr);
    await Promise.allSettled([...this.held].map(({ handle }) => handle.release()));
    for (const { handle } of [...this.held]) handle.markLost('closed');
    this.listener?.close();
    clearTimeout(this.watchTimer);
    this.subscribers.clear();
    this.updateRef();
    this.dbClosed = true;
    this.db.close();
  }

  private closed(): boolean {
    return this.closing !== undefined;
  }

  /** Public calls stop as soon as close() starts. */
  private assertOpen(): void {
    if (this.closing) throw new BackendUnavailableError(`backend "${this.id}" is closed`);
  }

  /** Lease operations go on while close() releases the held handles. */
  private assertDb(): void {
    if (this.dbClosed) throw new BackendUnavailableError(`backend "${this.id}" is closed`);
  }

  private withBackend(info: StoredInfo): LockInfo {
    return { backend: this.id, ...info };
  }
}

function positiveInt(v: number, what: string): number {
  if (!Number.isInteger(v) || v <= 0) throw new InvalidArgumentError(`${what} must be a positive integer, got ${String(v)}`);
  return v;
}

function unavailable(err: unknown, what: string): LockError {
  if (err instanceof LockError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new BackendUnavailableError(`${what}: ${msg}`, { cause: err });
}
