import { Badge, type BadgeTone } from '@/components/ui/badge';
import { Table, TBody, TD, TH, THead, TR } from '@/components/ui/table';
import { formatDateTime, formatDuration, formatTime, isoTime } from '@/lib/client/format';
import type { HistoryEvent, LockEventType } from '@/lib/client/types';

export const EVENT_LABEL: Record<LockEventType, string> = {
  acquired: 'Acquired',
  changed: 'Changed',
  released: 'Released',
  expired: 'Expired',
  forced: 'Force-released',
  lost: 'Holder lost it',
  attempt: 'Attempt',
};

const EVENT_TONE: Record<LockEventType, BadgeTone> = {
  acquired: 'info',
  changed: 'neutral',
  released: 'success',
  expired: 'warning',
  forced: 'danger',
  lost: 'warning',
  attempt: 'neutral',
};

/**
 * What a change was about, from the lock it carries and the one before it (history is newest
 * first, so `older` is the next entry): a queue that grew or shrank, a renewal, how long the
 * holder had it when it ended. (A renewal alone is streamed but not stored, lib/console/events.ts
 * isRenewal; "Renewed" shows where a stored change also moved the expiry, or in older records.)
 */
function describe(e: HistoryEvent, older: HistoryEvent | undefined): { label: string; detail: string } {
  const l = e.lock;
  if (e.type === 'acquired') {
    const lease = typeof l?.meta?.leaseMs === 'number' ? l.meta.leaseMs : l?.expiresAt && l.acquiredAt ? l.expiresAt - l.acquiredAt : null;
    return { label: EVENT_LABEL.acquired, detail: lease ? `lease ${formatDuration(lease)}` : '' };
  }
  if (e.type === 'changed') {
    const before = older?.lock;
    if (l && before && l.waiters.length !== before.waiters.length) {
      return { label: 'Queue changed', detail: `${before.waiters.length} → ${l.waiters.length} waiting` };
    }
    if (l && before && l.expiresAt !== null && before.expiresAt !== null && l.expiresAt > before.expiresAt) {
      return { label: 'Renewed', detail: `now expires ${formatTime(l.expiresAt)}` };
    }
    return { label: EVENT_LABEL.changed, detail: l ? `${l.waiters.length} waiting` : '' };
  }
  if (e.type === 'lost' || e.type === 'attempt') {
    const reason = l?.meta?.reason;
    return { label: EVENT_LABEL[e.type], detail: typeof reason === 'string' ? `reason: ${reason}` : '' };
  }
  const held = l?.acquiredAt ? e.at - l.acquiredAt : null;
  return { label: EVENT_LABEL[e.type], detail: held !== null && held >= 0 ? `after ${formatDuration(held)} held` : '' };
}

/** A lock's recorded changes, newest first: what happened, to which holder, with which fence. */
export function HistoryTable({ history }: { history: HistoryEvent[] }) {
  if (history.length === 0) {
    return <p className="px-5 pb-3 text-sm text-muted-foreground">No changes recorded yet. The console records changes while it runs.</p>;
  }
  return (
    <Table aria-label="Lock history" data-testid="history">
      <THead>
        <TR>
          <TH>When</TH>
          <TH>Event</TH>
          <TH>Holder</TH>
          <TH className="text-right">Fence</TH>
          <TH>Details</TH>
          <TH>Seen by</TH>
        </TR>
      </THead>
      <TBody>
        {history.map((e, i) => {
          const d = describe(e, history[i + 1]);
          return (
            <TR key={e.id || `${e.at}-${e.type}-${i}`}>
              <TD className="whitespace-nowrap tabular-nums">
                <time dateTime={isoTime(e.at)}>{formatDateTime(e.at)}</time>
              </TD>
              <TD className="whitespace-nowrap">
                <Badge tone={EVENT_TONE[e.type]}>{d.label}</Badge>
              </TD>
              <TD className="max-w-[24rem] truncate font-mono text-xs" title={e.owner ?? undefined}>
                {e.owner ?? <span className="font-sans text-muted-foreground">unknown</span>}
              </TD>
              <TD className="text-right font-mono text-xs tabular-nums">{e.fence ?? <span className="text-muted-foreground">—</span>}</TD>
              <TD className="text-xs whitespace-nowrap text-muted-foreground">{d.detail}</TD>
              <TD
                className="text-xs whitespace-nowrap text-muted-foreground"
                title={e.source === 'watch' ? 'pushed by the backend as it happened' : 'found by the console’s periodic re-list'}
              >
                {e.source === 'watch' ? 'live push' : 're-list'}
              </TD>
            </TR>
          );
        })}
      </TBody>
    </Table>
  );
}
