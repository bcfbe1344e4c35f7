'use client';

/**
 * Where the locks page gets its rows, at 10,000 locks per backend (issue 10):
 *
 * 1. A first screenful: `GET /api/locks?limit=200&sort=…&source=live`, sorted the way the table
 *    shows it and answered from the event hub's current state (no store round trip, a few kB), so
 *    rows are on screen long before the whole list has been read and parsed.
 * 2. The whole list comes from the event stream's snapshot (lib/client/events.ts writes it into
 *    the locks cache), which every page load opens anyway: the page does not ask /api/locks for
 *    the same several MB a second time. Only when no snapshot has arrived after
 *    {@link FALLBACK_AFTER_MS}, or when the stream is not live, does the page list by itself.
 * 3. A listing made by the page (fallback, the slow refresh while the stream is down, a backend
 *    back up) asks each backend for its own part (10,000 each, as the snapshot does), and a
 *    backend it reports unavailable keeps its last good rows: a console that is stopping answers
 *    with every backend unavailable, and that must not empty the table (e2e/reconnect.spec.ts).
 */
import { useEffect, useState } from 'react';
import { queryOptions, useQuery, useQueryClient, type QueryClient } from '@tanstack/react-query';

import { apiFetch, isApiError, LIST_LIMIT } from '@/lib/client/api';
import { clockOffset, observeServerTime } from '@/lib/client/clock';
import type { Connection } from '@/lib/client/events';
import { liveLog } from '@/lib/client/live-log';
import { applyLiveEvents, stateFromList, type LocksState } from '@/lib/client/live-state';
import type { SortDir, SortKey } from '@/lib/client/locks';
import { locksQuery, queryKeys } from '@/lib/client/queries';
import type { BackendStatus, LockInfo, LockList } from '@/lib/client/types';

/** Rows in the first answer: a screenful and a few pages of scrolling, a few kB. */
export const FIRST_PAGE = 200;
/** How long the page waits for the stream's snapshot before it lists the locks itself. */
export const FALLBACK_AFTER_MS = 10_000;
/** The slow refresh while the stream is down (the stream keeps the list current while it is live). */
const POLL_MS = 60_000;

/** The first screenful, in the table's order (see the module comment). */
export const firstPageQuery = (sort: SortKey, dir: SortDir) =>
  queryOptions({
    queryKey: [...queryKeys.all, 'locks-first-page', sort, dir] as const,
    queryFn: async ({ signal }) => {
      const sp = new URLSearchParams({ limit: String(FIRST_PAGE), sort, dir, source: 'live' });
      const list = await apiFetch<LockList>(`/api/locks?${sp.toString()}`, { signal });
      // Only as a first estimate of the server clock: this answer lands while the page is still
      // starting (a busy main thread makes its `now` look late), and the stream's snapshot and
      // pings, which follow, measure it better (lib/client/clock.ts keeps the latest).
      if (!clockOffset().measured) observeServerTime(list.now);
      return list;
    },
    staleTime: Infinity,
    gcTime: 30_000,
    retry: false,
    refetchOnWindowFocus: false,
    refetchOnReconnect: false,
  });

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Every held lock, listed by the page itself: one request per backend (each up to the API's
 * limit, as the snapshot), or one merged request while the backends are not known yet. Stream
 * events that arrived meanwhile are replayed on top (live-log.ts), and a backend that answered
 * "unavailable" keeps the rows `prev` had for it.
 */
export async function fetchLocksState(qc: QueryClient, signal: AbortSignal): Promise<LocksState> {
  const mark = liveLog.mark();
  try {
    const ids = qc.getQueryData<BackendStatus[]>(queryKeys.backends())?.map((b) => b.id) ?? [];
    let list: LockList;
    if (ids.length === 0) {
      list = await apiFetch<LockList>(`/api/locks?limit=${LIST_LIMIT}`, { signal });
    } else {
      const parts = await Promise.all(
        ids.map((id) =>
          apiFetch<LockList>(`/api/locks?${new URLSearchParams({ backend: id, limit: String(LIST_LIMIT) }).toString()}`, { signal }).then(
            (l) => ({ id, l, err: null }),
            (err: unknown) => {
              // A backend that is down answers 503 (its own status); anything else (no server,
              // logged out) fails the whole listing, and the cache keeps what it had.
              if (!isApiError(err, 503)) throw err;
              return { id, l: null, err };
            },
          ),
        ),
      );
      list = { now: 0, locks: [], unavailable: [], truncated: false };
      for (const p of parts) {
        if (p.l) {
          list.now = Math.max(list.now, p.l.now);
          for (const lock of p.l.locks) list.locks.push(lock);
          list.truncated ||= p.l.truncated;
        } else {
          list.unavailable.push({ backend: p.id, error: errorText(p.err) });
        }
      }
      if (list.now === 0) list.now = Date.now();
    }
    const receivedAt = Date.now();
    observeServerTime(list.now, receivedAt);
    const next = keepLastGood(qc.getQueryData<LocksState>(queryKeys.locks()), stateFromList(list, receivedAt));
    return applyLiveEvents(next, liveLog.since(mark))!;
  } finally {
    liveLog.release(mark);
  }
}

/**
 * `next`, plus the rows `prev` had for every backend that `next` reports unavailable and shows
 * nothing of: a listing that could not read a backend says nothing about its locks. The page
 * marks such a backend "down, shown as last seen" (the stream's own `backend` down event still
 * removes the rows, lib/client/live-state.ts).
 */
export function keepLastGood(prev: LocksState | undefined, next: LocksState): LocksState {
  if (!prev || next.unavailable.length === 0) return next;
  const missing = new Set(next.unavailable.map((u) => u.backend));
  for (const l of next.locks.values()) missing.delete(l.backend);
  if (missing.size === 0) return next;
  let locks: Map<string, LockInfo> | null = null;
  for (const [id, l] of prev.locks) {
    if (!missing.has(l.backend)) continue;
    locks ??= new Map(next.locks);
    locks.set(id, l);
  }
  return locks ? { ...next, locks } : next;
}

/**
 * The locks cache's options on this page (locksQuery with the listing above). Every observer of
 * the cache on the page uses them: TanStack Query refetches a query (an invalidation) with the
 * options of the observer that set them last.
 */
export const liveLocksOptions = (qc: QueryClient) => ({
  ...locksQuery(),
  queryFn: ({ signal }: { signal: AbortSignal }) => fetchLocksState(qc, signal),
});

/**
 * The locks page's data: the whole list (from the stream's snapshot, else listed by the page)
 * and, until it is there, the first screenful.
 */
export function useLocksData(conn: Connection, sort: SortKey, dir: SortDir) {
  const qc = useQueryClient();
  // The cache as it is now (the stream may have filled it before this page mounted).
  const cached = qc.getQueryData<LocksState>(queryKeys.locks()) !== undefined;
  const [fallback, setFallback] = useState(false);
  useEffect(() => {
    if (cached || fallback) return;
    const t = setTimeout(() => setFallback(true), FALLBACK_AFTER_MS);
    return () => clearTimeout(t);
  }, [cached, fallback]);
  const locksQ = useQuery({
    ...liveLocksOptions(qc),
    // Not before the snapshot had its chance; once there is data it is fresh (the stream writes
    // it), so enabling the query fetches nothing until an invalidation or the slow refresh.
    enabled: cached || fallback,
    // The stream keeps the list current while it is live; a listing is not refetched on a
    // drop (a stopping server would answer it with every backend unavailable), only slowly
    // while the stream stays away.
    refetchInterval: conn.state === 'live' ? false : POLL_MS,
    // Coming back to the page while the stream is live: the cache is current, listing again
    // would only fetch the same several MB.
    refetchOnMount: conn.state !== 'live',
  });
  const firstQ = useQuery({ ...firstPageQuery(sort, dir), enabled: locksQ.data === undefined });
  return { locksQ, first: locksQ.data === undefined ? (firstQ.data ?? null) : null, firstQ };
}
