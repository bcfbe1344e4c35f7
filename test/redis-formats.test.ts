/**
 * The foreign-layout half of the Redis inspector (lib/backends/redis/formats.ts) against the real
 * redis-server of the global setup. Keys are written field by field as each client writes them
 * (lock-formats.md §1), and two real clients take real locks: redis-py (Debian python3-redis) and
 * npm `redlock`. Every key made here contains this file's random prefix and is deleted at the end.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import {
  DEFAULT_MATCH,
  escapeGlob,
  forceReleaseForeign,
  inspectForeignKey,
  scanForeign,
  validateMatchGlob,
  type RedisLike,
} from '../lib/backends/redis/formats';
import { globToRegExp } from '../lib/backends/redis/formats/glob';
import { decodeUuid1Hex } from '../lib/backends/redis/formats/plain';
import type { LockInfo } from '../lib/locks/types';
import { randomId, tokenHash } from '../lib/locks/util';
import { eventually } from './contract';
import { Redlock } from './fixtures/redis-redlock';

const url = inject('redisUrl');
const RUN = `rf${randomId(4).replace(/[-_]/g, 'x')}`;
const BACKEND = 'cache';
const OWN = 'lockdeck';
let n = 0;
/** A fresh key segment for one test: `<RUN>-<n>-<label>`. */
const uniq = (label: string) => `${RUN}-${++n}-${label}`;

let redis: Redis;
const extra: Redis[] = [];

async function serverNow(): Promise<number> {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

/** Lists with the given globs, narrowed to this file's keys with `q`. */
async function list(match: readonly string[], q: string = RUN, more: { limit?: number; maxKeysScanned?: number; scanCount?: number } = {}) {
  return scanForeign(redis, { backendId: BACKEND, match, ownPrefix: OWN, q, now: await serverNow(), ...more });
}

async function inspect(key: string, opts?: { match?: readonly string[]; ownPrefix?: string }) {
  return inspectForeignKey(redis, BACKEND, key, await serverNow(), opts);
}

/** A second connection that records what is published on `channel` (plain or sharded). */
async function listen(channel: string, sharded = false): Promise<string[]> {
  const s = new Redis(url);
  extra.push(s);
  const got: string[] = [];
  if (sharded) {
    s.on('smessage', (ch: string, m: string) => ch === channel && got.push(m));
    await s.ssubscribe(channel);
  } else {
    s.on('message', (ch: string, m: string) => ch === channel && got.push(m));
    await s.subscribe(channel);
  }
  return got;
}

/** A Python `uuid.uuid1().hex` made at `ms` (RFC 9562 §5.1 layout), as redis-py's token. */
function uuid1Hex(ms: number): string {
  const ticks = BigInt(ms) * 10_000n + 0x01b21dd213814000n;
  const low = (ticks & 0xffffffffn).toString(16).padStart(8, '0');
  const mid = ((ticks >> 32n) & 0xffffn).toString(16).padStart(4, '0');
  const hi = (((ticks >> 48n) & 0x0fffn) | 0x1000n).toString(16).padStart(4, '0');
  const seq = (0x8000 | (randomBytes(2).readUInt16BE() & 0x3fff)).toString(16);
  return `${low}${mid}${hi}${seq}${randomBytes(6).toString('hex')}`;
}

const redissonId = () => randomUUID();

function expectNoRawSecret(info: LockInfo | null | undefined, secret: string): void {
  expect(info).toBeTruthy();
  expect(JSON.stringify(info)).not.toContain(secret);
}

beforeAll(async () => {
  redis = new Redis(url);
});

afterAll(async () => {
  // Only this file's keys: every one of them contains RUN.
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `*${escapeGlob(RUN)}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
  await Promise.all(extra.map((c) => c.quit().catch(() => undefined)));
  await redis.quit();
});

describe('key globs', () => {
  it('accepts the safe subset and the defaults', () => {
    for (const g of [...DEFAULT_MATCH, '*', 'app:lock:*', 'a?b[0-9]*:x', 'x[^abc]*', 'foo\\*bar', '*:locks:*', 'job-lock:prod:*']) {
      expect(validateMatchGlob(g)).toBe(g);
    }
  });

  it.each([
    ['', /empty/],
    ['*a*b*', /more than 2 "\*"/],
    ['a**', /"\*\*"/],
    ['lock:[a', /not closed/],
    ['lock:[a[b]]', /inside a "\[\.\.\.\]" class/],
    ['[a][b][c][d][e]', /more than 4/],
    [`[${'a'.repeat(40)}]`, /longer than 32/],
    ['lock:\u0001', /control character/],
    ['lock:\\', /lone backslash/],
    [`lock:${'x'.repeat(200)}`, /longer than 200/],
    ['[]', /empty "\[\]"|not closed/],
  ])('refuses %j', (glob, why) => {
    expect(() => validateMatchGlob(glob)).toThrow(why);
  });

  it('escapes plain text so that Redis MATCH takes it literally', async () => {
    const weird = `${uniq('glob')}-a*b?c[d]e\\f`;
    const decoy = `${weird.replace('a*b', 'aXXb')}`;
    await redis.set(weird, '1', 'PX', 60_000);
    await redis.set(decoy, '1', 'PX', 60_000);
    const seen: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', escapeGlob(weird), 'COUNT', 1000);
      cursor = next;
      seen.push(...keys);
    } while (cursor !== '0');
    expect(seen).toEqual([weird]);
    expect(globToRegExp(escapeGlob(weird)).test(weird)).toBe(true);
    expect(globToRegExp(escapeGlob(weird)).test(decoy)).toBe(false);
  });

  it('matches on our side as Redis does', () => {
    const re = globToRegExp('job-lock:[a-c]?:*');
    expect(re.test('job-lock:b1:x:y')).toBe(true);
    expect(re.test('job-lock:d1:x')).toBe(false);
    expect(globToRegExp('x[z-a]').test('xm')).toBe(true); // Redis swaps a reversed range
    expect(globToRegExp('x[^a-c]').test('xb')).toBe(false);
  });

  it('scanForeign refuses an unsafe glob before sending anything', async () => {
    await expect(list(['*a*b*c*'])).rejects.toThrow(/unsafe or invalid key glob/);
  });
});

describe('redis-plain (node-redlock, redis-py, SET NX PX)', () => {
  it('shows a redlock-style 32-hex token with its TTL, never the token itself', async () => {
    const key = `app:${uniq('redlock')}`;
    const token = randomBytes(16).toString('hex');
    await redis.set(key, token, 'PX', 30_000, 'NX');
    const { locks, truncated } = await list([`app:${RUN}-*`], key);
    expect(truncated).toBe(false);
    expect(locks).toHaveLength(1);
    const l = locks[0]!;
    expect(l).toMatchObject({ backend: BACKEND, key, format: 'redis-plain', kind: 'mutex', owner: null, fence: null, health: 'ok', waiters: [] });
    expect(l.ttlMs).toBeGreaterThan(29_000);
    expect(l.ttlMs).toBeLessThanOrEqual(30_000);
    expect(l.expiresAt! - (await serverNow())).toBeGreaterThan(28_000);
    expect(l.meta).toMatchObject({ valueHash: tokenHash(token), tokenShape: 'hex32', likelyClient: 'node-redlock' });
    expectNoRawSecret(l, token);
  });

  it('decodes a redis-py uuid1 token into acquiredAt (first attempt) and says so', async () => {
    const key = uniq('redispy');
    const at = (await serverNow()) - 5000;
    const token = uuid1Hex(at);
    expect(decodeUuid1Hex(token, at)?.ms).toBe(at);
    await redis.set(key, token, 'PX', 20_000, 'NX');
    const l = await inspect(key);
    expect(l).toMatchObject({ format: 'redis-plain', acquiredAt: at, owner: null });
    expect(l!.meta).toMatchObject({ tokenShape: 'uuid1-hex', likelyClient: 'redis-py' });
    expect(String(l!.meta!.acquiredAtSource)).toMatch(/first called/);
    expectNoRawSecret(l, token);
    // The node id (a MAC) is only hashed: with the time it would give away most of the token.
    expect(JSON.stringify(l)).not.toContain(token.slice(20));
  });

  it('shows a lock: key without TTL as possibly orphaned', async () => {
    const key = `lock:${uniq('setnx-no-expire')}`;
    await redis.set(key, 'worker-7', 'NX');
    const l = await inspect(key);
    expect(l).toMatchObject({ format: 'redis-plain', expiresAt: null, ttlMs: null, health: 'orphaned' });
    expect(l!.meta!.noExpiry).toBe(true);
  });

  it('applies the non-lock rule under a broad glob', async () => {
    const p = `data:${uniq('rule')}`;
    const big = JSON.stringify({ cached: 'x'.repeat(700) });
    await redis.set(`${p}:counter`, '17'); // no TTL, not lock-like, no lock name: data
    await redis.set(`${p}:page`, big, 'PX', 60_000); // too long for a lock value
    await redis.set(`${p}:session`, '{"user":1}'); // text without TTL
    await redis.set(`${p}:holder`, 'host-a:4242', 'PX', 60_000); // short text with TTL: a lock
    await redis.set(`${p}:token`, randomUUID()); // token-like value, even without TTL
    await redis.set(`${p}:mutex`, '{"owner":"x"}'); // lock-like name
    await redis.rpush(`${p}:list`, 'a'); // not a string
    await redis.hset(`${p}:hash`, 'a', '1'); // a hash, not Redisson's
    await redis.set(`${OWN}:${p}:own`, randomUUID(), 'PX', 60_000); // lockdeck's own: not ours here
    const { locks } = await list([`data:${RUN}-*`, `${OWN}:data:*`], p);
    expect(locks.map((l) => l.key.slice(p.length + 1)).sort()).toEqual(['holder', 'mutex', 'token']);
    expect(locks.every((l) => l.format === 'redis-plain')).toBe(true);
  });
});

describe('redis-setnx-legacy', () => {
  it('reads the expiry from the value of a key without TTL', async () => {
    const key = `lock.${uniq('legacy')}`;
    const now = await serverNow();
    const until = Math.floor(now / 1000) + 31;
    await redis.setnx(key, String(until));
    const l = await inspect(key);
    expect(l).toMatchObject({ format: 'redis-setnx-legacy', expiresAt: until * 1000, health: 'ok' });
    expect(l!.ttlMs).toBeGreaterThan(29_000);
  });

  it('shows a stale one as expired', async () => {
    const key = `lock.${uniq('legacy-stale')}`;
    await redis.setnx(key, String(Math.floor((await serverNow()) / 1000) - 600));
    expect(await inspect(key)).toMatchObject({ format: 'redis-setnx-legacy', health: 'expired' });
  });

  it('takes a past timestamp under a non-lock name for data, not a lock', async () => {
    const key = `data:${uniq('last-seen')}`;
    await redis.set(key, String(Math.floor((await serverNow()) / 1000) - 600));
    expect(await inspect(key)).toBeNull();
  });
});

describe('python-redis-lock', () => {
  it('recognises lock:<name> with a 24-char base64 id; a forced release pushes the wake-up', async () => {
    const name = uniq('prl');
    const key = `lock:${name}`;
    const id = randomBytes(18).toString('base64');
    await redis.set(key, id, 'EX', 30, 'NX');
    const { locks } = await list(DEFAULT_MATCH, name);
    expect(locks).toHaveLength(1);
    const l = locks[0]!;
    expect(l).toMatchObject({ key, format: 'python-redis-lock', kind: 'mutex', owner: null });
    expect(l.meta).toMatchObject({ name, signalKey: `lock-signal:${name}`, valueHash: tokenHash(id) });
    expectNoRawSecret(l, id);

    // A waiter blocked in BLPOP on the signal list, as python-redis-lock's acquire() does.
    const waiter = new Redis(url);
    extra.push(waiter);
    const woke = waiter.blpop(`lock-signal:${name}`, 10);
    await eventually(async () => ((await redis.client('LIST')) as string).includes('cmd=blpop'), 3000, 'the BLPOP waiter');

    const r = await forceReleaseForeign(redis, BACKEND, key, { valueHash: l.meta!.valueHash as string }, await serverNow());
    expect(r.status).toBe('released');
    expect(await redis.exists(key)).toBe(0);
    expect(await woke).toEqual([`lock-signal:${name}`, '1']);
  });

  it('leaves the signal list with the library\'s short expiry when nobody waits', async () => {
    const name = uniq('prl-nowaiter');
    const id = randomBytes(18).toString('base64');
    await redis.set(`lock:${name}`, id, 'NX');
    expect((await inspect(`lock:${name}`))!.health).toBe('orphaned');
    const r = await forceReleaseForeign(redis, BACKEND, `lock:${name}`, {}, await serverNow());
    expect(r.status).toBe('released');
    expect(await redis.lrange(`lock-signal:${name}`, 0, -1)).toEqual(['1']);
    const pttl = await redis.pttl(`lock-signal:${name}`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(1000);
  });

  it('does not list the signal list itself', async () => {
    const name = uniq('prl-signal');
    await redis.lpush(`lock-signal:${name}`, '1');
    await redis.pexpire(`lock-signal:${name}`, 5000);
    expect((await list(['lock-signal:*'], name)).locks).toEqual([]);
  });
});

describe('Redisson', () => {
  it('recognises an RLock hash: owner uuid:thread, hold count, waiting clients; release publishes 0', async () => {
    const name = `app:${uniq('rlock')}`;
    const client = redissonId();
    // RedissonLock.tryLockInnerAsync: HINCRBY field 1 + PEXPIRE lease (watchdog: 30 s); re-entered once.
    await redis.hincrby(name, `${client}:57`, 1);
    await redis.hincrby(name, `${client}:57`, 1);
    await redis.pexpire(name, 30_000);
    const plain = await listen(`redisson_lock__channel:{${name}}`);
    const sharded = await listen(`redisson_lock__channel:{${name}}`, true);

    const { locks } = await list([`app:${RUN}-*`], name);
    expect(locks).toHaveLength(1);
    const l = locks[0]!;
    expect(l).toMatchObject({ key: name, format: 'redisson-lock', kind: 'mutex', owner: `${client}:57`, fence: null, health: 'ok' });
    expect(l.meta).toMatchObject({ holdCount: 2, clientId: client, threadId: '57', waitingClients: 2 });
    expect(l.waiters).toEqual([
      { owner: null, since: null },
      { owner: null, since: null },
    ]);

    const r = await forceReleaseForeign(redis, BACKEND, name, { owner: `${client}:57` }, await serverNow());
    expect(r).toMatchObject({ status: 'released', lock: { owner: `${client}:57` } });
    expect(await redis.exists(name)).toBe(0);
    await eventually(() => plain.length === 1 && sharded.length === 1, 2000, 'the unlock messages');
    expect([plain, sharded]).toEqual([['0'], ['0']]);
  });

  it('finds an RFencedLock through its token key and shows the fence', async () => {
    const name = uniq('fenced'); // outside every glob: found through redisson_lock_token:{name}
    const field = `${redissonId()}:1`;
    await redis.hincrby(name, field, 1);
    await redis.pexpire(name, 25_000);
    await redis.incrby(`redisson_lock_token:{${name}}`, 42);
    const { locks } = await list(DEFAULT_MATCH, name);
    expect(locks).toHaveLength(1);
    expect(locks[0]).toMatchObject({ key: name, format: 'redisson-lock', fence: '42', owner: field });
    expect(locks[0]!.holders).toEqual([{ owner: field, fence: '42', acquiredAt: null }]);

    expect(await forceReleaseForeign(redis, BACKEND, name, { fence: '41' }, await serverNow())).toMatchObject({ status: 'changed' });
    expect(await redis.exists(name)).toBe(1);
    expect((await forceReleaseForeign(redis, BACKEND, name, { fence: '42' }, await serverNow())).status).toBe('released');
    expect(await redis.get(`redisson_lock_token:{${name}}`)).toBe('42'); // the counter must survive
  });

  it('shows a FairLock queue in order and wakes the head waiter on its own channel', async () => {
    const name = uniq('fair');
    const holder = `${redissonId()}:1`;
    const stale = `${redissonId()}:2`;
    const w1 = `${redissonId()}:3`;
    const w2 = `${redissonId()}:4`;
    const now = await serverNow();
    await redis.hset(name, holder, '1');
    await redis.pexpire(name, 30_000);
    // RedissonFairLock: RPUSH waiter to the queue, ZADD its stale-after time (client clock).
    await redis.rpush(`redisson_lock_queue:{${name}}`, stale, w1, w2);
    await redis.zadd(`redisson_lock_timeout:{${name}}`, now - 1000, stale, now + 330_000, w1, now + 630_000, w2);
    const base = await listen(`redisson_lock__channel:{${name}}`);
    const head = await listen(`redisson_lock__channel:{${name}}:${w1}`);

    const { locks } = await list(DEFAULT_MATCH, name);
    expect(locks).toHaveLength(1);
    const l = locks[0]!;
    expect(l).toMatchObject({ key: name, format: 'redisson-fairlock', owner: holder });
    expect(l.waiters).toEqual([
      { owner: w1, since: null },
      { owner: w2, since: null },
    ]);
    expect(l.meta).toMatchObject({ queueLength: 3, staleWaiters: 1 });

    const r = await forceReleaseForeign(redis, BACKEND, name, { owner: holder }, await serverNow());
    expect(r.status).toBe('released');
    await eventually(() => head.length === 1, 2000, 'the head waiter message');
    expect(head).toEqual(['0']);
    expect(base).toEqual([]);
    // The stale head was pruned as Redisson's own scripts do; live waiters stay queued.
    expect(await redis.lrange(`redisson_lock_queue:{${name}}`, 0, -1)).toEqual([w1, w2]);
  });

  it('shows read locks with every reader and ignores rwlock_timeout and unlock-latch keys', async () => {
    const name = `app:${uniq('rw-read')}`;
    const r1 = `${redissonId()}:11`;
    const r2 = `${redissonId()}:12`;
    // RedissonReadLock.tryLockInnerAsync: mode=read, field=count, `{name}:<field>:rwlock_timeout:<n>` = 1 PX lease.
    await redis.hset(name, 'mode', 'read', r1, '1', r2, '2');
    for (const [f, c] of [[r1, 1], [r2, 1], [r2, 2]] as const) await redis.set(`{${name}}:${f}:rwlock_timeout:${c}`, '1', 'PX', 30_000);
    await redis.pexpire(name, 30_000);
    await redis.set(`redisson_unlock_latch:{${name}}:${randomBytes(16).toString('hex')}`, '1', 'PX', 30_000);
    const channel = await listen(`redisson_rwlock:{${name}}`);

    const { locks } = await list(['*' + escapeGlob(RUN) + '*'], name);
    expect(locks.map((l) => l.key)).toEqual([name]);
    const l = locks[0]!;
    expect(l).toMatchObject({ format: 'redisson-rwlock', kind: 'read', owner: null });
    expect(l.holders.map((h) => h.owner).sort()).toEqual([r1, r2].sort());
    expect(l.meta).toMatchObject({ mode: 'read', waitingClients: 1 });

    const r = await forceReleaseForeign(redis, BACKEND, name, { owner: r2 }, await serverNow());
    expect(r.status).toBe('released');
    await eventually(() => channel.length === 1, 2000, 'the read-unlock message');
    expect(channel).toEqual(['0']);
  });

  it('shows a write lock and publishes READ_UNLOCK_MESSAGE (1) on release, as WriteLock.forceUnlock does', async () => {
    const name = `app:${uniq('rw-write')}`;
    const w = `${redissonId()}:9`;
    await redis.hset(name, 'mode', 'write', `${w}:write`, '1');
    await redis.pexpire(name, 30_000);
    const channel = await listen(`redisson_rwlock:{${name}}`);
    const l = await inspect(name);
    expect(l).toMatchObject({ format: 'redisson-rwlock', kind: 'write', owner: w, holders: [{ owner: w, fence: null, acquiredAt: null }] });
    expect((await forceReleaseForeign(redis, BACKEND, name, {}, await serverNow())).status).toBe('released');
    await eventually(() => channel.length === 1, 2000, 'the write-unlock message');
    expect(channel).toEqual(['1']);
  });

  it('answers changed, and deletes nothing, when another thread holds it now', async () => {
    const name = `app:${uniq('rlock-changed')}`;
    const before = `${redissonId()}:1`;
    const after = `${redissonId()}:2`;
    await redis.hset(name, before, '1');
    await redis.pexpire(name, 30_000);
    const seen = (await inspect(name))!;
    await redis.del(name);
    await redis.hset(name, after, '1');
    await redis.pexpire(name, 30_000);
    const r = await forceReleaseForeign(redis, BACKEND, name, { owner: seen.owner! }, await serverNow());
    expect(r).toMatchObject({ status: 'changed', lock: { owner: after } });
    expect(await redis.hget(name, after)).toBe('1');
  });
});

describe('ShedLock', () => {
  it('reads acquiredAt and the host from the value (6.7.0+ with a lock id)', async () => {
    const name = uniq('report-job');
    const key = `job-lock:default:${name}`;
    const value = `ADDED:2026-03-04T05:06:07.890Z@batch-host-1:${randomUUID()}`;
    await redis.set(key, value, 'PX', 60_000, 'NX');
    const { locks } = await list(DEFAULT_MATCH, name);
    expect(locks).toHaveLength(1);
    expect(locks[0]).toMatchObject({
      key,
      format: 'shedlock',
      owner: 'batch-host-1',
      acquiredAt: Date.parse('2026-03-04T05:06:07.890Z'),
      holders: [{ owner: 'batch-host-1', fence: null, acquiredAt: Date.parse('2026-03-04T05:06:07.890Z') }],
    });
    expect(locks[0]!.meta).toMatchObject({ environment: 'default', lockName: name, version: '6.7.0 or later', valueHash: tokenHash(value) });
    expectNoRawSecret(locks[0], value.slice(value.lastIndexOf(':') + 1));
  });

  it('parses the older value without a lock id and an Instant.toString() fraction', async () => {
    const key = `job-lock:prod:${uniq('old')}`;
    await redis.set(key, 'ADDED:2024-01-02T03:04:05.123456Z@old-host', 'PX', 60_000);
    expect(await inspect(key)).toMatchObject({ format: 'shedlock', owner: 'old-host', acquiredAt: Date.parse('2024-01-02T03:04:05.123Z') });
  });

  it('compare-and-deletes on the full value: a successor\'s lock is left alone', async () => {
    const key = `job-lock:default:${uniq('cas')}`;
    const first = `ADDED:2026-01-01T00:00:00.000Z@host-a:${randomUUID()}`;
    await redis.set(key, first, 'PX', 60_000);
    const seen = (await inspect(key))!;
    const second = `ADDED:2026-01-01T00:01:00.000Z@host-a:${randomUUID()}`;
    await redis.set(key, second, 'PX', 60_000);
    const r = await forceReleaseForeign(redis, BACKEND, key, { owner: seen.owner!, valueHash: seen.meta!.valueHash as string }, await serverNow());
    expect(r.status).toBe('changed');
    expect(await redis.get(key)).toBe(second);
    expect((await forceReleaseForeign(redis, BACKEND, key, { valueHash: tokenHash(second) }, await serverNow())).status).toBe('released');
    expect(await redis.exists(key)).toBe(0);
  });
});

describe('forced release', () => {
  it('never deletes a value that changed between the read and the script', async () => {
    const key = `lock:${uniq('race')}`;
    await redis.set(key, randomBytes(16).toString('hex'), 'PX', 30_000);
    const successor = randomBytes(16).toString('hex');
    // The value changes after our read, just before the script runs.
    const racing: RedisLike = {
      pipeline: (...a) => redis.pipeline(...a),
      eval: (async (...a: Parameters<Redis['eval']>) => {
        await redis.set(key, successor, 'PX', 30_000);
        return redis.eval(...a);
      }) as Redis['eval'],
    };
    const r = await forceReleaseForeign(racing, BACKEND, key, {}, await serverNow());
    expect(r).toMatchObject({ status: 'changed', lock: { meta: { valueHash: tokenHash(successor) } } });
    expect(await redis.get(key)).toBe(successor);
  });

  it('answers not-found for a missing key, a side key or lockdeck\'s own key', async () => {
    const now = await serverNow();
    expect(await forceReleaseForeign(redis, BACKEND, `lock:${uniq('missing')}`, {}, now)).toEqual({ status: 'not-found' });
    const name = uniq('side');
    await redis.set(`redisson_lock_token:{${name}}`, '3');
    expect(await forceReleaseForeign(redis, BACKEND, `redisson_lock_token:{${name}}`, {}, now)).toEqual({ status: 'not-found' });
    expect(await redis.get(`redisson_lock_token:{${name}}`)).toBe('3');
    const own = `${OWN}:{${uniq('own')}}`;
    await redis.set(own, randomUUID(), 'PX', 30_000);
    expect(await forceReleaseForeign(redis, BACKEND, own, {}, now, { ownPrefix: OWN })).toEqual({ status: 'not-found' });
    expect(await redis.exists(own)).toBe(1);
  });

  it('with `match`, refuses to treat a string key outside every glob as a lock', async () => {
    const key = `session:${uniq('not-a-lock')}`;
    await redis.set(key, randomUUID(), 'PX', 30_000);
    const opts = { match: DEFAULT_MATCH };
    expect(await inspect(key, opts)).toBeNull();
    expect(await forceReleaseForeign(redis, BACKEND, key, {}, await serverNow(), opts)).toEqual({ status: 'not-found' });
    expect(await redis.exists(key)).toBe(1);
    expect(await inspect(key, { match: ['session:*'] })).toMatchObject({ format: 'redis-plain' });
  });
});

describe('SCAN bounds', () => {
  let p: string;
  beforeAll(async () => {
    p = `bulk:${uniq('scan')}`;
    const pipe = redis.pipeline();
    for (let i = 0; i < 1000; i++) pipe.set(`${p}:${String(i).padStart(4, '0')}`, randomBytes(16).toString('hex'), 'PX', 120_000);
    await pipe.exec();
  });

  it('lists 1000 locks in a few round trips', async () => {
    let execs = 0;
    const counting: RedisLike = {
      pipeline: (...a) => {
        execs++;
        return redis.pipeline(...a);
      },
      eval: redis.eval.bind(redis) as Redis['eval'],
    };
    const dbsize = await redis.dbsize();
    const scanCount = 10_000;
    const { locks, truncated } = await scanForeign(counting, {
      backendId: BACKEND, match: [`${escapeGlob(p)}:*`], ownPrefix: OWN, now: await serverNow(), scanCount, limit: 5000,
    });
    expect(truncated).toBe(false);
    expect(locks).toHaveLength(1000);
    expect(locks[0]!.key).toBe(`${p}:0000`);
    // One SCAN per round plus TYPE/size and PTTL/value pipelines (no Redisson side-key round here).
    const rounds = Math.ceil(dbsize / scanCount) + 1;
    expect(execs).toBeLessThanOrEqual(rounds * 3);
  });

  it('stops at maxKeysScanned and says truncated', async () => {
    const { locks, truncated } = await list([`${escapeGlob(p)}:*`], '', { scanCount: 10, maxKeysScanned: 30 });
    expect(truncated).toBe(true);
    expect(locks.length).toBeLessThan(1000);
  });

  it('stops at the limit and says truncated', async () => {
    const { locks, truncated } = await list([`${escapeGlob(p)}:*`], '', { limit: 7 });
    expect(truncated).toBe(true);
    expect(locks).toHaveLength(7);
  });

  it('filters by plain-text q, case-insensitively, with glob characters taken literally', async () => {
    expect((await list([`${escapeGlob(p)}:*`], `${p}:012`.toUpperCase())).locks.map((l) => l.key)).toEqual(
      Array.from({ length: 10 }, (_, i) => `${p}:012${i}`),
    );
    expect((await list([`${escapeGlob(p)}:*`], `${p}:*`)).locks).toEqual([]);
  });

  it('reports a key matched by several globs once', async () => {
    const { locks } = await list([`${escapeGlob(p)}:000*`, `${escapeGlob(p)}:00*`], '');
    expect(locks.map((l) => l.key)).toEqual(Array.from({ length: 100 }, (_, i) => `${p}:${String(i).padStart(4, '0')}`));
  });
});

describe('real clients', () => {
  const fixture = fileURLToPath(new URL('./fixtures/redis-py-lock.py', import.meta.url));

  /** Runs the redis-py fixture; resolves once it printed ACQUIRED. */
  async function pyLock(name: string, timeout: string) {
    const child: ChildProcessWithoutNullStreams = spawn('/usr/bin/python3', [fixture, url, name, timeout]);
    const lines: string[] = [];
    let buf = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      lines.push(...parts);
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const nextLine = async (i: number) => {
      await eventually(() => lines.length > i || child.exitCode !== null, 10_000, `line ${i} from redis-py (stderr: ${stderr})`);
      if (lines.length <= i) throw new Error(`redis-py fixture exited: ${stderr}`);
      return lines[i]!;
    };
    expect(await nextLine(0)).toBe('ACQUIRED');
    return {
      async release(): Promise<string> {
        child.stdin.write('release\n');
        const line = await nextLine(1);
        child.stdin.end();
        return line;
      },
    };
  }

  it('redis-py: found under match with its TTL; a forced release makes release() raise LockNotOwnedError', async () => {
    const name = `pyapp:${uniq('py')}`;
    const before = await serverNow();
    const held = await pyLock(name, '10');
    const { locks } = await list(['pyapp:*'], name);
    expect(locks).toHaveLength(1);
    const l = locks[0]!;
    expect(l).toMatchObject({ key: name, format: 'redis-plain', owner: null, health: 'ok' });
    expect(l.meta).toMatchObject({ tokenShape: 'uuid1-hex', likelyClient: 'redis-py' });
    expect(l.ttlMs).toBeGreaterThan(8000);
    expect(l.ttlMs).toBeLessThanOrEqual(10_000);
    // uuid1 time is the Python process's clock; same machine, so within a couple of seconds.
    expect(Math.abs(l.acquiredAt! - before)).toBeLessThan(3000);
    const token = (await redis.get(name))!;
    expectNoRawSecret(l, token);

    const r = await forceReleaseForeign(redis, BACKEND, name, { valueHash: l.meta!.valueHash as string }, await serverNow());
    expect(r.status).toBe('released');
    expect(await held.release()).toBe('NOT_OWNED');
  });

  it('redis-py with timeout=None: no expiry, shown as orphaned', async () => {
    const name = `pyapp:${uniq('py-forever')}`;
    const held = await pyLock(name, 'none');
    const l = await inspect(name, { match: ['pyapp:*'] });
    expect(l).toMatchObject({ format: 'redis-plain', expiresAt: null, ttlMs: null, health: 'orphaned' });
    expect(await held.release()).toBe('RELEASED');
    expect(await inspect(name)).toBeNull();
  });

  it('node-redlock: a forced release aborts the using() routine at its next extension', async () => {
    const key = `jobs:${uniq('redlock')}`;
    const client = new Redis(url);
    extra.push(client);
    const redlock = new Redlock([client], { retryCount: 2, retryDelay: 50, retryJitter: 10 });
    redlock.on('error', () => undefined); // the refused extensions are reported here too
    let listed: LockInfo | undefined;
    let result: string | undefined;
    const running = redlock
      .using([key], 1000, async (signal) => {
        const { locks } = await list(['jobs:*'], key);
        listed = locks[0];
        const r = await forceReleaseForeign(redis, BACKEND, key, { valueHash: listed!.meta!.valueHash as string }, await serverNow());
        expect(r.status).toBe('released');
        const t0 = Date.now();
        while (!signal.aborted && Date.now() - t0 < 5000) await new Promise((res) => setTimeout(res, 20));
        result = signal.aborted ? `aborted after ${Date.now() - t0} ms` : 'not aborted';
      })
      // Its final release finds the lock gone and rejects; the routine's outcome is what we check.
      .catch(() => undefined);
    await running;
    expect(listed).toMatchObject({ key, format: 'redis-plain', owner: null, meta: { tokenShape: 'hex32', likelyClient: 'node-redlock' } });
    expect(listed!.ttlMs).toBeLessThanOrEqual(1000);
    expect(result).toMatch(/^aborted/);
  });
});
