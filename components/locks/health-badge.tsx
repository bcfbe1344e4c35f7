'use client';

import { Badge, type BadgeTone } from '@/components/ui/badge';
import { useServerNow } from '@/lib/client/clock';
import { HEALTH_HELP, HEALTH_LABEL, liveHealth } from '@/lib/client/locks';
import type { LockHealth, LockInfo } from '@/lib/client/types';

export const HEALTH_TONE: Record<LockHealth, BadgeTone> = {
  ok: 'success',
  expiring: 'warning',
  expired: 'danger',
  orphaned: 'orphan',
  unknown: 'neutral',
};

/** A health value as a badge (static: for history and filters). */
export function HealthLabel({ health, className }: { health: LockHealth; className?: string }) {
  return (
    <Badge tone={HEALTH_TONE[health]} title={HEALTH_HELP[health]} className={className}>
      {HEALTH_LABEL[health]}
    </Badge>
  );
}

/** A held lock's health now: turns to "Expired" the second its lease runs out by the server clock. */
export function HealthBadge({ lock, className }: { lock: Pick<LockInfo, 'health' | 'expiresAt'>; className?: string }) {
  const now = useServerNow();
  return <HealthLabel health={liveHealth(lock, now)} className={className} />;
}
