import Link from 'next/link';

import { Table, TBody, TD, TH, THead, TR } from '@/components/ui/table';
import { formatAgo, formatCount, formatMs, plural } from '@/lib/client/format';
import type { BackendCounts } from '@/lib/client/locks';
import type { BackendStatus } from '@/lib/client/types';

import { BackendStatusBadge, formatLatency } from './backend-status-badge';

/** Each backend: status, latency, how many locks and waiters, and why it is down. */
export function BackendsTable({ backends, counts }: { backends: BackendStatus[]; counts: Map<string, BackendCounts> | null }) {
  return (
    <Table aria-label="Backends">
      <THead>
        <TR>
          <TH>Backend</TH>
          <TH>Status</TH>
          <TH className="text-right">Latency</TH>
          <TH className="text-right">Locks</TH>
          <TH className="text-right">Waiters</TH>
        </TR>
      </THead>
      <TBody>
        {backends.map((b) => {
          const c = counts?.get(b.id);
          const down = b.status === 'down';
          return (
            <TR key={b.id} data-backend={b.id}>
              <TD>
                <Link href={`/locks?backend=${encodeURIComponent(b.id)}`} className="font-medium hover:text-accent hover:underline">
                  {b.id}
                </Link>
                <span className="ml-1.5 text-xs text-muted-foreground">{b.type}</span>
                {down && b.error && <p className="mt-0.5 max-w-md text-xs break-words text-red-700 dark:text-red-300">{b.error}</p>}
                {b.discovery && <DiscoveryLine d={b.discovery} />}
              </TD>
              <TD>
                <BackendStatusBadge backend={b} />
              </TD>
              <TD className="text-right tabular-nums">{down ? '—' : formatLatency(b.latencyMs)}</TD>
              <TD className="text-right tabular-nums">{down ? <span className="text-muted-foreground" title="The backend cannot be asked">unknown</span> : formatCount(c?.locks ?? 0)}</TD>
              <TD className="text-right tabular-nums">{down ? <span className="text-muted-foreground">unknown</span> : formatCount(c?.waiters ?? 0)}</TD>
            </TR>
          );
        })}
      </TBody>
    </Table>
  );
}

/**
 * Foreign-lock discovery under a Redis backend: foreign clients keep no index, so their locks are
 * found by a paced background SCAN; this says how fresh that is, so "no foreign lock" is not
 * mistaken for "not looked yet".
 */
function DiscoveryLine({ d }: { d: NonNullable<BackendStatus['discovery']> }) {
  const text =
    d.passes === 0
      ? `foreign locks: first scan under way (${formatCount(d.keysExamined)} keys examined)`
      : `foreign locks: ${formatCount(d.known)} found · last scan ${formatAgo(d.lastPassAgeMs ?? 0)}, took ${formatMs(d.lastPassMs)}`;
  const warn = d.behind || d.full;
  const why = d.behind
    ? ` — behind${d.lastError ? `: ${d.lastError}` : ''}; foreign locks taken since are not listed`
    : d.full
      ? ` — more than it remembers (${plural(d.known, 'key')}); narrow "match"`
      : '';
  return (
    <p
      data-testid="discovery-status"
      className={`mt-0.5 max-w-md text-xs break-words ${warn ? 'text-amber-700 dark:text-amber-300' : 'text-muted-foreground'}`}
      title={`${d.passes} complete passes over the keyspace; each walks it with SCAN (never KEYS), paced to leave the server free`}
    >
      {text}
      {why}
    </p>
  );
}
