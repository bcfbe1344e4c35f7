import type { LockHealth } from './types';

/** Share of the TTL under which a lock counts as `expiring` (contract: 20%). */
export const EXPIRING_FRACTION = 0.2;

/**
 * The health of a held lock from the facts the layout gives.
 * - `expired`: its expiry passed but it is still present (a stuck clock-based lock, or a store
 *   that has not swept it yet);
 * - `orphaned`: it has no expiry at all (a crashed holder leaves it forever), or its owner is
 *   known to be gone;
 * - `expiring`: under 20% of its TTL left (the full TTL must be known).
 */
export function lockHealth(args: {
  now: number;
  expiresAt: number | null;
  ttlMs?: number | null;
  noExpiry?: boolean;
  ownerGone?: boolean;
}): LockHealth {
  const { now, expiresAt, ttlMs, noExpiry, ownerGone } = args;
  if (ownerGone) return 'orphaned';
  if (expiresAt === null) return noExpiry ? 'orphaned' : 'unknown';
  if (expiresAt <= now) return 'expired';
  if (ttlMs && ttlMs > 0 && expiresAt - now < ttlMs * EXPIRING_FRACTION) return 'expiring';
  return 'ok';
}
