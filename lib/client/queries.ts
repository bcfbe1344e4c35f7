/**
 * Query keys and options for every API read, in one place. Keys are hierarchical
 * (`['lockdeck', 'lock', backend, key]`) so one prefix invalidates a whole family.
 *
 * Freshness comes from the event stream (lib/client/events.ts writes the cache directly); the
 * refetch intervals here are only a slow safety net (≥ 30 s), for a stream that silently missed
 * something, and for what the stream does not carry (backend latency, the audit log).
 */
import { infiniteQueryOptions, queryOptions } from '@tanstack/react-query';

import { api, isApiError, type AuditFilter } from './api';
import { observeServerTime } from './clock';
import { liveLog } from './live-log';
import { applyLiveEvents, stateFromList, type LocksState } from './live-state';
import type { HistoryEvent, LockInfo, WindowName } from './types';

export const queryKeys = {
  all: ['lockdeck'] as const,
  session: () => [...queryKeys.all, 'session'] as const,
  backends: () => [...queryKeys.all, 'backends'] as const,
  locks: () => [...queryKeys.all, 'locks'] as const,
  lockRoot: () => [...queryKeys.all, 'lock'] as const,
  lock: (backend: string, key: string) => [...queryKeys.all, 'lock', backend, key] as const,
  auditRoot: () => [...queryKeys.all, 'audit'] as const,
  audit: (filter: AuditFilter) => [...queryKeys.all, 'audit', filter] as const,
  contentionRoot: () => [...queryKeys.all, 'contention'] as const,
  contention: (window: WindowName) => [...queryKeys.all, 'contention', 'ranking', window] as const,
  contentionLock: (backend: string, key: string, window: WindowName) => [...queryKeys.all, 'contention', 'lock', backend, key, window] as const,
  scheduler: () => [...queryKeys.all, 'scheduler'] as const,
};

export const sessionQuery = () =>
  queryOptions({
    queryKey: queryKeys.session(),
    queryFn: ({ signal }) => api.session(signal),
    staleTime: 5 * 60_000,
  });

export const backendsQuery = () =>
  queryOptions({
    queryKey: queryKeys.backends(),
    queryFn: async ({ signal }) => (await api.backends(signal)).backends,
    // Up/down transitions arrive on the stream; this refresh is for latency figures.
    refetchInterval: 30_000,
    staleTime: 10_000,
  });

/**
 * Every held lock, as a Map (see live-state.ts). The listing replays the stream events that
 * arrived while it was in flight (live-log.ts), so it can never undo a fresher event.
 */
export const locksQuery = () =>
  queryOptions({
    queryKey: queryKeys.locks(),
    queryFn: async ({ signal }): Promise<LocksState> => {
      const mark = liveLog.mark();
      try {
        const list = await api.locks(signal);
        const receivedAt = Date.now();
        observeServerTime(list.now, receivedAt);
        return applyLiveEvents(stateFromList(list, receivedAt), liveLog.since(mark))!;
      } finally {
        liveLog.release(mark);
      }
    },
    // The cache holds Maps that the stream replaces wholesale; deep comparison would only cost.
    structuralSharing: false,
    staleTime: 30_000,
    refetchInterval: 60_000,
    refetchOnWindowFocus: false,
  });

export interface LockDetailData {
  now: number;
  /** Null: nothing holds the key now (the history still tells what happened). */
  lock: LockInfo | null;
  /** Newest first. */
  history: HistoryEvent[];
}

/** One lock and its history; a key nobody holds answers with its history alone. */
export const lockDetailQuery = (backend: string, key: string) =>
  queryOptions({
    queryKey: queryKeys.lock(backend, key),
    queryFn: async ({ signal }): Promise<LockDetailData> => {
      try {
        const d = await api.detail(backend, key, signal);
        observeServerTime(d.now);
        return { now: d.now, lock: d.lock, history: d.history };
      } catch (err) {
        if (!isApiError(err, 404) || err.code !== 'not_found') throw err;
        const h = await api.history(backend, key, signal);
        observeServerTime(h.now);
        return { now: h.now, lock: null, history: h.history };
      }
    },
    staleTime: 30_000,
    refetchInterval: 60_000,
    retry: (count, err) => !isApiError(err) || (err.status >= 500 && count < 2),
  });

export const AUDIT_PAGE = 100;

/** The audit log, newest first, a page of {@link AUDIT_PAGE} at a time (paging back by id). */
export const auditQuery = (filter: AuditFilter) =>
  infiniteQueryOptions({
    queryKey: queryKeys.audit(filter),
    queryFn: ({ signal, pageParam }) => api.audit({ ...filter, before: pageParam, limit: AUDIT_PAGE }, signal).then((r) => r.entries),
    initialPageParam: undefined as number | undefined,
    getNextPageParam: (last) => (last.length === AUDIT_PAGE ? last[last.length - 1]!.id : undefined),
    staleTime: 10_000,
    refetchInterval: 60_000,
  });

/**
 * Contention statistics are aggregates over minutes to hours: the event stream invalidates them
 * (throttled, events.ts) and a slow refresh covers the rest.
 */
export const contentionQuery = (window: WindowName) =>
  queryOptions({
    queryKey: queryKeys.contention(window),
    queryFn: async ({ signal }) => {
      const r = await api.contention(window, signal);
      observeServerTime(r.now);
      return r;
    },
    staleTime: 5_000,
    refetchInterval: 15_000,
    placeholderData: (prev) => prev,
  });

export const contentionLockQuery = (backend: string, key: string, window: WindowName) =>
  queryOptions({
    queryKey: queryKeys.contentionLock(backend, key, window),
    queryFn: async ({ signal }) => {
      const r = await api.contentionLock(backend, key, window, signal);
      observeServerTime(r.now);
      return r;
    },
    staleTime: 5_000,
    refetchInterval: 15_000,
    // Switching the window keeps this lock's charts up until the new ones arrive.
    placeholderData: (prev) => (prev && prev.backend === backend && prev.key === key ? prev : undefined),
    retry: (count, err) => !isApiError(err) || (err.status >= 500 && count < 2),
  });

/** Jobs and occurrences: invalidated by `job/…` lock events (throttled), else every 10 s. */
export const schedulerQuery = () =>
  queryOptions({
    queryKey: queryKeys.scheduler(),
    queryFn: async ({ signal }) => {
      const r = await api.scheduler(signal);
      observeServerTime(r.now);
      return r;
    },
    staleTime: 2_000,
    refetchInterval: 10_000,
  });
