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
 * - Reconcile: from the start, every `reconcileIntervalMs` each backend that is up is listed again and diffed against `known`; whatever the watch missed (foreign
 *   locks have no change feed; a renewal the store does not report; a gap while the store was
 *   down) becomes acquired/released/expired/changed events marked `source: "reconcile"`. Keys a
 *   watch reported while the listing ran are left alone, so a stale listing cannot undo a fresh
 *   push. The first round is quiet (it learns the state, emits nothing). Each listing also
 *   samples every lock's waiter count for the contention statistics. It runs whether or not a
 *   browser is connected: foreign locks have no change feed, and their churn is only seen here.
 * - Closed (server stopping): new streams are refused and nothing restarts.
 * - A backend that comes back up gets its watch re-opened (a Redis subscriber that failed while
 *   the server was away is not retried by the backend) and is re-listed at once.
 */
import type { LockChange, LockEventType, LockInfo, Unsubscribe } from '../locks/types';
import { getTuning } from './config';
import { getContention } from './contention';
import { getHistory, type ChangeSource, type HistoryEvent } from './history';
import { listLocks, publicLock, type LockList } from './inventory';
import { getMetrics } from './metrics';
import { getRegistry, type BackendStatus } from './registry';
import { singleton } from './singleton';

/** What an event-stream client receives after the snapshot. */
export type StreamEvent = { kind: 'lock'; event: HistoryEvent } | { kind: 'backend'; status: BackendStatus };

/** Locks listed per backend for a reconcile; beyond it, disappearances are not inferred. */
const RECONCILE_LIMIT = 10_000;
/** An expiry moved by less than this is read jitter (PTTL vs clock reads), not a renewal. */
const EXPIRY_JITTER_MS = 1000;

function holderIdentity(l: LockInfo): string {
  return JSON.stringify([
    l.fence,
    l.owner,
    l.meta?.tokenHash ?? null,
    l.meta?.valueHash ?? null,
    l.holders.map((h) => [h.owner, h.fence]),
  ]);
}

function shapeChanged(a: LockInfo, b: LockInfo): boolean {
  if (a.kind !== b.kind || a.format !== b.format) return true;
  if (JSON.stringify(a.waiters.map((w) => w.owner)) !== JSON.stringify(b.waiters.map((w) => w.owner))) return true;
  if ((a.expiresAt === null) !== (b.expiresAt === null)) return true;
  return a.expiresAt !== null && b.expiresAt !== null && Math.abs(a.expiresAt - b.expiresAt) > EXPIRY_JITTER_MS;
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
    this.reconcileTimer = setInterval(() => void this.reconcile({ quiet: false }), getTuning().reconcileIntervalMs);
    this.reconcileTimer.unref();
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
    if (change.type === 'acquired' || change.type === 'changed') {
      if (lock) known.set(change.key, lock);
    } else {
      known.delete(change.key);
      lock ??= prev;
    }
    if (source === 'watch') {
      const k = `${id}\n${change.key}`;
      this.touched.delete(k); // keep insertion order = recency, for the trim below
      this.touched.set(k, performance.now());
      if (this.touched.size > 100_000) {
        for (const key of this.touched.keys()) {
          this.touched.delete(key);
          if (this.touched.size <= 50_000) break;
        }
      }
    }
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
    try {
      event = getHistory().record(rec);
    } catch (err) {
      // History is a convenience; a full disk must not stop the live stream.
      console.error('[lockdeck] cannot record history:', err instanceof Error ? err.message : err);
      event = { id: 0, ...rec };
    }
    getMetrics().lockEvents.inc({ backend: id, event: change.type, source });
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

  private async reconcileOne(id: string, quiet: boolean): Promise<void> {
    const started = performance.now();
    let locks: LockInfo[];
    try {
      locks = (await getRegistry().call(id, 'list', (b) => b.list({ limit: RECONCILE_LIMIT }))).map((l) => publicLock(l, id));
    } catch {
      return; // The registry marked it down; its status event tells the clients.
    }
    const known = this.knownOf(id);
    const now = Date.now();
    const seen = new Set<string>();
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
      if (this.touchedSince(id, l.key, started)) continue;
      const prev = known.get(l.key);
      // A lockdeck lock taken moments ago on a backend we watch: its watch event is on its way.
      // When the event loop was busy, the reconcile timer runs before the pending I/O that carries
      // the event (libuv runs timers first) and would record the change as found by reconcile.
      // Left to the watch; a later round records it if the watch never does.
      if (!prev && !quiet && this.watches.has(id) && l.format === 'lockdeck' && l.acquiredAt !== null && now - l.acquiredAt < WATCH_GRACE_MS) continue;
      if (!prev) {
        emit('acquired', l.key, l);
      } else if (holderIdentity(prev) !== holderIdentity(l)) {
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
    if (locks.length >= RECONCILE_LIMIT) return; // a cut listing says nothing about what is gone
    for (const [key, prev] of [...known]) {
      if (seen.has(key) || this.touchedSince(id, key, started)) continue;
      emit(prev.expiresAt !== null && prev.expiresAt <= now ? 'expired' : 'released', key, prev);
    }
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
