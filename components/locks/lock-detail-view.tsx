'use client';

import { useState, type ReactNode } from 'react';
import Link from 'next/link';
import { useSearchParams } from 'next/navigation';
import { useQuery } from '@tanstack/react-query';

import { SyncStatus } from '@/components/layout/sync-status';
import { Badge } from '@/components/ui/badge';
import { Button } from '@/components/ui/button';
import { Callout } from '@/components/ui/callout';
import { Card, CardContent, CardHeader, CardTitle } from '@/components/ui/card';
import { EmptyState } from '@/components/ui/empty-state';
import { Skeleton } from '@/components/ui/skeleton';
import { formatAgo, formatDateTime, isHashKey, isoTime, shortHash } from '@/lib/client/format';
import { backendsQuery, lockDetailQuery } from '@/lib/client/queries';
import { useCanRelease, useSession } from '@/lib/client/session';
import type { HistoryEvent, LockInfo } from '@/lib/client/types';

import { ForceReleaseDialog } from './force-release-dialog';
import { KeyText } from './key-text';
import { HealthBadge } from './health-badge';
import { HistoryTable, EVENT_LABEL } from './history-table';
import { Elapsed, TtlCountdown } from './time-cells';

/** `/lock?backend=&key=`: one lock, its queue, its history and its raw facts. */
export function LockDetailView() {
  const params = useSearchParams();
  const backend = params.get('backend') ?? '';
  const key = params.get('key') ?? '';
  if (!backend || !key) {
    return (
      <EmptyState title="No lock chosen" action={<Link href="/locks" className="text-sm text-accent underline">Go to the lock list</Link>}>
        This page shows one lock: open it from the lock list.
      </EmptyState>
    );
  }
  return <LockDetail backend={backend} lockKey={key} />;
}

function LockDetail({ backend, lockKey }: { backend: string; lockKey: string }) {
  const q = useQuery(lockDetailQuery(backend, lockKey));
  const { data: backends } = useQuery(backendsQuery());
  const canRelease = useCanRelease();
  const session = useSession();
  const [releasing, setReleasing] = useState<LockInfo | null>(null);
  const status = backends?.find((b) => b.id === backend);
  const lock = q.data?.lock ?? null;
  const history = q.data?.history ?? [];

  return (
    <div className="space-y-5">
      <nav aria-label="Breadcrumb" className="text-sm text-muted-foreground">
        <ol className="flex flex-wrap items-center gap-1.5">
          <li>
            <Link href="/locks" className="hover:text-foreground hover:underline">
              Locks
            </Link>
          </li>
          <li aria-hidden="true">/</li>
          <li>
            <Link href={`/locks?backend=${encodeURIComponent(backend)}`} className="hover:text-foreground hover:underline">
              {backend}
            </Link>
          </li>
        </ol>
      </nav>

      <div className="flex flex-wrap items-start justify-between gap-4">
        <div className="min-w-0 space-y-2">
          <h1 className="text-xl font-semibold tracking-tight" data-testid="lock-title">
            <KeyText value={lockKey} />
          </h1>
          <div className="flex flex-wrap items-center gap-2 text-sm">
            {lock ? <HealthBadge lock={lock} /> : q.data ? <Badge tone="neutral">Not held</Badge> : null}
            {lock && (
              <>
                <Badge tone="info" dot={false}>
                  {lock.format}
                </Badge>
                <Badge tone="neutral" dot={false}>
                  {lock.kind}
                </Badge>
              </>
            )}
            <span className="text-muted-foreground">
              on <span className="font-medium text-foreground">{backend}</span>
              {status && ` (${status.type}${status.status === 'down' ? ', down' : ''})`}
            </span>
          </div>
        </div>
        <div className="flex items-center gap-3">
          <SyncStatus />
          {lock && canRelease && (
            <Button variant="danger-outline" onClick={() => setReleasing(lock)}>
              Force-release…
            </Button>
          )}
        </div>
      </div>

      {lock && session && !canRelease && (
        <p className="text-xs text-muted-foreground">
          {session.readOnly ? 'The console is read-only: nothing can be released from here.' : 'You are signed in as a viewer: releasing needs the operator token.'}
        </p>
      )}

      {q.isPending ? (
        <div className="grid gap-4 lg:grid-cols-2" role="status" aria-label="Loading the lock">
          <Skeleton className="h-48" />
          <Skeleton className="h-48" />
        </div>
      ) : q.isError ? (
        <Callout tone="danger" role="alert" title={q.error.message.includes('down') || q.error.message.includes('unavailable') ? `Backend “${backend}” cannot be asked right now` : 'This lock could not be loaded'}>
          <p>{q.error.message}</p>
          <Button size="sm" className="mt-2" onClick={() => void q.refetch()}>
            Try again
          </Button>
        </Callout>
      ) : (
        <>
          {!lock && <NotHeld history={history} />}
          {lock && (
            <div className="grid gap-4 lg:grid-cols-[minmax(0,3fr)_minmax(0,2fr)]">
              <HolderCard lock={lock} />
              <WaitersCard lock={lock} />
            </div>
          )}
          <Card>
            <CardHeader>
              <CardTitle>History</CardTitle>
              <span className="text-xs text-muted-foreground">newest first · as the console saw it</span>
            </CardHeader>
            <CardContent flush>
              <HistoryTable history={history} />
            </CardContent>
          </Card>
          {lock && <MetaCard lock={lock} />}
        </>
      )}

      {releasing && <ForceReleaseDialog lock={releasing} onClose={() => setReleasing(null)} />}
    </div>
  );
}

function NotHeld({ history }: { history: HistoryEvent[] }) {
  const last = history[0];
  return (
    <Callout tone="info" role="status" title="Nobody holds this lock now" data-testid="not-held">
      {last ? (
        <>
          Last seen: <strong>{EVENT_LABEL[last.type].toLowerCase()}</strong> {formatAgo(Date.now() - last.at)} ({formatDateTime(last.at)})
          {last.owner && (
            <>
              {' '}
              · holder <span className="font-mono">{last.owner}</span>
            </>
          )}
          {last.fence && <> · fence {last.fence}</>}.
        </>
      ) : (
        'The console has no record of it: it may never have been held while the console watched.'
      )}
    </Callout>
  );
}

function Row({ label, children }: { label: string; children: ReactNode }) {
  return (
    <>
      <dt className="text-muted-foreground">{label}</dt>
      <dd className="min-w-0">{children}</dd>
    </>
  );
}

function HolderCard({ lock }: { lock: LockInfo }) {
  const leaseMs = typeof lock.meta?.leaseMs === 'number' ? lock.meta.leaseMs : null;
  return (
    <Card>
      <CardHeader>
        <CardTitle>{lock.holders.length > 1 ? `Holders (${lock.holders.length})` : 'Holder'}</CardTitle>
      </CardHeader>
      <CardContent>
        <dl className="grid grid-cols-[8rem_minmax(0,1fr)] gap-x-4 gap-y-2 text-sm">
          <Row label="Owner">
            <span className="font-mono text-[13px] break-all" data-testid="holder-owner">
              {lock.owner ?? <span className="font-sans text-muted-foreground">unknown (the layout does not say)</span>}
            </span>
          </Row>
          <Row label="Fence">
            <span className="font-mono text-[13px]" data-testid="holder-fence">
              {lock.fence ?? <span className="font-sans text-muted-foreground">none</span>}
            </span>
          </Row>
          <Row label="Acquired">
            {lock.acquiredAt !== null ? (
              <>
                <time dateTime={isoTime(lock.acquiredAt)}>{formatDateTime(lock.acquiredAt)}</time>
                <span className="text-muted-foreground">
                  {' '}
                  · held for <Elapsed since={lock.acquiredAt} />
                </span>
              </>
            ) : (
              <span className="text-muted-foreground">unknown</span>
            )}
          </Row>
          <Row label="Expires">
            {lock.expiresAt !== null ? (
              <>
                <time dateTime={isoTime(lock.expiresAt)}>{formatDateTime(lock.expiresAt)}</time>
                <span className="text-muted-foreground"> · TTL </span>
                <TtlCountdown expiresAt={lock.expiresAt} leaseMs={leaseMs} />
                {leaseMs !== null && <span className="text-muted-foreground"> of {Math.round(leaseMs / 1000)}s lease</span>}
              </>
            ) : (
              <span className="text-muted-foreground">never: this lock has no expiry</span>
            )}
          </Row>
        </dl>
        {lock.holders.length > 1 && (
          <ul className="mt-4 divide-y divide-border rounded-md border border-border text-sm">
            {lock.holders.map((h, i) => (
              <li key={`${h.owner}-${h.fence}-${i}`} className="flex flex-wrap items-center justify-between gap-2 px-3 py-2">
                <span className="font-mono text-[13px] break-all">{h.owner ?? 'unknown'}</span>
                <span className="text-xs text-muted-foreground">
                  {h.fence && <>fence {h.fence} · </>}
                  {h.acquiredAt !== null ? <>held for <Elapsed since={h.acquiredAt} /></> : 'since unknown'}
                </span>
              </li>
            ))}
          </ul>
        )}
      </CardContent>
    </Card>
  );
}

function WaitersCard({ lock }: { lock: LockInfo }) {
  return (
    <Card>
      <CardHeader>
        <CardTitle>Waiting ({lock.waiters.length})</CardTitle>
        <span className="text-xs text-muted-foreground">in the order they get it</span>
      </CardHeader>
      <CardContent>
        {lock.waiters.length === 0 ? (
          <p className="text-sm text-muted-foreground">Nobody is waiting for this lock.</p>
        ) : (
          <ol className="divide-y divide-border rounded-md border border-border text-sm" aria-label="Waiters in order" data-testid="waiters">
            {lock.waiters.map((w, i) => (
              <li key={`${w.owner}-${w.since}-${i}`} className="flex items-center gap-3 px-3 py-2">
                <span className="w-6 shrink-0 text-right text-xs text-muted-foreground tabular-nums">{i + 1}.</span>
                <span className="min-w-0 flex-1 truncate font-mono text-[13px]" title={w.owner ?? 'unknown'}>
                  {w.owner ?? <span className="font-sans text-muted-foreground">unknown waiter</span>}
                </span>
                <span className="shrink-0 text-xs text-muted-foreground">
                  waiting <Elapsed since={w.since} className="font-medium text-foreground" />
                </span>
              </li>
            ))}
          </ol>
        )}
      </CardContent>
    </Card>
  );
}

function MetaValue({ k, v }: { k: string; v: string | number | boolean | null }) {
  if (v === null) return <span className="text-muted-foreground">null</span>;
  if (typeof v === 'string' && isHashKey(k)) {
    return (
      <span className="font-mono text-[13px]" title={`${v} (a hash: it identifies the holder without revealing its secret)`}>
        {shortHash(v)}
      </span>
    );
  }
  return <span className="font-mono text-[13px] break-all">{String(v)}</span>;
}

function MetaCard({ lock }: { lock: LockInfo }) {
  const meta = Object.entries(lock.meta ?? {});
  const labels = Object.entries(lock.labels ?? {});
  if (meta.length === 0 && labels.length === 0) return null;
  return (
    <Card>
      <CardHeader>
        <CardTitle>Raw metadata</CardTitle>
      </CardHeader>
      <CardContent className="grid gap-6 md:grid-cols-2">
        {labels.length > 0 && (
          <section aria-label="Labels">
            <h3 className="mb-2 text-xs font-medium tracking-wide text-muted-foreground uppercase">Labels</h3>
            <dl className="grid grid-cols-[minmax(8rem,auto)_minmax(0,1fr)] gap-x-4 gap-y-1.5 text-sm">
              {labels.map(([k, v]) => (
                <Row key={k} label={k}>
                  <span className="font-mono text-[13px] break-all">{v}</span>
                </Row>
              ))}
            </dl>
          </section>
        )}
        {meta.length > 0 && (
          <section aria-label="Layout facts">
            <h3 className="mb-2 text-xs font-medium tracking-wide text-muted-foreground uppercase">From the {lock.format} layout</h3>
            <dl className="grid grid-cols-[minmax(8rem,auto)_minmax(0,1fr)] gap-x-4 gap-y-1.5 text-sm" data-testid="meta">
              {meta.map(([k, v]) => (
                <Row key={k} label={k}>
                  <MetaValue k={k} v={v} />
                </Row>
              ))}
            </dl>
          </section>
        )}
      </CardContent>
    </Card>
  );
}
