/**
 * Redisson (Java) locks, lock-formats.md §1.5. Sources, all under
 * redisson/redisson:redisson/src/main/java/org/redisson/:
 *  - RedissonBaseLock.java / RedissonLock.java  → 'redisson-lock'
 *  - RedissonFencedLock.java (`redisson_lock_token:{name}` counter) → 'redisson-lock' with a fence
 *  - RedissonFairLock.java (queue + timeout zset, per-waiter channels) → 'redisson-fairlock'
 *  - RedissonReadLock.java / RedissonWriteLock.java → 'redisson-rwlock'
 *  - RedissonObject.java (`prefixName`/`suffixName`), pubsub/LockPubSub.java (messages),
 *    config/Config.java (lockWatchdogTimeout 30 000 ms).
 *
 * Layout: the lock is a hash at the raw name. A holder is a field `<client UUID>:<thread id>`
 * whose value is its re-entrancy count; a writer's field ends in `:write`; a read/write lock also
 * has a field `mode` = read|write. This is the most recognisable Redis layout, so it is accepted
 * under any key, including names found only through the side keys that Redisson writes next to
 * the lock (`redisson_lock_token:*`, `redisson_lock_queue:*`, `redisson_lock_timeout:*`,
 * `*:rwlock_timeout:*`). `redisson_unlock_latch:*` keys are short-lived idempotency markers and
 * never name a lock we need.
 *
 * A FairLock with nobody queued looks exactly like an RLock; it is reported as 'redisson-lock'
 * then, and its release still wakes the right channel (the script looks at the queue itself).
 */
import type { WaiterInfo } from '../../../locks/types';
import { tokenHash } from '../../../locks/util';
import { buildInfo, MAX_WAITERS, type HashObs, type Recognised, type RecogniseContext, type ReleasePlan } from './common';

export const FORMAT_REDISSON_LOCK = 'redisson-lock';
export const FORMAT_REDISSON_FAIRLOCK = 'redisson-fairlock';
export const FORMAT_REDISSON_RWLOCK = 'redisson-rwlock';

/** Default `lockWatchdogTimeout` (Config.java): a watchdog lock is renewed to this every third of it. */
export const WATCHDOG_TIMEOUT_MS = 30_000;

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const HOLDER_FIELD = new RegExp(`^${UUID}:\\d+$`);
const WRITER_FIELD = new RegExp(`^${UUID}:\\d+:write$`);
const COUNT = /^[1-9]\d{0,9}$/;

/** RedissonObject.prefixName: `p:{name}`, or `p:name` when the name already has a hash tag. */
export function prefixName(prefix: string, name: string): string {
  return name.includes('{') ? `${prefix}:${name}` : `${prefix}:{${name}}`;
}

/** RedissonObject.suffixName: `{name}:s`, or `name:s` when the name already has a hash tag. */
export function suffixName(name: string, suffix: string): string {
  return name.includes('{') ? `${name}:${suffix}` : `{${name}}:${suffix}`;
}

/** Side-key prefixes whose rest is `prefixName`'s encoding of the lock name. */
const SIDE_PREFIXES = ['redisson_lock_queue', 'redisson_lock_timeout', 'redisson_lock_token'] as const;
const RWLOCK_TIMEOUT = new RegExp(`^([\\s\\S]+):${UUID}:\\d+:rwlock_timeout:\\d+$`);

/** Lock names that could have produced `encoded` (the part after `p:`, or before `:suffix`). */
function decodeTagged(encoded: string): string[] {
  const inner = /^\{([^{]*)\}$/.exec(encoded);
  // `{x}` comes from the name `x`, or from the name `{x}` itself (which already had a tag).
  return inner ? [inner[1]!, encoded] : encoded.includes('{') ? [encoded] : [];
}

/**
 * For a Redisson side key: the lock names it may belong to (to inspect instead of the side key),
 * `[]` for side keys that never lead to a lock worth showing, or null for any other key.
 */
export function redissonSideKeyNames(key: string): string[] | null {
  if (key.startsWith('redisson_unlock_latch:')) return [];
  for (const p of SIDE_PREFIXES) {
    if (key.startsWith(`${p}:`)) return decodeTagged(key.slice(p.length + 1));
  }
  const rw = RWLOCK_TIMEOUT.exec(key);
  if (rw) return decodeTagged(rw[1]!);
  return null;
}

export type RedissonClass = { type: 'lock'; holders: string[] } | { type: 'rwlock'; mode: 'read' | 'write'; holders: string[] };

/** Whether a hash's fields are a Redisson lock's, and which one. */
export function classifyRedissonHash(fields: Record<string, string>): RedissonClass | null {
  const names = Object.keys(fields);
  if (names.length === 0) return null;
  const mode = fields.mode;
  if (mode !== undefined) {
    if (mode !== 'read' && mode !== 'write') return null;
    const holders = names.filter((f) => f !== 'mode');
    if (holders.length === 0) return null;
    for (const f of holders) {
      if (!(HOLDER_FIELD.test(f) || WRITER_FIELD.test(f)) || !COUNT.test(fields[f]!)) return null;
    }
    if (mode === 'write' && !holders.some((f) => WRITER_FIELD.test(f))) return null;
    return { type: 'rwlock', mode, holders: holders.sort() };
  }
  for (const f of names) {
    if (!HOLDER_FIELD.test(f) || !COUNT.test(fields[f]!)) return null;
  }
  return { type: 'lock', holders: names.sort() };
}

export function lockChannel(name: string): string {
  return prefixName('redisson_lock__channel', name);
}

export function rwlockChannel(name: string): string {
  return prefixName('redisson_rwlock', name);
}

/** One command to queue in a pipeline (sent with `call`, replies unconverted). */
export interface Cmd {
  cmd: string;
  args: Array<string | number>;
}

/** What Redisson keeps beside the hash, read in the same round trip for every Redisson hash. */
export interface RedissonAux {
  /** Current value of the RFencedLock counter, if the lock has one. */
  token: string | null;
  queue: string[];
  queueLength: number;
  /** Waiter -> the epoch ms (Redisson client's clock) after which it counts as stale. */
  staleAt: Map<string, number>;
  /** Connections subscribed to the lock's channel (plain + sharded), or null if unknown. */
  subscribers: number | null;
}

export function auxCommands(name: string, cls: RedissonClass): Cmd[] {
  const channel = cls.type === 'rwlock' ? rwlockChannel(name) : lockChannel(name);
  return [
    { cmd: 'get', args: [prefixName('redisson_lock_token', name)] },
    { cmd: 'lrange', args: [prefixName('redisson_lock_queue', name), 0, MAX_WAITERS - 1] },
    { cmd: 'llen', args: [prefixName('redisson_lock_queue', name)] },
    { cmd: 'zrange', args: [prefixName('redisson_lock_timeout', name), 0, MAX_WAITERS - 1, 'WITHSCORES'] },
    { cmd: 'pubsub', args: ['NUMSUB', channel] },
    // Sharded pub/sub exists from Redis 7.0; on older servers this one fails and counts as 0.
    { cmd: 'pubsub', args: ['SHARDNUMSUB', channel] },
  ];
}

export function parseAux(replies: Array<[Error | null, unknown]>): RedissonAux {
  const ok = (i: number): unknown => (replies[i] && !replies[i]![0] ? replies[i]![1] : null);
  const token = ok(0);
  const queue = Array.isArray(ok(1)) ? (ok(1) as unknown[]).map(String) : [];
  const staleAt = new Map<string, number>();
  const z = ok(3);
  if (Array.isArray(z)) for (let i = 0; i + 1 < z.length; i += 2) staleAt.set(String(z[i]), Number(z[i + 1]));
  const numsub = (v: unknown): number | null => (Array.isArray(v) && v.length >= 2 ? Number(v[1]) : null);
  const plain = numsub(ok(4));
  const sharded = numsub(ok(5));
  return {
    token: typeof token === 'string' && /^\d+$/.test(token) ? token : null,
    queue,
    queueLength: Number(ok(2) ?? 0) || queue.length,
    staleAt,
    subscribers: plain === null && sharded === null ? null : (plain ?? 0) + (sharded ?? 0),
  };
}

/** `n` waiters we can count but not name (subscribed client instances, not threads). */
function anonymousWaiters(n: number | null): WaiterInfo[] {
  return Array.from({ length: Math.min(n ?? 0, MAX_WAITERS) }, () => ({ owner: null, since: null }));
}

/**
 * Forced release of an RLock / FairLock / RFencedLock, modelled on RedissonLock's and
 * RedissonFairLock's `forceUnlockAsync`, but conditional: the hash must still have exactly the
 * holder fields that were observed (a re-entrant count change is the same holder). Then, like
 * RedissonFairLock, drop stale waiters from the head of the queue, DEL the hash and publish
 * UNLOCK_MESSAGE (0) on the head waiter's channel `<channel>:<id>:<thread>` if someone is queued
 * (FairLock waiters listen only there), else on the lock's channel. PUBLISH and SPUBLISH are both
 * sent because we cannot tell whether the clients use sharded pub/sub (lock-formats.md §1.5);
 * SPUBLISH goes through pcall so a server before 7.0 does not abort the script. Channels are ARGV,
 * not KEYS, since they are not keys (they share the lock's hash tag, so one slot either way).
 * KEYS: hash, queue, timeout zset. ARGV: channel, now (ms), holder fields...
 */
export const RELEASE_REDISSON_LOCK = `
local t = redis.call('type', KEYS[1])['ok']
if t == 'none' then return -1 end
if t ~= 'hash' or redis.call('hlen', KEYS[1]) ~= #ARGV - 2 then return 0 end
for i = 3, #ARGV do
  if redis.call('hexists', KEYS[1], ARGV[i]) == 0 then return 0 end
end
while true do
  local first = redis.call('lindex', KEYS[2], 0)
  if first == false then break end
  local staleAt = tonumber(redis.call('zscore', KEYS[3], first))
  if staleAt ~= nil and staleAt <= tonumber(ARGV[2]) then
    redis.call('zrem', KEYS[3], first)
    redis.call('lpop', KEYS[2])
  else
    break
  end
end
redis.call('del', KEYS[1])
local channel = ARGV[1]
local head = redis.call('lindex', KEYS[2], 0)
if head ~= false then channel = ARGV[1] .. ':' .. head end
redis.call('publish', channel, '0')
redis.pcall('spublish', channel, '0')
return 1
`;

/**
 * Forced release of a read/write lock, modelled on RedissonReadLock/RedissonWriteLock
 * `forceUnlockAsync` (DEL only in the mode observed, then publish on `redisson_rwlock:{name}`:
 * UNLOCK_MESSAGE 0 for a read lock, READ_UNLOCK_MESSAGE 1 for a write lock, as they do), but also
 * only if the holder fields are exactly those observed. The `rwlock_timeout` keys of the readers
 * expire on their own, as after the library's own force-unlock.
 * KEYS: hash. ARGV: channel, mode, message, then every field observed (`mode` and the holders).
 */
export const RELEASE_REDISSON_RWLOCK = `
local t = redis.call('type', KEYS[1])['ok']
if t == 'none' then return -1 end
if t ~= 'hash' or redis.call('hget', KEYS[1], 'mode') ~= ARGV[2] or redis.call('hlen', KEYS[1]) ~= #ARGV - 3 then return 0 end
for i = 4, #ARGV do
  if redis.call('hexists', KEYS[1], ARGV[i]) == 0 then return 0 end
end
redis.call('del', KEYS[1])
redis.call('publish', ARGV[1], ARGV[3])
redis.pcall('spublish', ARGV[1], ARGV[3])
return 1
`;

const splitHolder = (field: string) => {
  const [id, thread] = [field.slice(0, 36), field.slice(37).replace(/:write$/, '')];
  return { id, thread, owner: `${id}:${thread}` };
};

export function recogniseRedisson(obs: HashObs, cls: RedissonClass, aux: RedissonAux, ctx: RecogniseContext): Recognised {
  const name = obs.key;
  // Watchdog locks are renewed to 30 s every 10 s; a lease at or under that is judged against it.
  const fullTtlMs = obs.pttl >= 0 && obs.pttl <= WATCHDOG_TIMEOUT_MS ? WATCHDOG_TIMEOUT_MS : null;
  const holdersHash = tokenHash(cls.holders.join('\n'));

  if (cls.type === 'rwlock') {
    const writers = cls.holders.filter((f) => f.endsWith(':write'));
    const shown = cls.mode === 'write' ? writers : cls.holders;
    const holders = shown.map((f) => ({ owner: splitHolder(f).owner, fence: null, acquiredAt: null }));
    const channel = rwlockChannel(name);
    const release: ReleasePlan = {
      script: RELEASE_REDISSON_RWLOCK,
      keys: [obs.key],
      args: [channel, cls.mode, cls.mode === 'write' ? '1' : '0', 'mode', ...cls.holders],
    };
    return {
      info: buildInfo(ctx, {
        key: obs.key,
        format: FORMAT_REDISSON_RWLOCK,
        kind: cls.mode,
        owner: holders.length === 1 ? holders[0]!.owner : null,
        holders,
        pttl: obs.pttl,
        fullTtlMs,
        waiters: anonymousWaiters(aux.subscribers),
        meta: {
          mode: cls.mode,
          holdCounts: shown.map((f) => `${splitHolder(f).owner}=${obs.fields[f]}`).join(', '),
          readHolds: cls.holders.filter((f) => !f.endsWith(':write')).length,
          channel,
          waitingClients: aux.subscribers,
          waitersNote: 'waiters are counted per subscribed Redisson client instance, not per thread',
          valueHash: holdersHash,
        },
      }),
      release,
    };
  }

  const fence = aux.token;
  const holders = cls.holders.map((f) => ({ owner: f, fence: cls.holders.length === 1 ? fence : null, acquiredAt: null }));
  const only = cls.holders.length === 1 ? splitHolder(cls.holders[0]!) : null;
  const channel = lockChannel(name);
  const release: ReleasePlan = {
    script: RELEASE_REDISSON_LOCK,
    keys: [obs.key, prefixName('redisson_lock_queue', name), prefixName('redisson_lock_timeout', name)],
    args: [channel, ctx.now, ...cls.holders],
  };
  const meta: Record<string, string | number | boolean | null> = {
    holdCount: only ? Number(obs.fields[cls.holders[0]!]) : null,
    clientId: only?.id ?? null,
    threadId: only?.thread ?? null,
    fencedLock: fence !== null,
    channel,
    valueHash: holdersHash,
    leaseNote: 'without an explicit leaseTime, the holder\'s watchdog renews the lease to 30 s every 10 s',
  };
  if (aux.queueLength > 0) {
    // Queued waiters are exact (LRANGE). Their zset score is when each counts as stale
    // (enqueue time + the lease ahead of it + fairLockWaitTimeout, decremented on every hand-over),
    // not when it started waiting, so `since` stays unknown.
    const live = aux.queue.filter((w) => !((aux.staleAt.get(w) ?? Infinity) <= ctx.now));
    const head = aux.queue[0]!;
    return {
      info: buildInfo(ctx, {
        key: obs.key,
        format: FORMAT_REDISSON_FAIRLOCK,
        owner: only?.owner ?? null,
        holders,
        fence,
        pttl: obs.pttl,
        fullTtlMs,
        waiters: live.map((w) => ({ owner: w, since: null })),
        meta: {
          ...meta,
          queueLength: aux.queueLength,
          staleWaiters: aux.queue.length - live.length,
          headWaiter: head,
          headWaiterStaleAt: aux.staleAt.get(head) ?? null,
          headChannel: `${channel}:${head}`,
        },
      }),
      release,
    };
  }
  return {
    info: buildInfo(ctx, {
      key: obs.key,
      format: FORMAT_REDISSON_LOCK,
      owner: only?.owner ?? null,
      holders,
      fence,
      pttl: obs.pttl,
      fullTtlMs,
      waiters: anonymousWaiters(aux.subscribers),
      meta: {
        ...meta,
        waitingClients: aux.subscribers,
        waitersNote: 'waiters are counted per subscribed Redisson client instance (this server only), not per thread',
      },
    }),
    release,
  };
}
