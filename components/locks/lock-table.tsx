'use client';

import { memo } from 'react';
import Link from 'next/link';

import { Button } from '@/components/ui/button';
import { useServerNow } from '@/lib/client/clock';
import { liveHealth, lockHref, shortFence, type SortDir, type SortKey } from '@/lib/client/locks';
import type { LockInfo } from '@/lib/client/types';
import { cn } from '@/lib/utils';

import { HealthLabel } from './health-badge';
import { LockWindow } from './lock-window';
import { ElapsedText, TtlText } from './time-cells';

export const ROW_HEIGHT = 36;

interface Column {
  id: string;
  label: string;
  width: string;
  align?: 'right';
  sort?: SortKey;
}

const COLUMNS: Column[] = [
  { id: 'health', label: 'Health', width: '120px' },
  { id: 'backend', label: 'Backend', width: 'minmax(84px, 110px)' },
  { id: 'key', label: 'Key', width: 'minmax(300px, 4fr)', sort: 'key' },
  { id: 'owner', label: 'Owner', width: 'minmax(170px, 2fr)' },
  { id: 'fence', label: 'Fence', width: '100px', align: 'right' },
  { id: 'format', label: 'Format', width: 'minmax(88px, 120px)' },
  { id: 'kind', label: 'Kind', width: '72px' },
  { id: 'held', label: 'Held for', width: '88px', align: 'right', sort: 'age' },
  { id: 'ttl', label: 'TTL', width: '112px', align: 'right', sort: 'ttl' },
  { id: 'waiters', label: 'Waiters', width: '80px', align: 'right', sort: 'waiters' },
];
const ACTION: Column = { id: 'action', label: 'Action', width: '84px' };

function template(canRelease: boolean): string {
  return [...COLUMNS, ...(canRelease ? [ACTION] : [])].map((c) => c.width).join(' ');
}

/**
 * Every lock that passes the filters, one windowed table (only the rows in view are in the DOM,
 * recycled as they scroll: lock-window.tsx, so 20,000 locks scroll like 50). Sortable columns are buttons in their headers with
 * `aria-sort`; the row's key links to the lock's page; operators get a release button per row.
 */
export function LockTable({
  locks,
  sort,
  dir,
  onSort,
  canRelease,
  onRelease,
  className,
  scrollResetKey,
}: {
  locks: LockInfo[];
  sort: SortKey;
  dir: SortDir;
  onSort: (sort: SortKey) => void;
  canRelease: boolean;
  onRelease: (lock: LockInfo) => void;
  className?: string;
  /** Changes with the filters and sort: the table then starts again from the top. */
  scrollResetKey?: string;
}) {
  // One ticker for the whole table: each visible row re-renders once a second with the new time,
  // and rows that scroll into view mount without subscriptions of their own.
  const now = useServerNow();
  const cols = canRelease ? [...COLUMNS, ACTION] : COLUMNS;
  const grid = template(canRelease);
  return (
    <LockWindow
      label="Held locks"
      rowCount={locks.length}
      rowHeight={ROW_HEIGHT}
      minWidth={canRelease ? 1300 : 1216}
      className={className}
      scrollResetKey={scrollResetKey}
      header={
        // Opaque, without a backdrop blur: a blurred backdrop is filtered again on every scrolled
        // frame; in Chromium without GPU rasterisation, 20,000 rows scrolled 12 a frame dropped
        // 16-17 % of frames without it against 21-41 % with it (same page, CSS override).
        <div role="row" aria-rowindex={1} className="grid border-b border-border bg-muted text-xs font-medium text-muted-foreground" style={{ gridTemplateColumns: grid }}>
          {cols.map((c) => {
            const active = c.sort !== undefined && c.sort === sort;
            return (
              <div
                key={c.id}
                role="columnheader"
                aria-sort={active ? (dir === 'asc' ? 'ascending' : 'descending') : c.sort ? 'none' : undefined}
                className={cn('flex h-9 items-center px-3 first:pl-4', c.align === 'right' && 'justify-end', c.id === 'action' && 'sr-only')}
              >
                {c.sort ? (
                  <button
                    type="button"
                    onClick={() => onSort(c.sort!)}
                    className={cn('-mx-1 inline-flex items-center gap-1 rounded px-1 hover:text-foreground', active && 'text-foreground')}
                    title={`Sort by ${c.label.toLowerCase()}`}
                  >
                    {c.label}
                    <SortIcon active={active} dir={dir} />
                  </button>
                ) : (
                  c.label
                )}
              </div>
            );
          })}
        </div>
      }
      renderRow={(i, slot) => (
        // Keyed by slot, not by lock: see lock-window.tsx (rows are recycled while scrolling).
        <LockRow key={slot} lock={locks[i]!} index={i} now={now} grid={grid} canRelease={canRelease} onRelease={onRelease} />
      )}
    />
  );
}

function SortIcon({ active, dir }: { active: boolean; dir: SortDir }) {
  return (
    <svg aria-hidden="true" viewBox="0 0 12 12" className={cn('size-3', active ? 'opacity-100' : 'opacity-30')} fill="currentColor">
      {!active || dir === 'asc' ? <path d="M6 2 9.5 6h-7z" /> : null}
      {!active || dir === 'desc' ? <path d="M6 10 2.5 6h7z" /> : null}
    </svg>
  );
}

const LockRow = memo(function LockRow({
  lock,
  index,
  now,
  grid,
  canRelease,
  onRelease,
}: {
  lock: LockInfo;
  index: number;
  now: number;
  grid: string;
  canRelease: boolean;
  onRelease: (lock: LockInfo) => void;
}) {
  const leaseMs = typeof lock.meta?.leaseMs === 'number' ? lock.meta.leaseMs : null;
  const warning = lock.format === 'unknown' && typeof lock.meta?.warning === 'string' ? lock.meta.warning : null;
  const waiting = lock.waiters.length;
  return (
    <div
      role="row"
      aria-rowindex={index + 2}
      data-lock-key={lock.key}
      data-backend={lock.backend}
      className="grid items-center border-b border-border text-[13px] hover:bg-row-hover"
      style={{ position: 'absolute', top: 0, left: 0, right: 0, height: ROW_HEIGHT, transform: `translateY(${index * ROW_HEIGHT}px)`, gridTemplateColumns: grid, contain: 'layout paint style' }}
    >
      <div role="cell" className="truncate px-3 pl-4">
        <HealthLabel health={liveHealth(lock, now)} />
      </div>
      <div role="cell" className="truncate px-3 text-muted-foreground" title={lock.backend}>
        {lock.backend}
      </div>
      <div role="cell" className="min-w-0 px-3">
        <Link href={lockHref(lock.backend, lock.key)} prefetch={false} className="block truncate rounded-sm font-mono font-medium text-foreground hover:text-accent hover:underline" title={lock.key}>
          {lock.key}
        </Link>
      </div>
      <div role="cell" className="truncate px-3 font-mono text-xs" title={warning ?? lock.owner ?? 'unknown owner'}>
        {warning ? (
          // A backend's own notice in place of a lock (a parent or prefix over its read bound, a
          // foreign-lock scan that stopped early): say it where the owner would be.
          <span className="font-sans text-amber-700 dark:text-amber-300">{warning}</span>
        ) : (
          (lock.owner ?? <span className="font-sans text-muted-foreground">unknown</span>)
        )}
        {lock.holders.length > 1 && <span className="font-sans text-muted-foreground"> +{lock.holders.length - 1}</span>}
      </div>
      <div role="cell" className="truncate px-3 text-right font-mono text-xs tabular-nums" title={lock.fence ?? 'no fencing token'}>
        {lock.fence !== null ? shortFence(lock.fence) : <span className="text-muted-foreground">—</span>}
      </div>
      <div role="cell" className="truncate px-3 text-xs text-muted-foreground" title={lock.format}>
        {lock.format}
      </div>
      <div role="cell" className="truncate px-3 text-xs text-muted-foreground">
        {lock.kind}
      </div>
      <div role="cell" className="px-3 text-right">
        <ElapsedText since={lock.acquiredAt} now={now} />
      </div>
      <div role="cell" className="truncate px-3 text-right" data-col="ttl">
        <TtlText expiresAt={lock.expiresAt} leaseMs={leaseMs} now={now} />
      </div>
      <div role="cell" className={cn('px-3 text-right tabular-nums', waiting > 0 ? 'font-semibold text-amber-700 dark:text-amber-300' : 'text-muted-foreground')}>
        {waiting}
      </div>
      {canRelease && (
        <div role="cell" className="px-2 text-right">
          <Button size="sm" variant="ghost" className="text-muted-foreground hover:bg-danger-soft hover:text-danger" onClick={() => onRelease(lock)} aria-label={`Force-release ${lock.key} on ${lock.backend}`}>
            Release…
          </Button>
        </div>
      )}
    </div>
  );
});
