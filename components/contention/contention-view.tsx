'use client';

import { useState } from 'react';
import Link from 'next/link';
import { useQuery } from '@tanstack/react-query';

import { Button } from '@/components/ui/button';
import { KeyText } from '@/components/locks/key-text';
import { Callout } from '@/components/ui/callout';
import { Card, CardContent, CardHeader, CardTitle } from '@/components/ui/card';
import { EmptyState } from '@/components/ui/empty-state';
import { Skeleton } from '@/components/ui/skeleton';
import { Table, TBody, TD, TH, THead, TR } from '@/components/ui/table';
import { formatCount, formatMs, plural } from '@/lib/client/format';
import { contentionQuery } from '@/lib/client/queries';
import type { RankedLock, WindowName } from '@/lib/client/types';
import { cn } from '@/lib/utils';

import { useWindowParam, WINDOW_LABELS, WindowPicker } from './window-picker';

export function contentionHref(backend: string, key: string, window: WindowName): string {
  const p = new URLSearchParams({ backend, key });
  if (window !== '1h') p.set('window', window);
  return `/contention/lock?${p.toString()}`;
}

/**
 * `/contention`: the most contended locks over a window, ranked by contention time (how long
 * clients were blocked on each: the larger of the waits lockdeck clients reported and the
 * waiter·time of the visible queue; lib/console/contention.ts), each a link to its charts.
 */
export function ContentionView() {
  const [window, setWindow] = useWindowParam();
  const q = useQuery(contentionQuery(window));
  const data = q.data;
  const top = data?.locks[0]?.contentionMs ?? 0;
  const [showAll, setShowAll] = useState(false);
  // Contended first (the ranking's order); locks that were only busy are behind a toggle, so
  // per-occurrence job locks do not bury the queue that matters.
  const notable = data?.locks.filter(isNotable) ?? [];
  const shown = showAll ? (data?.locks ?? []) : notable;
  const hidden = (data?.locks.length ?? 0) - notable.length;

  return (
    <div className="space-y-6">
      <div className="flex flex-wrap items-end justify-between gap-3">
        <div>
          <h1 className="text-2xl font-semibold tracking-tight">Contention</h1>
          <p className="text-sm text-muted-foreground">
            Which locks clients queue for, over the last {WINDOW_LABELS[window]}: ranked by the time clients spent blocked on each.
          </p>
        </div>
        <WindowPicker value={window} onChange={setWindow} />
      </div>

      {q.isError && !data && (
        <Callout tone="danger" role="alert" title="The contention statistics could not be loaded">
          {q.error.message}
        </Callout>
      )}

      {data && (
        <div className="grid grid-cols-2 gap-3 lg:grid-cols-4" data-testid="contention-summary">
          <Summary label="Locks with activity" value={formatCount(data.total)} />
          <Summary label="Contended locks" value={formatCount(data.contended)} tone={data.contended > 0 ? 'warning' : undefined} />
          <Summary label="Acquisitions" value={formatCount(data.locks.reduce((n, l) => n + l.acquisitions, 0))} hint={data.total > data.locks.length ? `of the top ${data.locks.length}` : undefined} />
          <Summary
            label="Time blocked"
            value={formatMs(data.locks.reduce((n, l) => n + l.contentionMs, 0))}
            hint="summed over the listed locks"
            tone={data.contended > 0 ? 'warning' : undefined}
          />
        </div>
      )}

      <Card>
        <CardHeader>
          <CardTitle>Most contended locks</CardTitle>
          {data && <span className="text-xs text-muted-foreground">{plural(shown.length, 'lock')} shown</span>}
        </CardHeader>
        <CardContent flush>
          {!data ? (
            <div className="space-y-2 px-5 pb-4" role="status" aria-label="Loading">
              <Skeleton className="h-4 w-3/4" />
              <Skeleton className="h-4 w-2/3" />
              <Skeleton className="h-4 w-1/2" />
            </div>
          ) : data.locks.length === 0 ? (
            <EmptyState title="No lock activity in this window">
              Nothing was acquired, released or waited for in the last {WINDOW_LABELS[window]} on any backend this console watches. Statistics accumulate from the
              console server&apos;s start.
            </EmptyState>
          ) : (
            <>
              {notable.length === 0 && (
                <EmptyState title="No contention in this window" className="py-8">
                  Every acquisition in the last {WINDOW_LABELS[window]} got its lock without waiting, no client queued, and nothing was forced or expired.
                </EmptyState>
              )}
              {shown.length > 0 && <RankingTable locks={shown} top={top} window={window} />}
              {hidden > 0 && (
                <div className="flex items-center justify-between gap-3 border-t border-border px-5 pt-2.5 pb-1.5 text-xs text-muted-foreground">
                  <span>
                    {showAll ? `Including ${plural(hidden, 'lock')} that were busy without contention.` : `${plural(hidden, 'other lock')} had activity without contention.`}
                  </span>
                  <Button size="sm" variant="ghost" onClick={() => setShowAll((v) => !v)} aria-expanded={showAll}>
                    {showAll ? 'Show contended only' : 'Show all'}
                  </Button>
                </div>
              )}
            </>
          )}
        </CardContent>
      </Card>
      <p className="text-xs text-muted-foreground">
        Waits and hold times are reported by lockdeck clients through the backend; other clients are counted from what the console observes (their acquisitions,
        releases and queues, not their waits). Contention time is the larger of the reported waits and the queue length integrated over time.
      </p>
    </div>
  );
}

/** Worth a row by default: someone waited or queued, or a holder was forced out or expired. */
function isNotable(l: RankedLock): boolean {
  return l.contentionMs > 0 || l.maxWaiters > 0 || l.forced > 0 || l.expired > 0 || l.lost > 0;
}

function Summary({ label, value, hint, tone }: { label: string; value: string; hint?: string; tone?: 'warning' }) {
  return (
    <div className="rounded-lg border border-border bg-card px-4 py-3 shadow-xs">
      <p className="text-xs font-medium text-muted-foreground">{label}</p>
      <p className={cn('mt-1 text-2xl font-semibold tabular-nums', tone === 'warning' && 'text-amber-700 dark:text-amber-300')}>{value}</p>
      {hint && <p className="truncate text-xs text-muted-foreground">{hint}</p>}
    </div>
  );
}

function RankingTable({ locks, top, window }: { locks: RankedLock[]; top: number; window: WindowName }) {
  return (
    <Table aria-label="Most contended locks" data-testid="contention-ranking">
      <THead>
        <TR>
          <TH className="w-8 text-right">#</TH>
          <TH>Lock</TH>
          <TH>Time blocked</TH>
          <TH className="text-right">Acq./min</TH>
          <TH className="text-right">Waited</TH>
          <TH className="text-right">Wait p50 / p95</TH>
          <TH className="text-right">Hold p50</TH>
          <TH className="text-right">Max waiters</TH>
          <TH className="text-right">Forced</TH>
          <TH className="text-right">Expired</TH>
        </TR>
      </THead>
      <TBody>
        {locks.map((l, i) => (
          <TR key={`${l.backend}\n${l.key}`} className="hover:bg-row-hover" data-backend={l.backend} data-lock-key={l.key}>
            <TD className="text-right text-muted-foreground tabular-nums">{i + 1}</TD>
            <TD className="max-w-[28rem]">
              <Link href={contentionHref(l.backend, l.key, window)} className="font-medium text-accent hover:underline">
                <KeyText value={l.key} className="text-[13px]" />
              </Link>
              <span className="block text-xs text-muted-foreground">{l.backend}</span>
            </TD>
            <TD className="min-w-40">
              <div className="flex items-center gap-2">
                <span className="w-16 shrink-0 tabular-nums">{l.contentionMs > 0 ? formatMs(l.contentionMs) : '—'}</span>
                <span aria-hidden="true" className="h-1.5 w-full max-w-24 rounded-full bg-muted">
                  <span className="block h-full rounded-full bg-amber-500" style={{ width: `${top > 0 ? Math.max(2, (l.contentionMs / top) * 100) : 0}%` }} />
                </span>
              </div>
            </TD>
            <TD className="text-right tabular-nums">{l.acquisitionsPerMinute.toFixed(l.acquisitionsPerMinute < 10 ? 2 : 1)}</TD>
            <TD className="text-right tabular-nums" title={`${l.contendedAcquisitions} of ${l.acquisitions} acquisitions waited`}>
              {formatCount(l.contendedAcquisitions)} / {formatCount(l.acquisitions)}
            </TD>
            <TD className="text-right whitespace-nowrap tabular-nums">
              {formatMs(l.waitP50)} / {formatMs(l.waitP95)}
            </TD>
            <TD className="text-right tabular-nums">{formatMs(l.holdP50)}</TD>
            <TD className={cn('text-right tabular-nums', l.maxWaiters > 0 && 'font-medium text-amber-700 dark:text-amber-300')}>{formatCount(l.maxWaiters)}</TD>
            <TD className={cn('text-right tabular-nums', l.forced > 0 && 'font-medium text-red-700 dark:text-red-300')}>{formatCount(l.forced)}</TD>
            <TD className={cn('text-right tabular-nums', l.expired > 0 && 'font-medium text-red-700 dark:text-red-300')}>{formatCount(l.expired)}</TD>
          </TR>
        ))}
      </TBody>
    </Table>
  );
}
