import 'server-only';

/**
 * The event hub: one watch per backend for the whole process, fanned out to every event-stream
 * client and recorded in the history.
 *
 * - Watches start at server start (boot.ts), or lazily at the first stream subscription or
 *   detail/history read where boot did not run, and then stay open (one subscription per
 *   backend, cheap), so history and the contention statistics (contention.ts) accumulate from
 *   server start, not from the first browser.
 * - `known` is the last state seen per backend and key. It fills in released/expired/forced
 *   events, which some backends send without the lock (Redis sends only the key), so history and
 *   the stream can say whose lock ended and with which fence.
 * - Reconcile: from the start, each backend that is up is listed again at least every
 *   `reconcileIntervalMs` and diffed against `known`; whatever the watch missed (foreign
 *   locks have no change feed; a renewal the store does not report; a gap while the store was
 *   down) becomes acquired/released/expired/changed events marked `source: "reconcile"`. Keys a
 *   watch reported while the listing ran are left alone, so a stale listing cannot undo a fresh
 *   push, and an older listing is never diffed after a newer one. The first round is quiet (it
 *   learns the state, emits nothing). Each listing also samples every lock's waiter count for
 *   the contention statistics. It runs whether or not a browser is connected: foreign locks have
 *   no change feed, and their churn is only seen here. The listing need not be the hub's own:
 *   a complete listing a request made anyway (`GET /api/locks`, a stream's snapshot, metrics) is
 *   diffed instead once half a period has passed, and the hub lists only a backend nobody listed
 *   for a period (so under load the store is not listed twice and requests do not queue behind
 *   the hub's listing; at 10,000 locks one listing is 50–150 ms of this process's CPU).
 * - Closed (server stopping): new streams are refused and nothing restarts.
 * - A backend that comes back up gets its watch re-opened (a Redis subscriber that failed while
 *   the server was away is not retried by the backend) and is re-listed at once.
 */
import { lockHealth } from '../locks/health';
import type { LockChange, LockEventType, LockInfo, Unsubscribe } from '../locks/types';
import { getTuning } from './config';
import { getContention } from './contention';
import { getHistory, type ChangeSource, type HistoryEvent } from './history';
import { listingInFlight, listLocks, publicLock, setListingObserver, type ListingFacts, type LockList } from './inventory';
import { getMetrics } from './metrics';
import { getRegistry, type BackendStatus } from './registry';
import { singleton } from './singleton';

/** What an event-stream client receives after the snapshot. */
export type StreamEvent = { kind: 'lock'; event: HistoryEvent } | { kind: 'backend'; status: BackendStatus };

/** Locks listed per backend for a reconcile; beyond it, disappearances are not inferred. */
const RECONCILE_LIMIT = 10_000;
/** An expiry moved by less than this is read jitter (PTTL vs clock reads), not a renewal. */
const EXPIRY_JITTER_MS = 1000;

/**
 * The same holder in two looks at one lock: fence, owner, the layout's token/value hash and every
 * holder's owner and fence. Compared field by field: this runs for every lock of every backend at
 * each reconcile (a JSON string per look was ~20 ms of CPU per 10,000 locks).
 */
function sameHolder(a: LockInfo, b: LockInfo): boolean {
  if ((a.fence ?? null) !== (b.fence ?? null) || (a.owner ?? null) !== (b.owner ?? null)) return false;
  if ((a.meta?.tokenHash ?? null) !== (b.meta?.tokenHash ?? null) || (a.meta?.valueHash ?? null) !== (b.meta?.valueHash ?? null)) return false;
  if (a.holders.length !== b.holders.length) return false;
  for (let i = 0; i < a.holders.length; i++) {
    const x = a.holders[i]!;
    const y = b.holders[i]!;
    if ((x.owner ?? null) !== (y.owner ?? null) || (x.fence ?? null) !== (y.fence ?? null)) return false;
  }
  return true;
}

/** Same kind, layout and queue, and an expiry in both looks or in neither: at most the expiry moved. */
function sameShape(a: LockInfo, b: LockInfo): boolean {
  if (a.kind !== b.kind || a.format !== b.format) return false;
  if (a.waiters.length !== b.waiters.length) return false;
  for (let i = 0; i < a.waiters.length; i++) if ((a.waiters[i]!.owner ?? null) !== (b.waiters[i]!.owner ?? null)) return false;
  return (a.expiresAt === null) === (b.expiresAt === null);
}

function shapeChanged(a: LockInfo, b: LockInfo): boolean {
  if (!sameShape(a, b)) return true;
  return a.expiresAt !== null && b.expiresAt !== null && Math.abs(a.expiresAt - b.expiresAt) > EXPIRY_JITTER_MS;
}

/**
 * A `changed` that only moved the expiry of the same holder: a renewal. It updates the live state
 * (clients need the new expiry) but is not history: a healthy fleet renews every lock every
 * TTL/3, so 10,000 held locks renew ~1,000 times a second (measured: 20,000 renewal events in
 * 21 s from 10,000 auto-renewed Redis locks; ~100/s from etcd's whole-second lease TTLs on a
 * reconcile). Stored, they wrote to SQLite at that rate, pushed the real events out of the total
 * bound (100,000) within minutes, and buried a long-held lock's acquisition under 200 renewals
 * of its own within ~30 minutes.
 */
function isRenewal(change: LockChange, prev: LockInfo | null, lock: LockInfo | null): boolean {
  if (change.type !== 'changed' || prev === null || lock === null) return false;
  if (!sameHolder(prev, lock) || !sameShape(prev, lock)) return false;
  // A later expiry, and health no worse: a lease that only ran down (ok → expiring → expired, a
  // DynamoDB holder whose heartbeats stopped) is history.
  if (prev.expiresAt === null || lock.expiresAt === null || lock.expiresAt <= prev.expiresAt) return false;
  return lock.health === prev.health || lock.health === 'ok';
}

export class EventHub {
  private readonly subscribers = new Set<(e: StreamEvent) => void>();
  /** Ends each open stream; called on shutdown, so Next's server.close() is not held open. */
  private readonly streamClosers = new Set<() => void>();
  private readonly watches = new Map<string, Unsubscribe>();
  private readonly known = new Map<string, Map<string, LockInfo>>();
  /** Backends whose `known` map was filled by a complete listing (seed or reconcile). */
  private readonly learned = new Set<string>();
  /** performance.now() of the last pushed change per `backend\nkey`. */
  private readonly touched = new Map<string, number>();
  /** Last status seen per backend (absent: none yet). */
  private readonly lastUp = new Map<string, boolean>();
  /** performance.now() of the last pushed change per backend (any key): most listings skip the per-key look-up. */
  private readonly lastTouch = new Map<string, number>();
  /** performance.now() at the start of the last listing diffed per backend (the hub's own, or a request's). */
  private readonly lastListedAt = new Map<string, number>();
  /** performance.now() when the hub last began listing each backend itself (failed or not). */
  private readonly lastTriedAt = new Map<string, number>();
  /** Backends the hub is listing itself now. */
  private readonly listing = new Set<string>();
  /**
   * Endings a reconcile recorded lately, per backend and key: the fence and when. A listing can
   * see a lockdeck lock gone before the watch event of its release is handled; that event must
   * not record the same ending a second time.
   */
  private readonly endedByReconcile = new Map<string, { fence: string | null; at: number }>();
  private started = false;
  private closedFlag = false;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private reconciling = false;

  /** True once {@link close} ran (the server is stopping): streams are refused. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** Opens the watches and starts the reconcile loop (idempotent). */
  ensureStarted(): void {
    if (this.started || this.closedFlag) return;
    this.started = true;
    const registry = getRegistry();
    registry.onStatus((s) => this.onBackendStatus(s));
    for (const id of registry.ids()) {
      if (registry.status(id).checkedAt !== null) this.lastUp.set(id, registry.isUp(id));
      this.startWatch(id);
    }
    // What happened before the start is not replayed as events: learn it quietly.
    void this.reconcile({ quiet: true });
    // Checked four times per period, each backend on its own clock: a backend that a request
    // listed lately (onListing) is not listed again, and backends drift apart rather than being
    // listed all at once.
    const every = getTuning().reconcileIntervalMs;
    const tick = Math.max(25, Math.round(every / 4));
    this.reconcileTimer = setInterval(() => this.reconcileDue(every, tick), tick);
    this.reconcileTimer.unref();
    setListingObserver((id, locks, facts) => this.onListing(id, locks, facts));
  }

  /**
   * The locks of backend `id` as the hub knows them now (what a stream client shows), or null
   * before a listing has taught it that backend. For `GET /api/locks?source=live`.
   */
  liveLocks(id: string): Iterable<LockInfo> | null {
    this.ensureStarted();
    const m = this.known.get(id);
    return m && this.learned.has(id) ? m.values() : null;
  }

  /** Adds a stream client. */
  subscribe(fn: (e: StreamEvent) => void): Unsubscribe {
    this.ensureStarted();
    this.subscribers.add(fn);
    getMetrics().sseClients.set(this.subscribers.size);
    return () => {
      this.subscribers.delete(fn);
      getMetrics().sseClients.set(this.subscribers.size);
    };
  }

  /** Registers a stream's closer for shutdown. */
  trackStream(close: () => void): Unsubscribe {
    this.streamClosers.add(close);
    return () => this.streamClosers.delete(close);
  }

  private startWatch(id: string): void {
    const registry = getRegistry();
    this.watches.get(id)?.();
    this.watches.delete(id);
    const backend = registry.backendOf(id);
    if (!backend) return;
    try {
      this.watches.set(
        id,
        backend.watch((c) => this.onChange(id, c, 'watch'), { telemetry: true }),
      );
    } catch (err) {
      // Retried when the backend is next seen up.
      console.error(`[lockdeck] cannot watch backend "${id}":`, err instanceof Error ? err.message : err);
    }
    if (!this.known.has(id)) void this.seed(id);
  }

  /** Learns the current locks of one backend without emitting anything. */
  private async seed(id: string): Promise<void> {
    try {
      const started = performance.now();
      const locks = await getRegistry().call(id, 'list', (b) => b.list({ limit: RECONCILE_LIMIT }));
      const map = this.known.get(id) ?? new Map<string, LockInfo>();
      for (const l of locks) if (!this.touchedSince(id, l.key, started)) map.set(l.key, publicLock(l, id));
      this.known.set(id, map);
      this.learned.add(id);
    } catch {
      // The next reconcile or status change tries again.
    }
  }

  private onBackendStatus(s: BackendStatus): void {
    this.publish({ kind: 'backend', status: s });
    const wasDown = this.lastUp.get(s.id) === false;
    this.lastUp.set(s.id, s.status === 'up');
    // What it knew may be out of date once the store comes back: the next listing re-teaches it.
    if (s.status !== 'up') this.learned.delete(s.id);
    // Only after an outage (or a watch that could not be opened): re-opening a healthy watch
    // would leave a gap of its own.
    if (s.status === 'up' && (wasDown || !this.watches.has(s.id)) && !this.closedFlag) {
      this.startWatch(s.id);
      void this.reconcileOne(s.id, false);
    }
  }

  private touchedSince(id: string, key: string, since: number): boolean {
    return (this.touched.get(`${id}\n${key}`) ?? -Infinity) >= since;
  }

  private knownOf(id: string): Map<string, LockInfo> {
    let m = this.known.get(id);
    if (!m) this.known.set(id, (m = new Map()));
    return m;
  }

  /**
   * Telemetry of lockdeck's clients: `attempt` and `lost` change no lock (the known map stays as
   * it is, neither is an ending). Both are counted in the contention statistics; `lost` is also
   * recorded in history and streamed, `attempt` (too chatty) is not.
   */
  private onTelemetry(id: string, change: LockChange, source: ChangeSource): void {
    try {
      getContention().recordChange(id, change, source, null);
    } catch (err) {
      console.error('[lockdeck] cannot record contention statistics:', err instanceof Error ? err.message : err);
    }
    getMetrics().lockEvents.inc({ backend: id, event: change.type, source });
    if (change.type !== 'lost') return;
    // What the holder knew (owner, fence), or the known lock when it is still that holder's.
    const prev = this.known.get(id)?.get(change.key) ?? null;
    let lock = change.lock ? publicLock(change.lock, id) : null;
    if (prev && (!lock || (lock.fence !== null && lock.fence === prev.fence))) lock = prev;
    if (lock && change.reason) lock = { ...lock, meta: { ...lock.meta, reason: change.reason } };
    const rec = { at: change.at, type: change.type, backend: id, key: change.key, owner: lock?.owner ?? null, fence: lock?.fence ?? change.lock?.fence ?? null, source, lock };
    let event: HistoryEvent;
    try {
      event = getHistory().record(rec);
    } catch (err) {
      console.error('[lockdeck] cannot record history:', err instanceof Error ? err.message : err);
      event = { id: 0, ...rec };
    }
    this.publish({ kind: 'lock', event });
  }

  /** Records one change and sends it to every client. */
  private onChange(id: string, change: LockChange, source: ChangeSource): void {
    if (change.type === 'attempt' || change.type === 'lost') return this.onTelemetry(id, change, source);
    if (change.renewal && !change.lock) return this.onRenewal(id, change, source, change.renewal);
    // An acquisition nobody can describe (the lock was gone when the backend read it) is counted
    // in the contention statistics, but changes no state a client could show: streaming it would
    // leave a ghost entry until the next reconcile.
    if ((change.type === 'acquired' || change.type === 'changed') && !change.lock) {
      try {
        getContention().recordChange(id, change, source, null);
      } catch (err) {
        console.error('[lockdeck] cannot record contention statistics:', err instanceof Error ? err.message : err);
      }
      return;
    }
    const known = this.knownOf(id);
    const prev = known.get(change.key) ?? null;
    let lock = change.lock ? publicLock(change.lock, id) : null;
    const ending = change.type !== 'acquired' && change.type !== 'changed';
    const endKey = `${id}\n${change.key}`;
    if (ending && source === 'watch' && !prev) {
      // Already ended by a reconcile that saw the lock gone first: the same ending, told late.
      const e = this.endedByReconcile.get(endKey);
      if (e && performance.now() - e.at < ENDED_MEMORY_MS && (e.fence === null || !lock || lock.fence === null || lock.fence === e.fence)) {
        this.endedByReconcile.delete(endKey);
        return;
      }
    }
    if (ending && source === 'reconcile') {
      this.endedByReconcile.set(endKey, { fence: (lock ?? prev)?.fence ?? null, at: performance.now() });
      if (this.endedByReconcile.size > 10_000) {
        const cutoff = performance.now() - ENDED_MEMORY_MS;
        for (const [k, e] of this.endedByReconcile) if (e.at < cutoff || this.endedByReconcile.size > 5_000) this.endedByReconcile.delete(k);
      }
    } else if (source === 'watch') {
      this.endedByReconcile.delete(endKey);
    }
    if (change.type === 'acquired' || change.type === 'changed') {
      if (lock) known.set(change.key, lock);
    } else {
      known.delete(change.key);
      lock ??= prev;
    }
    if (source === 'watch') this.touch(id, change.key);
    // Contention statistics: the change's durations, and the queue length it shows.
    let waitedMs: number | undefined;
    let heldMs: number | undefined;
    if (change.type === 'acquired' && change.waitedMs !== undefined && Number.isFinite(change.waitedMs)) waitedMs = Math.max(0, Math.round(change.waitedMs));
    if (change.type !== 'acquired' && change.type !== 'changed') {
      if (change.heldMs !== undefined && Number.isFinite(change.heldMs)) heldMs = Math.max(0, Math.round(change.heldMs));
      else if (lock?.acquiredAt != null && lock.acquiredAt <= change.at) heldMs = change.at - lock.acquiredAt;
    }
    try {
      const stats = getContention();
      stats.recordChange(id, { ...change, waitedMs, heldMs }, source, lock?.acquiredAt ?? null);
      // An ending leaves no queue unless someone takes over, whose `acquired` follows at once.
      stats.sampleWaiters(id, change.key, change.type === 'acquired' || change.type === 'changed' ? (lock?.waiters.length ?? 0) : 0, change.at);
    } catch (err) {
      console.error('[lockdeck] cannot record contention statistics:', err instanceof Error ? err.message : err);
    }
    const renewal = isRenewal(change, prev, lock);
    let event: HistoryEvent;
    const rec = {
      at: change.at,
      type: change.type,
      backend: id,
      key: change.key,
      owner: lock?.owner ?? null,
      fence: lock?.fence ?? null,
      source,
      lock,
      ...(waitedMs !== undefined ? { waitedMs } : {}),
      ...(heldMs !== undefined ? { heldMs } : {}),
    };
    if (renewal) {
      // Streamed for the live state, with id 0 (not stored; clients keep it out of histories).
      event = { id: 0, ...rec };
    } else {
      try {
        event = getHistory().record(rec);
      } catch (err) {
        // History is a convenience; a full disk must not stop the live stream.
        console.error('[lockdeck] cannot record history:', err instanceof Error ? err.message : err);
        event = { id: 0, ...rec };
      }
    }
    getMetrics().lockEvents.inc({ backend: id, event: renewal ? 'renewed' : change.type, source });
    this.publish({ kind: 'lock', event });
  }

  /** Marks a key as just changed by its watch: a reconcile that listed before it must not undo it. */
  private touch(id: string, key: string): void {
    const k = `${id}\n${key}`;
    const at = performance.now();
    this.touched.delete(k); // keep insertion order = recency, for the trim below
    this.touched.set(k, at);
    this.lastTouch.set(id, at);
    if (this.touched.size > 100_000) {
      for (const t of this.touched.keys()) {
        this.touched.delete(t);
        if (this.touched.size <= 50_000) break;
      }
    }
  }

  /**
   * A renewal pushed without the lock (LockChange.renewal): the lock we know with its new expiry.
   * One we do not know, or whose holder changed meanwhile, is left to the next reconcile.
   */
  private onRenewal(id: string, change: LockChange, source: ChangeSource, r: NonNullable<LockChange['renewal']>): void {
    const known = this.knownOf(id);
    const prev = known.get(change.key);
    if (!prev || (r.fence !== null && prev.fence !== r.fence)) return;
    // A fresh lease: its whole length is left. A health the layout judged otherwise (unknown,
    // orphaned) stays as it was: a renewal does not make the read that judged it.
    const leased = prev.health === 'ok' || prev.health === 'expiring' || prev.health === 'expired';
    const health = leased ? lockHealth({ now: change.at, expiresAt: r.expiresAt, ttlMs: r.expiresAt - change.at }) : prev.health;
    const lock: LockInfo = { ...prev, expiresAt: r.expiresAt, ttlMs: r.expiresAt - change.at, health };
    known.set(change.key, lock);
    if (source === 'watch') this.touch(id, change.key);
    const event: HistoryEvent = { id: 0, at: change.at, type: 'changed', backend: id, key: change.key, owner: lock.owner, fence: lock.fence, source, lock };
    getMetrics().lockEvents.inc({ backend: id, event: 'renewed', source });
    this.publish({ kind: 'lock', event });
  }

  private publish(e: StreamEvent): void {
    for (const s of [...this.subscribers]) {
      try {
        s(e);
      } catch (err) {
        console.error('[lockdeck] event subscriber failed:', err);
      }
    }
  }

  /** One reconcile round over every backend that is up (rounds never overlap). */
  async reconcile({ quiet }: { quiet: boolean }): Promise<void> {
    if (this.reconciling) return;
    this.reconciling = true;
    try {
      const registry = getRegistry();
      await Promise.all(registry.ids().filter((id) => registry.isUp(id) || registry.status(id).checkedAt === null).map((id) => this.reconcileOne(id, quiet)));
    } finally {
      this.reconciling = false;
    }
  }

  /**
   * The timer: lists each backend that is up and was last listed a period ago (the hub's own
   * listing or a request's, see {@link onListing}), so every backend is diffed at least once per
   * `reconcileIntervalMs` (plus one tick).
   */
  private reconcileDue(every: number, tick: number): void {
    if (this.closedFlag || this.reconciling) return;
    const registry = getRegistry();
    const now = performance.now();
    for (const id of registry.ids()) {
      if (!registry.isUp(id) && registry.status(id).checkedAt !== null) continue;
      // A failed listing is retried a period later too, as before (not at every tick).
      const last = Math.max(this.lastListedAt.get(id) ?? -Infinity, this.lastTriedAt.get(id) ?? -Infinity);
      if (now - last < every - tick / 2) continue;
      // A request is listing it right now: that listing will do (onListing), and listing the
      // same store twice at once is the cost this avoids. Not before the first, quiet, round.
      if (this.learned.has(id) && listingInFlight(id)) continue;
      void this.reconcileOne(id, false);
    }
  }

  private async reconcileOne(id: string, quiet: boolean): Promise<void> {
    if (this.listing.has(id)) return;
    this.listing.add(id);
    const started = performance.now();
    this.lastTriedAt.set(id, started);
    let locks: LockInfo[];
    let complete: boolean;
    try {
      const raw = await getRegistry().call(id, 'list', (b) => b.list({ limit: RECONCILE_LIMIT + 1 }));
      complete = raw.length <= RECONCILE_LIMIT;
      if (!complete) raw.length = RECONCILE_LIMIT;
      locks = raw.map((l) => publicLock(l, id));
    } catch {
      return; // The registry marked it down; its status event tells the clients.
    } finally {
      this.listing.delete(id);
    }
    // A request's listing that started later was diffed meanwhile: this one is older news.
    if ((this.lastListedAt.get(id) ?? -Infinity) > started) return;
    this.diffListing(id, locks, complete, started, quiet);
  }

  /**
   * A listing a request made (inventory.ts), taken as this backend's reconcile when one is half
   * due: the same diff, `source: "reconcile"`, without listing the store a second time. So a
   * console whose locks are being listed anyway (a busy page, the stream's snapshots, a scraper)
   * does not pay for a second listing, and its requests do not queue behind one. Only listings
   * as complete as the hub's own count (no filter; not cut below {@link RECONCILE_LIMIT}); the
   * diff runs after the request has its answer.
   */
  private onListing(id: string, locks: readonly LockInfo[], facts: ListingFacts): void {
    if (this.closedFlag || !this.learned.has(id)) return;
    if (!facts.complete && facts.asked <= RECONCILE_LIMIT) return;
    const half = getTuning().reconcileIntervalMs / 2;
    const fresh = () => facts.startedAt - (this.lastListedAt.get(id) ?? -Infinity) >= half;
    if (!fresh()) return;
    setImmediate(() => {
      if (this.closedFlag || !this.learned.has(id) || !fresh()) return;
      this.diffListing(id, locks.length > RECONCILE_LIMIT ? locks.slice(0, RECONCILE_LIMIT) : locks, facts.complete, facts.startedAt, false);
    });
  }

  /**
   * Diffs one backend's listing (begun at `started`, performance.now()) against `known` and emits
   * what the watch missed. `complete`: the listing holds every lock, so a known one that is not in
   * it has ended (a cut listing says nothing about what is gone).
   */
  private diffListing(id: string, locks: readonly LockInfo[], complete: boolean, started: number, quiet: boolean): void {
    this.lastListedAt.set(id, started);
    const known = this.knownOf(id);
    const now = Date.now();
    const seen = new Set<string>();
    // Only keys pushed since the listing began are skipped; usually none is.
    const anyTouched = (this.lastTouch.get(id) ?? -Infinity) >= started;
    const emit = (type: LockEventType, key: string, lock: LockInfo | null) => {
      if (quiet) {
        if (lock && (type === 'acquired' || type === 'changed')) known.set(key, lock);
        else known.delete(key);
        this.sample(id, key, lock && (type === 'acquired' || type === 'changed') ? lock.waiters.length : 0, now);
      } else {
        this.onChange(id, { type, backend: id, key, lock, at: now }, 'reconcile');
      }
    };
    for (const l of locks) {
      seen.add(l.key);
      if (anyTouched && this.touchedSince(id, l.key, started)) continue;
      const prev = known.get(l.key);
      // A lockdeck lock taken moments ago on a backend we watch: its watch event is on its way.
      // When the event loop was busy, the reconcile timer runs before the pending I/O that carries
      // the event (libuv runs timers first) and would record the change as found by reconcile.
      // Left to the watch; a later round records it if the watch never does.
      if (!prev && !quiet && this.watches.has(id) && l.format === 'lockdeck' && l.acquiredAt !== null && now - l.acquiredAt < WATCH_GRACE_MS) continue;
      if (!prev) {
        emit('acquired', l.key, l);
      } else if (!sameHolder(prev, l)) {
        // A holder came and went between two looks: say both, so history has the old one's end.
        emit('released', l.key, prev);
        emit('acquired', l.key, l);
      } else if (shapeChanged(prev, l)) {
        emit('changed', l.key, l);
      } else {
        known.set(l.key, l);
        this.sample(id, l.key, l.waiters.length, now);
      }
    }
    this.learned.add(id);
    if (!complete) return;
    const gone: Array<[string, LockInfo]> = [];
    for (const [key, prev] of known) {
      if (seen.has(key) || (anyTouched && this.touchedSince(id, key, started))) continue;
      gone.push([key, prev]);
    }
    for (const [key, prev] of gone) emit(prev.expiresAt !== null && prev.expiresAt <= now ? 'expired' : 'released', key, prev);
  }

  /** A waiter-count sample outside a change (reconcile); the store skips repeats. */
  private sample(id: string, key: string, waiters: number, at: number): void {
    try {
      getContention().sampleWaiters(id, key, waiters, at);
    } catch {
      // Statistics are a convenience, as history is.
    }
  }

  /** Ends every stream and stops every watch (shutdown); new streams are refused from now on. */
  close(): void {
    this.closedFlag = true;
    if (this.started) setListingObserver(null);
    for (const c of [...this.streamClosers]) c();
    clearInterval(this.reconcileTimer);
    for (const u of this.watches.values()) u();
    this.watches.clear();
    this.subscribers.clear();
  }
}

export function getEventHub(): EventHub {
  return singleton('event-hub', () => new EventHub());
}

// ---- text/event-stream ---------------------------------------------------------------------

/** Chunks a slow client may have queued before it is dropped (it reconnects to a snapshot). */
const MAX_QUEUED_CHUNKS = 2000;

export interface SnapshotEvent extends LockList {
  backends: BackendStatus[];
  /** The period of `ping` events on this stream. */
  heartbeatMs?: number;
}

/** `ping`, every heartbeat: the server clock, and the period (so the browser can tell a dead stream). */
export interface PingEvent {
  now: number;
  heartbeatMs: number;
}

/** How long an ending found by reconcile is remembered, so its late watch event is not a second one. */
const ENDED_MEMORY_MS = 30_000;

/** How long a fresh lockdeck acquisition is left to the backend's watch before reconcile reports it. */
const WATCH_GRACE_MS = 2000;

/** Locks per `data:` line of a snapshot (about 200 kB of JSON). */
const SNAPSHOT_CHUNK_LOCKS = 500;

/**
 * The `snapshot` event, its locks a chunk per `data:` line, with a turn of the event loop between
 * chunks: 20,000 locks are 8.6 MB of JSON, which serialised at once held the server's event loop
 * for a few hundred ms on a busy box (a page's first-screenful request, other streams and the
 * watches waited behind it), and sat in memory as one string plus its bytes. The lines join with
 * a newline (the event-stream format joins `data:` lines so), which is whitespace between JSON
 * array elements: clients parse the same object as before.
 */
async function sendSnapshot(send: (text: string) => void, snapshot: SnapshotEvent, isOpen: () => boolean): Promise<void> {
  const { locks, ...rest } = snapshot;
  send('event: snapshot\ndata: {"locks":[\n');
  for (let i = 0; i < locks.length && isOpen(); i += SNAPSHOT_CHUNK_LOCKS) {
    if (i > 0) await new Promise((r) => setImmediate(r));
    const part = JSON.stringify(locks.slice(i, i + SNAPSHOT_CHUNK_LOCKS)).slice(1, -1);
    send(`data: ${part}${i + SNAPSHOT_CHUNK_LOCKS < locks.length ? ',' : ''}\n`);
  }
  send(`data: ],${JSON.stringify(rest).slice(1)}\n\n`);
}

function frame(event: string, data: unknown): string {
  // JSON never contains a raw newline, so one `data:` line per event is enough.
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * The body of `GET /api/events`: `snapshot` first (every lock and backend), then one event per
 * change (`acquired`, `released`, `expired`, `forced`, `changed` with the history event, whose
 * `lock` is the LockInfo; `lost` when a lockdeck holder lost its lock, whose `lock` is what that
 * holder knew with the reason in `lock.meta.reason`, changing no lock; `backend` with the
 * backend's status; never `attempt`), and a comment every
 * `heartbeatMs`. Changes that happen while the snapshot is being read are queued and sent right
 * after it, so none is lost (some may repeat what the snapshot shows; applying them is
 * idempotent). Ends when `signal` aborts (the client went away).
 */
export function eventStream(signal: AbortSignal): ReadableStream<Uint8Array> {
  const hub = getEventHub();
  const encoder = new TextEncoder();
  let cleanup = () => {};
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        let open = true;
        const send = (text: string) => {
          if (!open) return;
          try {
            controller.enqueue(encoder.encode(text));
          } catch {
            return cleanup();
          }
          if ((controller.desiredSize ?? 0) < -MAX_QUEUED_CHUNKS) {
            cleanup();
            try {
              controller.close();
            } catch {
              // already closed
            }
          }
        };
        const sendEvent = (e: StreamEvent) => {
          if (e.kind === 'backend') send(frame('backend', e.status));
          else send(frame(e.event.type, e.event));
        };
        let pending: StreamEvent[] | null = [];
        // While the snapshot's lines are being written nothing else may be (a ping between two
        // `data:` lines would end up inside the snapshot event); changes wait in `pending`.
        let writingSnapshot = false;
        const unsubscribe = hub.subscribe((e) => (pending ? pending.push(e) : sendEvent(e)));
        const heartbeatMs = getTuning().heartbeatMs;
        // A comment for proxies, and a `ping` the browser sees: the server clock (its offset) and
        // proof that the stream is alive (no ping for a few periods: reconnect).
        const heartbeat = setInterval(() => {
          if (writingSnapshot) return;
          const now = Date.now();
          send(`: heartbeat ${now}\n\n${frame('ping', { now, heartbeatMs } satisfies PingEvent)}`);
        }, heartbeatMs);
        const untrack = hub.trackStream(() => onAbort());
        cleanup = () => {
          if (!open) return;
          open = false;
          clearInterval(heartbeat);
          unsubscribe();
          untrack();
          signal.removeEventListener('abort', onAbort);
        };
        const onAbort = () => {
          cleanup();
          try {
            controller.close();
          } catch {
            // already closed or errored
          }
        };
        signal.addEventListener('abort', onAbort, { once: true });
        if (signal.aborted || hub.closed) return onAbort();

        send('retry: 3000\n\n');
        void (async () => {
          // Up to RECONCILE_LIMIT locks per backend (not for all of them together): two full
          // backends are 20,000 rows, as the browser's table shows them.
          const [list, backends] = await Promise.all([listLocks({ limit: RECONCILE_LIMIT, perBackend: true }), Promise.resolve(getRegistry().statuses())]);
          writingSnapshot = true;
          try {
            await sendSnapshot(send, { ...list, backends, heartbeatMs }, () => open);
          } finally {
            writingSnapshot = false;
          }
          const queued = pending ?? [];
          pending = null;
          for (const e of queued) sendEvent(e);
        })().catch((err: unknown) => {
          send(frame('snapshot-error', { error: { code: 'snapshot_failed', message: err instanceof Error ? err.message : String(err) } }));
          onAbort();
        });
      },
      cancel() {
        cleanup();
      },
    },
    { highWaterMark: 1 },
  );
}
