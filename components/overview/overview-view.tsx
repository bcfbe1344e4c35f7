'use client';

import { useMemo, type ReactNode } from 'react';
import Link from 'next/link';
import { useQuery, useQueryClient } from '@tanstack/react-query';

import { BackendsTable } from '@/components/backends/backends-table';
import { HealthBadge } from '@/components/locks/health-badge';
import { liveLocksOptions } from '@/components/locks/locks-data';
import { Elapsed } from '@/components/locks/time-cells';
import { Callout } from '@/components/ui/callout';
import { Card, CardContent, CardHeader, CardTitle } from '@/components/ui/card';
import { Skeleton } from '@/components/ui/skeleton';
import { useServerNow } from '@/lib/client/clock';
import { formatCount, plural } from '@/lib/client/format';
import { lockHref, summarize, type Summary } from '@/lib/client/locks';
import { useConnection } from '@/lib/client/events';
import { backendsQuery } from '@/lib/client/queries';
import type { LockInfo } from '@/lib/client/types';
import { cn } from '@/lib/utils';

/**
 * `/`: the state of every backend and what needs a person's attention, each item a link to the
 * locks behind it. Counts come from the live cache and update as events arrive.
 */
export function OverviewView() {
  const conn = useConnection();
  // The same cache and listing as the locks page (per backend, last good rows kept for a backend
  // that is down); no periodic re-listing while the stream keeps the cache current.
  const locksQ = useQuery({
    ...liveLocksOptions(useQueryClient()),
    refetchInterval: conn.state === 'live' ? false : 60_000,
    refetchOnMount: conn.state !== 'live',
  });
  const backendsQ = useQuery(backendsQuery());
  const now = useServerNow();
  // Re-summarised when the data changes and at most every 5 s for the time-based counts.
  const bucket = Math.floor(now / 5000);
  const state = locksQ.data;
  const summary = useMemo(() => (state ? summarize(state.locks.values(), bucket * 5000 || Date.now()) : null), [state, bucket]);
  const backends = backendsQ.data ?? [];
  const down = backends.filter((b) => b.status === 'down' && b.checkedAt !== null);

  return (
    <div className="space-y-6">
      <div className="flex flex-wrap items-end justify-between gap-3">
        <div>
          <h1 className="text-2xl font-semibold tracking-tight">Overview</h1>
          <p className="text-sm text-muted-foreground">Every backend this console watches, and what needs attention now.</p>
        </div>
      </div>

      {locksQ.isError && !state && (
        <Callout tone="danger" role="alert" title="The locks could not be loaded">
          {locksQ.error.message}
        </Callout>
      )}

      <div className="grid grid-cols-2 gap-3 lg:grid-cols-4">
        <Stat
          label="Held locks"
          href="/locks"
          value={summary ? formatCount(summary.total) : null}
          hint={summary && backendsQ.data ? `across ${plural(backends.length, 'backend')}` : undefined}
          testId="stat-held"
        />
        <Stat
          label="Waiting clients"
          href="/locks?sort=waiters"
          value={summary ? formatCount(summary.waiters) : null}
          hint={summary ? `on ${plural(summary.contended, 'lock')}` : undefined}
          tone={summary && summary.waiters > 0 ? 'warning' : undefined}
          testId="stat-waiters"
        />
        <Stat
          label="Stuck (expired or orphaned)"
          href="/locks?sort=attention"
          value={summary ? formatCount(summary.byHealth.expired + summary.byHealth.orphaned) : null}
          tone={summary && summary.byHealth.expired + summary.byHealth.orphaned > 0 ? 'danger' : undefined}
          testId="stat-stuck"
        />
        <Stat
          label="Backends up"
          href="#backends"
          value={backendsQ.data ? `${backends.length - down.length} / ${backends.length}` : null}
          tone={down.length > 0 ? 'danger' : undefined}
          hint={down.length > 0 ? `${down.map((b) => b.id).join(', ')} down` : undefined}
          testId="stat-backends"
        />
      </div>

      {/* Two columns that each stack: what needs attention on the left, the stores on the right. */}
      <div className="grid items-start gap-4 xl:grid-cols-[minmax(0,5fr)_minmax(0,6fr)]">
        <div className="space-y-4">
          <Card>
            <CardHeader>
              <CardTitle>Needs attention</CardTitle>
            </CardHeader>
            <CardContent flush>{summary ? <Attention summary={summary} downCount={down.length} /> : <ListSkeleton />}</CardContent>
          </Card>
          <TopList
            title="Stuck locks"
            empty="No expired or orphaned locks."
            locks={summary?.stuck}
            detail={(l) => <Elapsed since={l.acquiredAt} title="held for" />}
            more="/locks?sort=attention"
          />
        </div>
        <div className="space-y-4">
          <Card id="backends" className="scroll-mt-20">
            <CardHeader>
              <CardTitle>Backends</CardTitle>
            </CardHeader>
            <CardContent flush>{backendsQ.isPending ? <ListSkeleton /> : <BackendsTable backends={backends} counts={summary?.byBackend ?? null} />}</CardContent>
          </Card>
          <TopList
            title="Most contended"
            empty="No lock has waiters."
            locks={summary?.mostContended}
            detail={(l) => <span className="font-medium text-amber-700 dark:text-amber-300">{plural(l.waiters.length, 'waiter')}</span>}
            more="/locks?sort=waiters"
          />
          <TopList
            title="Held longest (over 30 min)"
            empty="Nothing has been held for more than 30 minutes."
            locks={summary?.longestHeld}
            detail={(l) => <Elapsed since={l.acquiredAt} />}
            more="/locks?sort=age"
          />
        </div>
      </div>
    </div>
  );
}

function Stat({
  label,
  value,
  href,
  hint,
  tone,
  testId,
}: {
  label: string;
  value: string | null;
  href: string;
  hint?: string;
  tone?: 'warning' | 'danger';
  testId: string;
}) {
  return (
    <Link href={href} className="group rounded-lg border border-border bg-card px-4 py-3 shadow-xs hover:border-border-strong" data-testid={testId}>
      <p className="text-xs font-medium text-muted-foreground group-hover:text-foreground">{label}</p>
      <div
        aria-live="polite"
        aria-atomic="true"
        className={cn(
          'mt-1 text-2xl font-semibold tabular-nums',
          tone === 'warning' && 'text-amber-700 dark:text-amber-300',
          tone === 'danger' && 'text-red-700 dark:text-red-300',
        )}
      >
        {value ?? <Skeleton className="h-8 w-16" />}
      </div>
      {hint && <p className="truncate text-xs text-muted-foreground">{hint}</p>}
    </Link>
  );
}

function Attention({ summary, downCount }: { summary: Summary; downCount: number }) {
  const items: Array<{ label: string; count: number; href: string; tone: 'danger' | 'warning' | 'orphan'; help: string }> = [
    { label: 'Expired but still present', count: summary.byHealth.expired, href: '/locks?health=expired', tone: 'danger', help: 'The lease ran out and nobody removed the lock.' },
    { label: 'Orphaned', count: summary.byHealth.orphaned, href: '/locks?health=orphaned', tone: 'orphan', help: 'No expiry, or the owner is gone: nothing frees it by itself.' },
    { label: 'Backends down', count: downCount, href: '#backends', tone: 'danger', help: 'Their locks cannot be seen or released.' },
    { label: 'Expiring without renewal', count: summary.byHealth.expiring, href: '/locks?health=expiring', tone: 'warning', help: 'Under a fifth of the lease left.' },
    { label: 'Held longer than 30 min', count: summary.longHeld, href: '/locks?sort=age', tone: 'warning', help: 'Long jobs, or holders that hang while renewing.' },
    { label: 'Contended (have waiters)', count: summary.contended, href: '/locks?sort=waiters', tone: 'warning', help: 'Someone is blocked behind each of these.' },
  ];
  const active = items.filter((i) => i.count > 0);
  return (
    <ul className="divide-y divide-border" data-testid="attention">
      {active.length === 0 && (
        <li className="flex items-center gap-2 px-5 py-3 text-sm">
          <span aria-hidden="true" className="size-2 rounded-full bg-emerald-500" />
          Nothing needs attention: no stuck locks, no waiters, every backend up.
        </li>
      )}
      {items.map((i) => (
        <li key={i.label}>
          <Link href={i.href} className={cn('flex items-center gap-3 px-5 py-2.5 text-sm hover:bg-row-hover', i.count === 0 && 'text-muted-foreground')}>
            <span
              aria-hidden="true"
              className={cn(
                'size-2 shrink-0 rounded-full',
                i.count === 0 ? 'bg-zinc-300 dark:bg-zinc-700' : i.tone === 'danger' ? 'bg-red-500' : i.tone === 'orphan' ? 'bg-fuchsia-500' : 'bg-amber-500',
              )}
            />
            <span className="min-w-0 flex-1">
              <span className={cn(i.count > 0 && 'font-medium')}>{i.label}</span>
              <span className="block truncate text-xs text-muted-foreground">{i.help}</span>
            </span>
            <span className={cn('text-base tabular-nums', i.count > 0 && 'font-semibold')}>{formatCount(i.count)}</span>
            <span aria-hidden="true" className="text-muted-foreground">
              ›
            </span>
          </Link>
        </li>
      ))}
    </ul>
  );
}

function TopList({ title, empty, locks, detail, more }: { title: string; empty: string; locks: LockInfo[] | undefined; detail: (l: LockInfo) => ReactNode; more: string }) {
  return (
    <Card>
      <CardHeader>
        <CardTitle>{title}</CardTitle>
        <Link href={more} className="text-xs text-accent hover:underline">
          All in the list ›
        </Link>
      </CardHeader>
      <CardContent flush>
        {!locks ? (
          <ListSkeleton />
        ) : locks.length === 0 ? (
          <p className="px-5 pb-3 text-sm text-muted-foreground">{empty}</p>
        ) : (
          <ul className="divide-y divide-border">
            {locks.map((l) => (
              <li key={`${l.backend}\n${l.key}`}>
                <Link href={lockHref(l.backend, l.key)} className="flex items-center gap-3 px-5 py-2 text-sm hover:bg-row-hover">
                  <HealthBadge lock={l} />
                  <span className="min-w-0 flex-1">
                    <span className="block truncate font-mono text-[13px] font-medium" title={l.key}>
                      {l.key}
                    </span>
                    <span className="block truncate text-xs text-muted-foreground">
                      {l.backend} · {l.owner ?? 'unknown owner'}
                    </span>
                  </span>
                  <span className="shrink-0 text-xs">{detail(l)}</span>
                </Link>
              </li>
            ))}
          </ul>
        )}
      </CardContent>
    </Card>
  );
}

function ListSkeleton() {
  return (
    <div className="space-y-2 px-5 pb-3" role="status" aria-label="Loading">
      <Skeleton className="h-4 w-3/4" />
      <Skeleton className="h-4 w-2/3" />
      <Skeleton className="h-4 w-1/2" />
    </div>
  );
}
