/**
 * 'python-redis-lock': ionelmc/python-redis-lock:src/redis_lock/__init__.py (v4.0.1; v3.0.0–v3.7.0
 * compared), lock-formats.md §1.4.
 *
 * Layout: lock `lock:<name>` = id, `SET ... NX EX expire` (no TTL by default); signal list
 * `lock-signal:<name>` on which waiters block in `BLPOP` (for ever when they gave no timeout).
 * The id is `b64encode(urandom(18))`, 24 base64 characters, since v3.3.0; v3.0–v3.2 stored
 * `urandom(16)` raw. We key on the `lock:` prefix plus one of those two value shapes; any other
 * value under `lock:` is left to 'redis-plain' (the prefix is shared with home-grown schemes).
 *
 * Waiters exist but cannot be counted: `CLIENT LIST` shows `cmd=blpop` without the key.
 */
import {
  buildInfo,
  valueHash,
  valueText,
  type Recognised,
  type RecogniseContext,
  type ReleasePlan,
  type StringObs,
} from './common';

export const FORMAT_PYTHON_REDIS_LOCK = 'python-redis-lock';

/** python-redis-lock's default `signal_expire` (ms): how long the wake-up token lives. */
export const SIGNAL_EXPIRE_MS = 1000;

export function signalKey(name: string): string {
  return `lock-signal:${name}`;
}

/**
 * The library's own release (`UNLOCK_SCRIPT`), with our return codes: check the id, then DEL the
 * signal list, LPUSH one wake-up, PEXPIRE it, DEL the lock. A bare DEL of the lock would wake no
 * BLPOP waiter (lock-formats.md §7.3.2). One push wakes one waiter, as the library does; that
 * waiter's own release wakes the next.
 * KEYS[1] = lock:<name>, KEYS[2] = lock-signal:<name>; ARGV[1] = observed id, ARGV[2] = signal expiry ms.
 */
export const RELEASE_PYTHON_REDIS_LOCK = `
local t = redis.call('type', KEYS[1])['ok']
if t == 'none' then return -1 end
if t ~= 'string' or redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('del', KEYS[2])
redis.call('lpush', KEYS[2], 1)
redis.call('pexpire', KEYS[2], ARGV[2])
redis.call('del', KEYS[1])
return 1
`;

export function recognisePythonRedisLock(obs: StringObs, ctx: RecogniseContext): Recognised | null {
  if (!ctx.direct || !obs.key.startsWith('lock:') || obs.key.length === 'lock:'.length) return null;
  const text = valueText(obs.value);
  let idShape: string;
  if (text !== null && /^[A-Za-z0-9+/]{24}$/.test(text)) idShape = 'base64-24 (v3.3+)';
  else if (obs.value.length === 16 && (text === null || /[^\x20-\x7e]/.test(text))) idShape = 'raw-16-bytes (v3.0-3.2)';
  else return null;
  const name = obs.key.slice('lock:'.length);
  const release: ReleasePlan = {
    script: RELEASE_PYTHON_REDIS_LOCK,
    keys: [obs.key, signalKey(name)],
    args: [obs.value, SIGNAL_EXPIRE_MS],
  };
  return {
    info: buildInfo(ctx, {
      key: obs.key,
      format: FORMAT_PYTHON_REDIS_LOCK,
      pttl: obs.pttl,
      meta: {
        name,
        signalKey: signalKey(name),
        idShape,
        valueHash: valueHash(obs.value),
        waitersVisible: false,
        ...(obs.pttl === -1 ? { note: 'taken without expire (the default): stays until released' } : {}),
      },
    }),
    release,
  };
}
