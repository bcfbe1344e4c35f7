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
import type { HistoryEvent, LockInfo } from './types';

export const queryKeys = {
  all: ['lockdeck'] as const,
  session: () => [...queryKeys.all, 'session'] as const,
  backends: () => [...queryKeys.all, 'backends'] as const,
  locks: () => [...queryKeys.all, 'locks'] as const,
  lockRoot: () => [...queryKeys.all, 'lock'] as const,
  lock: (backend: string, key: string) => [...queryKeys.all, 'lock', backend, key] as const,
  auditRoot: () => [...queryKeys.all, 'audit'] as const,
  audit: (filter: AuditFilter) => [...queryKeys.all, 'audit', filter] as const,
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
