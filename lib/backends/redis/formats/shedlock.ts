/**
 * 'shedlock': lukas-krecan/ShedLock:providers/redis/shedlock-support-redis/src/main/java/net/javacrumbs/shedlock/provider/redis/support/InternalRedisLockProvider.java
 * (also the Spring, Jedis and Lettuce providers; shedlock-core .../support/Utils.java for the
 * timestamp), lock-formats.md §1.6.
 *
 * Layout: `SET job-lock:<env>:<name> "ADDED:<ISO-8601 UTC>@<hostname>[:<UUID>]" NX PX lockAtMostFor`.
 * The UUID suffix appears from ShedLock 6.7.0. Older providers wrote `Instant.now().toString()`,
 * whose fraction has 0–9 digits, so any fraction is accepted. The value shape is distinctive
 * enough to be recognised under any key (the Spring provider allows a custom prefix).
 *
 * The time is the holder's clock at acquisition. A key that exists may only be in its
 * `lockAtLeastFor` cool-down: Redis cannot tell that apart from a running job.
 */
import { buildInfo, casDeletePlan, valueHash, valueText, type Recognised, type RecogniseContext, type StringObs } from './common';

export const FORMAT_SHEDLOCK = 'shedlock';

const VALUE = /^ADDED:(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z@([\s\S]+)$/;
const UUID_SUFFIX = /^([\s\S]+):([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

export function parseShedlockValue(text: string): { acquiredAt: number; host: string; hasLockId: boolean } | null {
  const m = VALUE.exec(text);
  if (!m) return null;
  const ms = Date.parse(`${m[1]}.${(m[2] ?? '').padEnd(3, '0').slice(0, 3)}Z`);
  if (!Number.isFinite(ms)) return null;
  const u = UUID_SUFFIX.exec(m[3]!);
  return { acquiredAt: ms, host: u ? u[1]! : m[3]!, hasLockId: !!u };
}

export function recogniseShedlock(obs: StringObs, ctx: RecogniseContext): Recognised | null {
  if (!ctx.direct) return null;
  const text = valueText(obs.value);
  const v = text === null ? null : parseShedlockValue(text);
  if (!v) return null;
  const keyParts = /^job-lock:([^:]*):([\s\S]+)$/.exec(obs.key);
  const fullTtlMs = obs.pttl >= 0 ? Math.max(obs.pttl, ctx.now + obs.pttl - v.acquiredAt) : null;
  return {
    info: buildInfo(ctx, {
      key: obs.key,
      format: FORMAT_SHEDLOCK,
      owner: v.host,
      acquiredAt: v.acquiredAt,
      pttl: obs.pttl,
      fullTtlMs,
      meta: {
        ...(keyParts ? { environment: keyParts[1]!, lockName: keyParts[2]! } : {}),
        host: v.host,
        version: v.hasLockId ? '6.7.0 or later' : 'before 6.7.0',
        valueHash: valueHash(obs.value),
        acquiredAtSource: 'the value (holder\'s clock)',
        note: 'the key may only be in its lockAtLeastFor cool-down; releasing it does not stop a running job',
      },
    }),
    release: casDeletePlan(obs),
  };
}
