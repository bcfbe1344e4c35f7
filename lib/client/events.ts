/**
 * The one event stream of the app (`GET /api/events`), written straight into the TanStack Query
 * cache: a `snapshot` replaces the lock list and the backends, lock events upsert or remove one
 * lock (live-state.ts), `backend` events update that backend's status. Pages only read the cache;
 * none of them polls for freshness.
 *
 * - Events are applied in batches (one cache write per {@link FLUSH_MS}), so a burst of thousands
 *   of changes costs a few renders, not thousands.
 * - The browser's EventSource reconnects by itself after a dropped stream (the server asks for
 *   3 s), and every new connection starts with a fresh snapshot. When the browser gives up (the
 *   server answered with an error, e.g. while it restarts, or 401 after a logout elsewhere) we
 *   reconnect ourselves with a capped backoff, after asking /api/session whether the login is
 *   still good: an EventSource cannot see the status of a refused connection, and a 401 must
 *   send the person to the login page rather than retry forever.
 * - The connection's state ("live", "reconnecting" and since when) is a small external store for
 *   the header and the pages (`useConnection`).
 * - `ping` (every server heartbeat) refreshes the server-clock offset and proves the stream alive:
 *   when neither a ping nor anything else arrived for {@link DEAD_AFTER_HEARTBEATS} heartbeats, a
 *   proxy or a sleeping laptop left a dead connection that the browser still thinks is open, and
 *   we drop it and reconnect (to a fresh snapshot).
 * - The scheduler and contention views are aggregates, not in the cache as locks are: lock events
 *   invalidate them, throttled ({@link SCHEDULER_REFRESH_MS} for `job/…` locks,
 *   {@link CONTENTION_REFRESH_MS} for any), and only queries on screen refetch.
 */
import { useEffect, useSyncExternalStore } from 'react';
import { useQueryClient, type QueryClient } from '@tanstack/react-query';

import { api, isApiError, redirectToLogin } from './api';
import { observeServerTime } from './clock';
import { liveLog } from './live-log';
import { applyBackendStatus, applyLiveEvents, type LiveEvent, type LocksState } from './live-state';
import { queryKeys, type LockDetailData } from './queries';
import type { BackendStatus, HistoryEvent, PingEvent, SnapshotEvent } from './types';

const FLUSH_MS = 50;
const LOCK_EVENTS = ['acquired', 'released', 'expired', 'forced', 'changed', 'lost'] as const;
const REMOVING = new Set<string>(['released', 'expired', 'forced']);
const MAX_BACKOFF_MS = 5_000;
const DEAD_AFTER_HEARTBEATS = 2.5;
const SCHEDULER_REFRESH_MS = 2_000;
const CONTENTION_REFRESH_MS = 10_000;

export type ConnectionState = 'connecting' | 'live' | 'reconnecting';

export interface Connection {
  state: ConnectionState;
  /** Browser ms of the last snapshot or event received (null before the first). */
  lastSyncAt: number | null;
  /** Browser ms when the stream dropped (null while live). */
  droppedAt: number | null;
  /** Snapshots received so far (1 after the first connection). */
  snapshots: number;
}

let connection: Connection = { state: 'connecting', lastSyncAt: null, droppedAt: null, snapshots: 0 };
const listeners = new Set<() => void>();

function setConnection(patch: Partial<Connection>): void {
  connection = { ...connection, ...patch };
  for (const l of [...listeners]) l();
}

function subscribe(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

const serverConnection: Connection = { state: 'connecting', lastSyncAt: null, droppedAt: null, snapshots: 0 };

/** The stream's state, re-rendering on every change. */
export function useConnection(): Connection {
  return useSyncExternalStore(
    subscribe,
    () => connection,
    () => serverConnection,
  );
}

class LiveConnection {
  private es: EventSource | null = null;
  private queue: LiveEvent[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private attempt = 0;
  private stopped = false;
  private heartbeatMs: number | null = null;
  private watchdog: ReturnType<typeof setTimeout> | undefined;
  private lastInvalidated = { scheduler: 0, contention: 0 };
  private pendingInvalidate: { scheduler?: ReturnType<typeof setTimeout>; contention?: ReturnType<typeof setTimeout> } = {};

  constructor(private readonly qc: QueryClient) {}

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.watchdog);
    clearTimeout(this.pendingInvalidate.scheduler);
    clearTimeout(this.pendingInvalidate.contention);
    clearTimeout(this.retryTimer);
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.es?.close();
    this.es = null;
  }

  /** Re-arms the dead-stream timer: called for everything the stream delivers. */
  private alive(es: EventSource): void {
    clearTimeout(this.watchdog);
    if (this.heartbeatMs === null || this.es !== es) return;
    this.watchdog = setTimeout(() => {
      if (this.es !== es || this.stopped) return;
      this.reconnectLater();
    }, this.heartbeatMs * DEAD_AFTER_HEARTBEATS + 1000);
  }

  private open(): void {
    if (this.stopped) return;
    const es = new EventSource('/api/events');
    this.es = es;
    es.addEventListener('ping', (m) => {
      const ping = JSON.parse((m as MessageEvent<string>).data) as PingEvent;
      observeServerTime(ping.now);
      if (Number.isFinite(ping.heartbeatMs) && ping.heartbeatMs > 0) this.heartbeatMs = ping.heartbeatMs;
      this.alive(es);
    });
    es.addEventListener('snapshot', (m) => {
      const snapshot = JSON.parse((m as MessageEvent<string>).data) as SnapshotEvent;
      const receivedAt = Date.now();
      observeServerTime(snapshot.now, receivedAt);
      if (snapshot.heartbeatMs && snapshot.heartbeatMs > 0) this.heartbeatMs = snapshot.heartbeatMs;
      this.alive(es);
      this.attempt = 0;
      this.enqueue({ kind: 'snapshot', snapshot, receivedAt });
      setConnection({ state: 'live', lastSyncAt: receivedAt, droppedAt: null, snapshots: connection.snapshots + 1 });
    });
    for (const type of LOCK_EVENTS) {
      es.addEventListener(type, (m) => {
        this.alive(es);
        const event = JSON.parse((m as MessageEvent<string>).data) as HistoryEvent;
        this.enqueue({ kind: 'lock', event, receivedAt: Date.now() });
      });
    }
    es.addEventListener('backend', (m) => {
      const status = JSON.parse((m as MessageEvent<string>).data) as BackendStatus;
      this.enqueue({ kind: 'backend', status, receivedAt: Date.now() });
    });
    // The server could not read the snapshot: it ends the stream; start over after a pause.
    es.addEventListener('snapshot-error', () => this.reconnectLater());
    es.onerror = () => {
      if (this.es !== es) return;
      if (connection.state === 'live') setConnection({ state: 'reconnecting', droppedAt: Date.now() });
      else if (connection.snapshots > 0 && connection.state !== 'reconnecting') setConnection({ state: 'reconnecting', droppedAt: connection.droppedAt ?? Date.now() });
      // CONNECTING: the browser retries by itself. CLOSED: it gave up; we take over.
      if (es.readyState === EventSource.CLOSED) this.reconnectLater();
    };
  }

  private reconnectLater(): void {
    clearTimeout(this.watchdog);
    this.es?.close();
    this.es = null;
    if (this.stopped) return;
    if (connection.snapshots > 0 && connection.state !== 'reconnecting') setConnection({ state: 'reconnecting', droppedAt: Date.now() });
    clearTimeout(this.retryTimer);
    const wait = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** this.attempt);
    this.attempt++;
    this.retryTimer = setTimeout(() => void this.probeAndOpen(), wait);
  }

  private async probeAndOpen(): Promise<void> {
    try {
      await api.session();
    } catch (err) {
      if (isApiError(err, 401)) return redirectToLogin();
      // Unreachable or failing: try the stream anyway; its failure schedules the next attempt.
    }
    this.open();
  }

  private enqueue(e: LiveEvent): void {
    liveLog.push(e);
    this.queue.push(e);
    this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  private flush(): void {
    this.flushTimer = undefined;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const qc = this.qc;
    qc.setQueryData<LocksState>(queryKeys.locks(), (old) => applyLiveEvents(old, batch));

    let refetchLocks = false;
    let auditChanged = false;
    let reconnected = false;
    let jobsChanged = false;
    let locksChanged = false;
    for (const e of batch) {
      if (e.kind === 'snapshot') {
        qc.setQueryData<BackendStatus[]>(queryKeys.backends(), e.snapshot.backends);
        if (connection.snapshots > 1) reconnected = true;
      } else if (e.kind === 'backend') {
        const wasDown = qc.getQueryData<BackendStatus[]>(queryKeys.backends())?.find((b) => b.id === e.status.id)?.status === 'down';
        qc.setQueryData<BackendStatus[]>(queryKeys.backends(), (old) => (old ? applyBackendStatus(old, e.status) : old));
        if (e.status.status === 'up' && wasDown) refetchLocks = true;
      } else {
        const ev = e.event;
        if (ev.type === 'forced') auditChanged = true;
        if (ev.type !== 'changed') locksChanged = true;
        if (ev.key.startsWith('job/')) jobsChanged = true;
        qc.setQueryData<LockDetailData>(queryKeys.lock(ev.backend, ev.key), (old) => {
          if (!old) return old;
          // A renewal (a `changed` with id 0, lib/console/events.ts isRenewal) updates the lock
          // but is not history: the stored history would not show it after a reload either.
          const seen = (ev.id === 0 && ev.type === 'changed') || (ev.id !== 0 && old.history.some((h) => h.id === ev.id));
          return {
            now: old.now,
            // `lost` is about a holder, not the lock: the detail's lock stays as it is.
            lock: ev.type === 'lost' || ev.type === 'attempt' ? old.lock : REMOVING.has(ev.type) ? null : (ev.lock ?? old.lock),
            history: seen ? old.history : [ev, ...old.history],
          };
        });
      }
    }
    setConnection({ lastSyncAt: Date.now() });
    if (refetchLocks) void qc.invalidateQueries({ queryKey: queryKeys.locks() });
    if (auditChanged) void qc.invalidateQueries({ queryKey: queryKeys.auditRoot() });
    // What happened while the stream was down is in the snapshot, but not in the histories.
    if (reconnected) void qc.invalidateQueries({ queryKey: queryKeys.lockRoot() });
    if (jobsChanged || reconnected) this.invalidateThrottled('scheduler', SCHEDULER_REFRESH_MS);
    if (locksChanged || reconnected) this.invalidateThrottled('contention', CONTENTION_REFRESH_MS);
  }

  /** Invalidates the scheduler or contention queries at most once per `everyMs` (trailing call kept). */
  private invalidateThrottled(what: 'scheduler' | 'contention', everyMs: number): void {
    if (this.pendingInvalidate[what]) return;
    const run = () => {
      this.pendingInvalidate[what] = undefined;
      this.lastInvalidated[what] = Date.now();
      void this.qc.invalidateQueries({ queryKey: what === 'scheduler' ? queryKeys.scheduler() : queryKeys.contentionRoot() });
    };
    const wait = this.lastInvalidated[what] + everyMs - Date.now();
    if (wait <= 0) run();
    else this.pendingInvalidate[what] = setTimeout(run, wait);
  }
}

/** Opens the app's event stream for as long as the calling component is mounted (once, in the shell). */
export function useLiveEvents(): void {
  const qc = useQueryClient();
  useEffect(() => {
    const c = new LiveConnection(qc);
    c.start();
    return () => c.stop();
  }, [qc]);
}
