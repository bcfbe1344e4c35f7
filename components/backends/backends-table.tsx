import Link from 'next/link';

import { Table, TBody, TD, TH, THead, TR } from '@/components/ui/table';
import { formatCount } from '@/lib/client/format';
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
