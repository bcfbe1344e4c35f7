'use client';

import { useServerNow } from '@/lib/client/clock';
import { useConnection } from '@/lib/client/events';
import { formatAgo, formatTime } from '@/lib/client/format';
import { cn } from '@/lib/utils';

/**
 * The event stream's state in a few words: "Live · updated 3s ago", "Reconnecting… last synced
 * 14:03:05 (12s ago)". `compact` is the header pill; the full form sits above tables.
 */
export function SyncStatus({ compact = false, updatedAt, className }: { compact?: boolean; updatedAt?: number | null; className?: string }) {
  const conn = useConnection();
  useServerNow(); // re-render once a second for the "ago"
  const now = Date.now();
  const live = conn.state === 'live';
  const dot = (
    <span aria-hidden="true" className="relative flex size-2">
      {live && <span className="absolute inline-flex size-full animate-ping rounded-full bg-emerald-400 opacity-60 motion-reduce:hidden" />}
      <span className={cn('relative inline-flex size-2 rounded-full', live ? 'bg-emerald-500' : conn.state === 'reconnecting' ? 'bg-amber-500' : 'bg-zinc-400')} />
    </span>
  );
  const synced = updatedAt ?? conn.lastSyncAt;
  let text: string;
  if (live) text = compact ? 'Live' : `Live · updated ${synced ? formatAgo(now - synced) : 'just now'}`;
  else if (conn.state === 'reconnecting') {
    const last = conn.droppedAt ?? conn.lastSyncAt;
    text = compact ? 'Reconnecting…' : `Reconnecting… last synced ${last ? `${formatTime(last)} (${formatAgo(now - last)})` : 'never'}`;
  } else text = 'Connecting…';
  return (
    <span className={cn('inline-flex items-center gap-2 text-xs whitespace-nowrap text-muted-foreground', className)} data-sync-state={conn.state}>
      {dot}
      <span>{text}</span>
    </span>
  );
}
