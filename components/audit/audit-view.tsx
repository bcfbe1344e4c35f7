'use client';

import { useEffect, useMemo, useState } from 'react';
import Link from 'next/link';
import { usePathname, useRouter, useSearchParams } from 'next/navigation';
import { useInfiniteQuery, useQuery } from '@tanstack/react-query';

import { Badge, type BadgeTone } from '@/components/ui/badge';
import { Button } from '@/components/ui/button';
import { Callout } from '@/components/ui/callout';
import { EmptyState } from '@/components/ui/empty-state';
import { Input, Label } from '@/components/ui/input';
import { Select } from '@/components/ui/select';
import { Skeleton } from '@/components/ui/skeleton';
import { Table, TBody, TD, TH, THead, TR } from '@/components/ui/table';
import type { AuditFilter } from '@/lib/client/api';
import { formatDateTime, isoTime } from '@/lib/client/format';
import { lockHref } from '@/lib/client/locks';
import { auditQuery, backendsQuery } from '@/lib/client/queries';
import type { AuditEntry, AuditResult } from '@/lib/client/types';

const RESULTS: Array<{ value: AuditResult; label: string; tone: BadgeTone; help: string }> = [
  { value: 'released', label: 'Released', tone: 'success', help: 'The lock the operator saw was released.' },
  { value: 'changed', label: 'Holder changed', tone: 'warning', help: 'Refused (409): someone else held it by then; nothing was released.' },
  { value: 'not-found', label: 'Not found', tone: 'neutral', help: 'Nothing held the key any more (404).' },
  { value: 'refused', label: 'Refused', tone: 'danger', help: 'Not allowed or malformed (401/403/405/400/429).' },
  { value: 'error', label: 'Error', tone: 'danger', help: 'The backend or the console failed (5xx).' },
];
const RESULT = Object.fromEntries(RESULTS.map((r) => [r.value, r])) as Record<AuditResult, (typeof RESULTS)[number]>;

const FIELDS = ['backend', 'key', 'actor', 'result'] as const;

/** `/audit`: every force-release attempt, newest first, filterable by exact backend, key, actor and result. */
export function AuditView() {
  const router = useRouter();
  const pathname = usePathname();
  const params = useSearchParams();
  const filter = useMemo<AuditFilter>(() => {
    const f: AuditFilter = {};
    for (const k of FIELDS) {
      const v = params.get(k);
      if (v) f[k] = v;
    }
    return f;
  }, [params]);
  const setFilter = (patch: AuditFilter) => {
    const next = { ...filter, ...patch };
    const sp = new URLSearchParams();
    for (const k of FIELDS) if (next[k]) sp.set(k, next[k]!);
    const s = sp.toString();
    router.replace(`${pathname}${s ? `?${s}` : ''}`, { scroll: false });
  };

  const q = useInfiniteQuery(auditQuery(filter));
  const { data: backends } = useQuery(backendsQuery());
  const entries = q.data?.pages.flat() ?? [];
  const filtered = FIELDS.some((k) => filter[k]);

  const [key, setKey] = useState(filter.key ?? '');
  useEffect(() => setKey(filter.key ?? ''), [filter.key]);

  return (
    <div className="space-y-4">
      <div>
        <h1 className="text-2xl font-semibold tracking-tight">Audit log</h1>
        <p className="text-sm text-muted-foreground">Every force-release attempt, allowed or not, newest first. Entries cannot be changed or deleted.</p>
      </div>

      <form
        role="search"
        aria-label="Filter the audit log"
        className="flex flex-wrap items-end gap-3"
        onSubmit={(e) => {
          e.preventDefault();
          setFilter({ key: key.trim() || undefined });
        }}
      >
        <div className="w-36 space-y-1">
          <Label htmlFor="audit-backend">Backend</Label>
          <Select id="audit-backend" value={filter.backend ?? ''} onChange={(e) => setFilter({ backend: e.target.value || undefined })}>
            <option value="">All backends</option>
            {(backends ?? []).map((b) => (
              <option key={b.id} value={b.id}>
                {b.id}
              </option>
            ))}
            {filter.backend && !backends?.some((b) => b.id === filter.backend) && <option value={filter.backend}>{filter.backend}</option>}
          </Select>
        </div>
        <div className="w-full min-w-56 flex-1 space-y-1 sm:w-auto">
          <Label htmlFor="audit-key">Key (exact; press Enter)</Label>
          <Input id="audit-key" type="search" value={key} onChange={(e) => setKey(e.target.value)} onBlur={() => key.trim() !== (filter.key ?? '') && setFilter({ key: key.trim() || undefined })} placeholder="the whole key" autoComplete="off" spellCheck={false} />
        </div>
        <div className="w-36 space-y-1">
          <Label htmlFor="audit-actor">Actor</Label>
          <Select id="audit-actor" value={filter.actor ?? ''} onChange={(e) => setFilter({ actor: e.target.value || undefined })}>
            <option value="">Anyone</option>
            <option value="operator">operator</option>
            <option value="viewer">viewer</option>
            <option value="anonymous">anonymous</option>
          </Select>
        </div>
        <div className="w-40 space-y-1">
          <Label htmlFor="audit-result">Result</Label>
          <Select id="audit-result" value={filter.result ?? ''} onChange={(e) => setFilter({ result: e.target.value || undefined })}>
            <option value="">Any result</option>
            {RESULTS.map((r) => (
              <option key={r.value} value={r.value}>
                {r.label}
              </option>
            ))}
          </Select>
        </div>
        {filtered && (
          <Button variant="ghost" onClick={() => setFilter({ backend: undefined, key: undefined, actor: undefined, result: undefined })}>
            Clear
          </Button>
        )}
      </form>

      <div className="overflow-hidden rounded-lg border border-border bg-card shadow-xs">
        {q.isPending ? (
          <div className="space-y-3 p-5" role="status" aria-label="Loading the audit log">
            <Skeleton className="h-4 w-2/3" />
            <Skeleton className="h-4 w-1/2" />
            <Skeleton className="h-4 w-3/5" />
          </div>
        ) : q.isError ? (
          <div className="p-4">
            <Callout tone="danger" role="alert" title="The audit log could not be loaded">
              {q.error.message}
            </Callout>
          </div>
        ) : entries.length === 0 ? (
          <EmptyState title={filtered ? 'No attempts match these filters' : 'No force-release attempts yet'}>
            {filtered ? 'Filters are exact matches: the whole key, the backend id.' : 'When an operator force-releases a lock, the attempt appears here with its reason.'}
          </EmptyState>
        ) : (
          <AuditTable entries={entries} />
        )}
      </div>
      {q.hasNextPage && (
        <div className="flex justify-center">
          <Button onClick={() => void q.fetchNextPage()} disabled={q.isFetchingNextPage}>
            {q.isFetchingNextPage ? 'Loading…' : 'Show older attempts'}
          </Button>
        </div>
      )}
    </div>
  );
}

function AuditTable({ entries }: { entries: AuditEntry[] }) {
  return (
    <Table aria-label="Force-release attempts" data-testid="audit-table">
      <THead className="bg-muted/60">
        <TR>
          <TH>When</TH>
          <TH>Result</TH>
          <TH>Actor</TH>
          <TH>Lock</TH>
          <TH>Holder</TH>
          <TH>Reason</TH>
        </TR>
      </THead>
      <TBody>
        {entries.map((e) => {
          const r = RESULT[e.result] ?? { label: e.result, tone: 'neutral' as const, help: '' };
          return (
            <TR key={e.id} data-audit-id={e.id}>
              <TD className="whitespace-nowrap tabular-nums">
                <time dateTime={isoTime(e.at)}>{formatDateTime(e.at)}</time>
              </TD>
              <TD className="whitespace-nowrap">
                <Badge tone={r.tone} title={r.help}>
                  {r.label}
                </Badge>
                <span className="ml-1.5 text-xs text-muted-foreground tabular-nums" title={e.code ?? undefined}>
                  {e.status}
                </span>
                {e.action === 'revoke-lease' && (
                  <span className="block text-xs font-medium text-red-700 dark:text-red-300" title="The holder's whole lease was asked to end, not only this lock">
                    lease revocation
                  </span>
                )}
              </TD>
              <TD className="whitespace-nowrap">
                {e.actor}
                {e.via && <span className="text-xs text-muted-foreground"> · {e.via}</span>}
              </TD>
              <TD className="max-w-[22rem]">
                {e.backend && e.key ? (
                  <Link href={lockHref(e.backend, e.key)} className="block truncate font-mono text-xs font-medium hover:text-accent hover:underline" title={e.key}>
                    {e.key}
                  </Link>
                ) : (
                  <span className="font-mono text-xs">{e.key ?? '—'}</span>
                )}
                <span className="text-xs text-muted-foreground">{e.backend ?? 'unknown backend'}</span>
              </TD>
              <TD className="max-w-[16rem] text-xs">
                <span className="block truncate font-mono" title={e.owner ?? e.expectOwner ?? undefined}>
                  {e.owner ?? e.expectOwner ?? <span className="font-sans text-muted-foreground">—</span>}
                </span>
                {(e.fence ?? e.expectFence) && <span className="text-muted-foreground">fence {e.fence ?? e.expectFence}</span>}
                {e.result === 'changed' && e.expectFence && e.fence && e.expectFence !== e.fence && (
                  <span className="block text-amber-700 dark:text-amber-300">asked for fence {e.expectFence}</span>
                )}
              </TD>
              <TD className="max-w-[28rem] text-[13px]">
                <p className="break-words">{e.reason ?? <span className="text-muted-foreground">—</span>}</p>
                {e.message && (e.result !== 'released' || e.action === 'revoke-lease') && (
                  <p className="mt-0.5 text-xs break-words text-muted-foreground">{e.message}</p>
                )}
              </TD>
            </TR>
          );
        })}
      </TBody>
    </Table>
  );
}
