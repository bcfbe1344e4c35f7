'use client';

import { useServerNow } from '@/lib/client/clock';
import { formatDuration, formatDurationLong, isoTime } from '@/lib/client/format';
import { cn } from '@/lib/utils';

interface TtlProps {
  expiresAt: number | null;
  leaseMs?: number | null;
  className?: string;
}

/**
 * Time left on a lease at `now` (server epoch ms): how long ago it expired once it has, "no
 * expiry" for leases without one. Pure: tables pass one `now` to every row (one ticker, one
 * render per row per second), single values use {@link TtlCountdown}.
 */
export function TtlText({ expiresAt, leaseMs, className, now }: TtlProps & { now: number }) {
  if (expiresAt === null) {
    return (
      <span className={cn('text-muted-foreground', className)} title="This lock has no expiry: only its holder or an operator frees it.">
        no expiry
      </span>
    );
  }
  if (now === 0) return <span className={className}>…</span>;
  const left = expiresAt - now;
  if (left <= 0) {
    return (
      <span className={cn('font-medium text-red-700 dark:text-red-300', className)} title={`Expired at ${isoTime(expiresAt)}`}>
        expired {formatDuration(-left)} ago
      </span>
    );
  }
  const low = leaseMs ? left < leaseMs * 0.2 : left < 10_000;
  return (
    <span
      className={cn('tabular-nums', low && 'font-medium text-amber-700 dark:text-amber-300', className)}
      title={`${formatDurationLong(left)} left · expires ${isoTime(expiresAt)}`}
      data-ttl-ms={left}
    >
      {formatDuration(left)}
    </span>
  );
}

/** {@link TtlText} counting down once a second by the server's clock (lib/client/clock.ts). */
export function TtlCountdown(props: TtlProps) {
  return <TtlText {...props} now={useServerNow()} />;
}

interface ElapsedProps {
  since: number | null;
  className?: string;
  title?: string;
}

/** Time since `since` at `now` (server epoch ms): "held for", "waiting for". */
export function ElapsedText({ since, className, title, now }: ElapsedProps & { now: number }) {
  if (since === null) return <span className={cn('text-muted-foreground', className)}>unknown</span>;
  if (now === 0) return <span className={className}>…</span>;
  const ms = Math.max(0, now - since);
  return (
    <span className={cn('tabular-nums', className)} title={title ?? `${formatDurationLong(ms)} · since ${isoTime(since)}`}>
      {formatDuration(ms)}
    </span>
  );
}

/** {@link ElapsedText}, ticking once a second. */
export function Elapsed(props: ElapsedProps) {
  return <ElapsedText {...props} now={useServerNow()} />;
}
