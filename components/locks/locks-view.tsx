'use client';

import { useCallback, useDeferredValue, useEffect, useMemo, useRef, useState } from 'react';
import { usePathname, useRouter, useSearchParams } from 'next/navigation';
import { useQuery } from '@tanstack/react-query';

import { SyncStatus } from '@/components/layout/sync-status';
import { Button } from '@/components/ui/button';
import { Callout } from '@/components/ui/callout';
import { EmptyState } from '@/components/ui/empty-state';
import { Input, Label } from '@/components/ui/input';
import { Select } from '@/components/ui/select';
import { Skeleton } from '@/components/ui/skeleton';
import { clockOffset, serverNow } from '@/lib/client/clock';
import { useConnection } from '@/lib/client/events';
import { formatCount, formatTime } from '@/lib/client/format';
import {
  DEFAULT_FILTERS,
  filterLocks,
  filtersToSearch,
  HEALTH_LABEL,
  HEALTHS,
  hasActiveFilters,
  parseFilters,
  sortLocks,
  SORTS,
  type LockFilters,
  type SortKey,
} from '@/lib/client/locks';
import { backendsQuery } from '@/lib/client/queries';
import { useCanRelease } from '@/lib/client/session';
import type { LockInfo } from '@/lib/client/types';

import { ForceReleaseDialog } from './force-release-dialog';
import { useLocksData } from './locks-data';
import { LockTable, ROW_HEIGHT } from './lock-table';

/**
 * The locks page: one table across backends, filtered and sorted by what the URL says (so a link
 * shows the same view), fed by the live cache. A down backend is said to be down above the table,
 * never shown as "no locks".
 */
export function LocksView() {
  const router = useRouter();
  const pathname = usePathname();
  const params = useSearchParams();
  const filters = useMemo(() => parseFilters(params), [params]);
  const setFilters = useCallback(
    (patch: Partial<LockFilters>) => {
      const next = { ...filters, ...patch };
      if (patch.sort && patch.dir === undefined) next.dir = SORTS[patch.sort].dir;
      router.replace(`${pathname}${filtersToSearch(next)}`, { scroll: false });
    },
    [filters, pathname, router],
  );

  const backendsQ = useQuery(backendsQuery());
  const canRelease = useCanRelease();
  const conn = useConnection();
  const [releasing, setReleasing] = useState<LockInfo | null>(null);
  // The whole list (the stream's snapshot) and, until it is there, the first screenful.
  const { locksQ, first } = useLocksData(conn, filters.sort, filters.dir);

  // Filtering 10,000 locks on every keystroke is cheap, but let typing win over re-rendering.
  const deferred = useDeferredValue(filters);
  const state = locksQ.data;
  const { rows, formats, present } = useMemo(() => {
    const source = state ? state.locks : first ? first.locks : null;
    if (!source) return { rows: [] as LockInfo[], formats: [] as string[], present: new Set<string>() };
    const now = serverNow();
    const f = new Set<string>();
    const b = new Set<string>();
    for (const l of source.values()) {
      f.add(l.format);
      b.add(l.backend);
    }
    // About 5 ms for 20,000 locks (Map copy in live-state.ts, filter and sort; measured in V8), once
    // per batch of stream events (at most one per 50 ms), never per scrolled frame.
    return { rows: sortLocks(filterLocks(source.values(), deferred, now), deferred.sort, deferred.dir, now), formats: [...f].sort(), present: b };
  }, [state, first, deferred]);

  const total = state?.locks.size ?? 0;
  const preview = !state && first !== null;
  // The first screenful is shown when it has rows to show (a filter that matches none of its 200
  // says nothing about the whole list) or when there are no locks at all.
  const showPreview = preview && (rows.length > 0 || (first.locks.length === 0 && !hasActiveFilters(filters)));
  const backendIds = backendsQ.data?.map((b) => b.id) ?? [...new Set(rows.map((r) => r.backend))];
  const filtered = hasActiveFilters(filters);

  const onSort = (sort: SortKey) => {
    if (sort === filters.sort) setFilters({ sort, dir: filters.dir === 'asc' ? 'desc' : 'asc' });
    else setFilters({ sort });
  };

  return (
    <div className="space-y-4">
      <div className="flex flex-wrap items-end justify-between gap-x-6 gap-y-2">
        <div>
          <h1 className="text-2xl font-semibold tracking-tight">Locks</h1>
          <p className="text-sm text-muted-foreground" aria-live="polite" aria-atomic="true" data-testid="lock-count">
            {preview ? (
              // Not "N held locks": that is said once the whole list is here.
              <>Loading {first.total !== undefined ? `${formatCount(first.total)} locks` : 'every lock'}; the first {formatCount(first.locks.length)} are shown…</>
            ) : state ? (
              filtered ? (
                <>
                  <span className="font-medium text-foreground">{formatCount(rows.length)}</span> of {formatCount(total)} held locks match
                </>
              ) : (
                <>
                  <span className="font-medium text-foreground">{formatCount(total)}</span> held {total === 1 ? 'lock' : 'locks'} across{' '}
                  {backendIds.length} {backendIds.length === 1 ? 'backend' : 'backends'}
                </>
              )
            ) : (
              'Loading locks…'
            )}
          </p>
        </div>
        <SyncStatus updatedAt={state?.updatedAt} />
      </div>

      <Filters filters={filters} setFilters={setFilters} backends={backendIds} formats={formats} />

      {conn.state === 'reconnecting' && state && (
        <Callout tone="warning" role="status" title="Live updates are paused">
          The connection to the console server dropped; reconnecting. This list is as it was at{' '}
          {formatTime(conn.droppedAt ?? state.updatedAt)} and may be out of date.
        </Callout>
      )}
      {state?.unavailable.map((u) => (
        <Callout
          key={u.backend}
          tone="danger"
          role="alert"
          title={present.has(u.backend) ? `Backend “${u.backend}” is down: its locks are shown as last seen` : `Backend “${u.backend}” is down: its locks are not shown`}
          data-testid="backend-down"
        >
          <span className="font-mono text-xs break-all">{u.error}</span>
        </Callout>
      ))}
      {state?.truncated && (
        <Callout tone="warning" title="Not every lock is listed">
          The console lists at most 10,000 locks per backend, and a backend holds more: the ones past that are not shown.
          Narrow the configured key patterns or roots of that backend to see them.
        </Callout>
      )}
      {clockOffset().measured && Math.abs(clockOffset().offsetMs) > 5000 && (
        <p className="text-xs text-muted-foreground">
          Your computer’s clock differs from the console server’s by {Math.round(clockOffset().offsetMs / 1000)} s; TTLs are shown by the
          server’s clock.
        </p>
      )}

      <div className="overflow-hidden rounded-lg border border-border bg-card shadow-xs">
        {!state && !showPreview && !locksQ.isError ? (
          <LoadingRows />
        ) : locksQ.isError && !state ? (
          <div className="p-4">
            <Callout tone="danger" role="alert" title="The locks could not be loaded">
              <p>{locksQ.error.message}</p>
              <Button size="sm" className="mt-2" onClick={() => void locksQ.refetch()}>
                Try again
              </Button>
            </Callout>
          </div>
        ) : rows.length === 0 ? (
          filtered ? (
            <EmptyState
              title="No locks match these filters"
              action={
                <Button size="sm" onClick={() => setFilters({ ...DEFAULT_FILTERS, sort: filters.sort, dir: filters.dir })}>
                  Clear filters
                </Button>
              }
            >
              {formatCount(total)} {total === 1 ? 'lock is' : 'locks are'} held in all.
            </EmptyState>
          ) : state && state.unavailable.length > 0 ? (
            <EmptyState title="No locks on the backends that answered">
              The backends marked down above could not be asked; they may hold locks.
            </EmptyState>
          ) : (
            <EmptyState title="No locks are held right now">A lock appears here the moment a client takes one.</EmptyState>
          )
        ) : (
          <LockTable
            locks={rows}
            sort={filters.sort}
            dir={filters.dir}
            onSort={onSort}
            canRelease={canRelease}
            onRelease={setReleasing}
            scrollResetKey={filtersToSearch(deferred)}
            className="max-h-[max(20rem,calc(100dvh-17.5rem))]"
          />
        )}
      </div>

      {releasing && <ForceReleaseDialog lock={releasing} onClose={() => setReleasing(null)} />}
    </div>
  );
}

function LoadingRows() {
  return (
    <div role="status" aria-label="Loading locks" className="divide-y divide-border">
      <div className="h-9 bg-muted/60" />
      {Array.from({ length: 8 }, (_, i) => (
        <div key={i} className="flex items-center gap-4 px-4" style={{ height: ROW_HEIGHT }}>
          <Skeleton className="h-4 w-16 rounded-full" />
          <Skeleton className="h-3.5 w-20" />
          <Skeleton className="h-3.5 w-72" />
          <Skeleton className="h-3.5 w-40" />
          <Skeleton className="ml-auto h-3.5 w-12" />
        </div>
      ))}
    </div>
  );
}

function Filters({
  filters,
  setFilters,
  backends,
  formats,
}: {
  filters: LockFilters;
  setFilters: (patch: Partial<LockFilters>) => void;
  backends: string[];
  formats: string[];
}) {
  // The text box is local while typing; the URL follows 200 ms after the last keystroke. The box
  // takes the URL's value only when the URL changed for another reason (back button, a link,
  // "Clear"), never when it is catching up with what was typed (that would eat keystrokes).
  const [q, setQ] = useState(filters.q);
  const pushed = useRef(filters.q);
  useEffect(() => {
    if (filters.q !== pushed.current) {
      pushed.current = filters.q;
      setQ(filters.q);
    }
  }, [filters.q]);
  useEffect(() => {
    if (q === pushed.current) return;
    const t = setTimeout(() => {
      pushed.current = q;
      setFilters({ q });
    }, 200);
    return () => clearTimeout(t);
  }, [q, setFilters]);

  const formatOptions = filters.format && !formats.includes(filters.format) ? [...formats, filters.format] : formats;
  const backendOptions = filters.backend && !backends.includes(filters.backend) ? [...backends, filters.backend] : backends;

  return (
    <form role="search" aria-label="Filter locks" className="flex flex-wrap items-end gap-3" onSubmit={(e) => e.preventDefault()}>
      <div className="w-full min-w-56 flex-1 space-y-1 sm:w-auto">
        <Label htmlFor="lock-q">Search key or owner</Label>
        <Input id="lock-q" type="search" value={q} onChange={(e) => setQ(e.target.value)} placeholder="e.g. billing:invoice or host-7" autoComplete="off" spellCheck={false} />
      </div>
      <div className="w-36 space-y-1">
        <Label htmlFor="lock-backend">Backend</Label>
        <Select id="lock-backend" value={filters.backend} onChange={(e) => setFilters({ backend: e.target.value })}>
          <option value="">All backends</option>
          {backendOptions.map((b) => (
            <option key={b} value={b}>
              {b}
            </option>
          ))}
        </Select>
      </div>
      <div className="w-40 space-y-1">
        <Label htmlFor="lock-format">Format</Label>
        <Select id="lock-format" value={filters.format} onChange={(e) => setFilters({ format: e.target.value })}>
          <option value="">All formats</option>
          {formatOptions.map((f) => (
            <option key={f} value={f}>
              {f}
            </option>
          ))}
        </Select>
      </div>
      <div className="w-36 space-y-1">
        <Label htmlFor="lock-health">Health</Label>
        <Select id="lock-health" value={filters.health} onChange={(e) => setFilters({ health: e.target.value as LockFilters['health'] })}>
          <option value="">Any health</option>
          {HEALTHS.map((h) => (
            <option key={h} value={h}>
              {HEALTH_LABEL[h]}
            </option>
          ))}
        </Select>
      </div>
      <div className="w-52 space-y-1">
        <Label htmlFor="lock-sort">Sort</Label>
        <Select id="lock-sort" value={filters.sort} onChange={(e) => setFilters({ sort: e.target.value as SortKey })}>
          {(Object.keys(SORTS) as SortKey[]).map((s) => (
            <option key={s} value={s}>
              {SORTS[s].label}
            </option>
          ))}
        </Select>
      </div>
      {hasActiveFilters(filters) && (
        <Button variant="ghost" onClick={() => setFilters({ q: '', backend: '', format: '', health: '' })}>
          Clear
        </Button>
      )}
    </form>
  );
}
