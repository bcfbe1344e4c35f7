/**
 * 'redis-setnx-legacy': the old `SETNX lock.foo <unix time + timeout + 1>` pattern
 * (redis/redis-doc:commands/setnx.md, older text; lock-formats.md §1.0). The value is the absolute
 * Unix expiry in seconds, there is no Redis TTL, and a stale lock is taken over with GETSET, so its
 * expiry is judged by the clients' clocks.
 *
 * Recognised on a key with no TTL whose value is epoch seconds within a year before `now` and a
 * week after. A number like that on a key with no lock-like name is taken for a lock only if it
 * lies in the future: a past timestamp there is more likely a "last seen" field than a lock.
 */
import { buildInfo, casDeletePlan, hasLockishName, valueHash, valueText, type Recognised, type RecogniseContext, type StringObs } from './common';

export const FORMAT_SETNX_LEGACY = 'redis-setnx-legacy';

const YEAR_MS = 365 * 24 * 3600 * 1000;
const WEEK_MS = 7 * 24 * 3600 * 1000;

export function recogniseSetnxLegacy(obs: StringObs, ctx: RecogniseContext): Recognised | null {
  if (!ctx.direct || obs.pttl !== -1) return null;
  const text = valueText(obs.value);
  if (text === null || !/^\d{9,10}(?:\.\d{1,6})?$/.test(text)) return null;
  const expiresAt = Math.round(Number(text) * 1000);
  if (expiresAt < ctx.now - YEAR_MS || expiresAt > ctx.now + WEEK_MS) return null;
  if (!hasLockishName(obs.key) && expiresAt <= ctx.now) return null;
  return {
    info: buildInfo(ctx, {
      key: obs.key,
      format: FORMAT_SETNX_LEGACY,
      pttl: obs.pttl,
      expiresAt,
      meta: {
        valueHash: valueHash(obs.value),
        expirySource: 'the value (absolute Unix seconds), judged by the clients\' clocks; the key has no Redis TTL',
      },
    }),
    release: casDeletePlan(obs),
  };
}
