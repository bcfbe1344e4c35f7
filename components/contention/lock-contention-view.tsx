'use client';

import Link from 'next/link';
import { useSearchParams } from 'next/navigation';
import { useQuery } from '@tanstack/react-query';

import { KeyText } from '@/components/locks/key-text';
import { Callout } from '@/components/ui/callout';
import { Card, CardContent } from '@/components/ui/card';
import { EmptyState } from '@/components/ui/empty-state';
import { Skeleton } from '@/components/ui/skeleton';
import { formatCount, formatMs, plural } from '@/lib/client/format';
import { lockHref } from '@/lib/client/locks';
import { contentionLockQuery } from '@/lib/client/queries';
import type { LockContention, WindowName } from '@/lib/client/types';
import { cn } from '@/lib/utils';

import { AcquisitionsChart, ChartFigure, HistogramChart, percentilesText, WaitersChart } from './charts';
import { useWindowParam, WINDOW_LABELS, WindowPicker } from './window-picker';

/** `/contention/lock?backend=&key=&window=`: one lock's contention, charted. */
export function LockContentionView() {
  const params = useSearchParams();
  const backend = params.get('backend') ?? '';
  const key = params.get('key') ?? '';
  const [window, setWindow] = useWindowParam();
  const q = useQuery({ ...contentionLockQuery(backend, key, window), enabled: backend !== '' && key !== '' });
  const d = q.data;

  return (
    <div className="space-y-6">
      <nav aria-label="Breadcrumb" className="text-sm text-muted-foreground">
        <Link href={window === '1h' ? '/contention' : `/contention?window=${window}`} className="hover:text-foreground hover:underline">
          Contention
        </Link>
        <span aria-hidden="true"> › </span>
        <span>{backend}</span>
      </nav>
      <div className="flex flex-wrap items-end justify-between gap-3">
        <div className="min-w-0">
          <h1 className="text-2xl font-semibold tracking-tight">
            <KeyText value={key || '(no key)'} />
          </h1>
          <p className="text-sm text-muted-foreground">
            Contention over the last {WINDOW_LABELS[window]} on backend {backend}.{' '}
            <Link href={lockHref(backend, key)} className="text-accent hover:underline">
              Current holder and history ›
            </Link>
          </p>
        </div>
        <WindowPicker value={window} onChange={setWindow} />
      </div>

      {(!backend || !key) && (
        <Callout tone="warning" title="Which lock?">
          Open this page from the contention ranking: it needs a backend and a key.
        </Callout>
      )}
      {q.isError && (
        <Callout tone="danger" role="alert" title="The statistics could not be loaded">
          {q.error.message}
        </Callout>
      )}
      {!d && backend && key && !q.isError && <LoadingTiles />}
      {d && <Body d={d} window={window} />}
    </div>
  );
}

function LoadingTiles() {
  return (
    <div className="grid grid-cols-2 gap-3 lg:grid-cols-4" role="status" aria-label="Loading">
      {[0, 1, 2, 3].map((i) => (
        <Skeleton key={i} className="h-20" />
      ))}
    </div>
  );
}

function Body({ d, window }: { d: LockContention; window: WindowName }) {
  const quiet = d.acquisitions === 0 && d.waiters.max === 0 && d.released + d.forced + d.expired + d.attempts + d.lost === 0;
  if (quiet) {
    return (
      <Card>
        <CardContent>
          <EmptyState title="No activity on this lock in this window">
            Nothing acquired, released or waited for <span className="font-mono">{d.key}</span> in the last {WINDOW_LABELS[window]}. Try a longer window.
          </EmptyState>
        </CardContent>
      </Card>
    );
  }
  const peak = d.series.reduce((m, p) => Math.max(m, p.perMinute), 0);
  return (
    <>
      <div className="grid grid-cols-2 gap-3 lg:grid-cols-4" data-testid="lock-stats">
        <Tile label="Acquisitions" value={formatCount(d.acquisitions)} hint={`${d.acquisitionsPerMinute.toFixed(2)} / min on average`} testId="stat-acquisitions" />
        <Tile
          label="Had to wait"
          value={formatCount(d.contendedAcquisitions)}
          hint={d.wait.count < d.acquisitions ? `${formatCount(d.wait.count)} reported their wait` : `of ${formatCount(d.acquisitions)}`}
          tone={d.contendedAcquisitions > 0 ? 'warning' : undefined}
        />
        <Tile label="Wait p95" value={formatMs(d.wait.p95)} hint={`p50 ${formatMs(d.wait.p50)} · max ${formatMs(d.wait.max)}`} tone={(d.wait.p95 ?? 0) > 0 ? 'warning' : undefined} />
        <Tile label="Hold p95" value={formatMs(d.hold.p95)} hint={`p50 ${formatMs(d.hold.p50)} · max ${formatMs(d.hold.max)}`} />
        <Tile label="Waiters" value={`${formatCount(d.waiters.now)} now`} hint={`max ${formatCount(d.waiters.max)} · mean ${d.waiters.avg.toFixed(2)}`} tone={d.waiters.max > 0 ? 'warning' : undefined} />
        <Tile
          label="Forced / expired"
          value={`${formatCount(d.forced)} / ${formatCount(d.expired)}`}
          hint={`${plural(d.released, 'normal release')}`}
          tone={d.forced + d.expired > 0 ? 'danger' : undefined}
          testId="stat-endings"
        />
        <Tile
          label="Attempts refused / queued"
          value={formatCount(d.attempts)}
          hint="tries by lockdeck clients that found it held"
          tone={d.attempts > 0 ? 'warning' : undefined}
          testId="stat-attempts"
        />
        <Tile
          label="Holders lost it"
          value={formatCount(d.lost)}
          hint="lockdeck holders told their lock was gone"
          tone={d.lost > 0 ? 'danger' : undefined}
          testId="stat-lost"
        />
      </div>

      <div className="grid gap-4 lg:grid-cols-2">
        <ChartFigure
          title="Acquisitions per minute"
          testId="chart-acquisitions"
          caption={`${plural(d.acquisitions, 'acquisition')} in the last ${WINDOW_LABELS[window]} (${d.acquisitionsPerMinute.toFixed(2)} per minute on average, peak ${peak.toFixed(1)} per minute in a ${d.bucketMs / 1000} s bucket); ${formatCount(d.forced)} forced releases, ${formatCount(d.expired)} expiries.`}
        >
          <AcquisitionsChart series={d.series} />
        </ChartFigure>
        <ChartFigure
          title="Waiters over time"
          testId="chart-waiters"
          caption={
            d.waiters.max === 0
              ? 'No client queued for this lock in this window.'
              : `Up to ${plural(d.waiters.max, 'waiter')} (dashed: most per bucket; area: time-weighted mean, ${d.waiters.avg.toFixed(2)} over the window); ${formatCount(d.waiters.now)} waiting now.`
          }
        >
          <WaitersChart series={d.series} />
        </ChartFigure>
        <ChartFigure
          title="Wait before acquiring"
          testId="chart-wait"
          caption={
            d.wait.count === 0
              ? 'No acquisition reported a wait (lockdeck clients report theirs; other clients’ waits cannot be observed).'
              : `${plural(d.wait.count, 'reported wait')}: ${percentilesText(d.wait)}; ${formatCount(d.contendedAcquisitions)} waited at all.`
          }
        >
          {d.wait.count === 0 ? <NoData /> : <HistogramChart dist={d.wait} color="var(--chart-2)" />}
        </ChartFigure>
        <ChartFigure
          title="Hold time"
          testId="chart-hold"
          caption={d.hold.count === 0 ? 'No hold ended with a known length in this window.' : `${plural(d.hold.count, 'hold')} ended: ${percentilesText(d.hold)}.`}
        >
          {d.hold.count === 0 ? <NoData /> : <HistogramChart dist={d.hold} color="var(--chart-4)" />}
        </ChartFigure>
      </div>
      {d.observedByReconcile > 0 && (
        <p className="text-xs text-muted-foreground">
          {plural(d.observedByReconcile, 'change')} of this lock were found by the console&apos;s periodic re-listing (clients that publish no events): their waits are not known,
          and short holds between two listings are not seen.
        </p>
      )}
    </>
  );
}

function NoData() {
  return <div className="flex h-full items-center justify-center rounded border border-dashed border-border text-xs text-muted-foreground">no data</div>;
}

function Tile({ label, value, hint, tone, testId }: { label: string; value: string; hint?: string; tone?: 'warning' | 'danger'; testId?: string }) {
  return (
    <div className="rounded-lg border border-border bg-card px-4 py-3 shadow-xs" data-testid={testId}>
      <p className="text-xs font-medium text-muted-foreground">{label}</p>
      <p
        className={cn(
          'mt-1 text-xl font-semibold tabular-nums',
          tone === 'warning' && 'text-amber-700 dark:text-amber-300',
          tone === 'danger' && 'text-red-700 dark:text-red-300',
        )}
      >
        {value}
      </p>
      {hint && <p className="truncate text-xs text-muted-foreground">{hint}</p>}
    </div>
  );
}
