/**
 * lockdeck's ZooKeeper mutex and inspector against real foreign clients on the same paths:
 * kazoo (Python) and Apache Curator (Java).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';

import { createZooKeeperBackend } from '../lib/backends/zookeeper';
import { compareFences, type LockBackend, type LockChange } from '../lib/locks';
import { randomId } from '../lib/locks/util';
import { eventually } from './contract';
import { compileCurator, curator, kazoo, type Peer } from './fixtures/zk-peers';

const root = `/interop-${randomId(4).replace(/[^A-Za-z0-9]/g, 'x')}`;
let n = 0;
const path = (label: string) => `${root}/${++n}-${label}`;

let connect: string;
let a: LockBackend;
let b: LockBackend;
const peers: Peer[] = [];
const track = (p: Peer) => (peers.push(p), p);

beforeAll(() => {
  connect = inject('zookeeperConnect');
  a = createZooKeeperBackend({ id: 'zk', type: 'zookeeper', connect, roots: [root] });
  b = createZooKeeperBackend({ id: 'zk', type: 'zookeeper', connect, roots: [root] });
});

afterAll(async () => {
  await Promise.all(peers.map((p) => p.stop()));
  await Promise.all([a?.close(), b?.close()]);
});

describe('ZooKeeper interop with kazoo', { timeout: 60_000 }, () => {
  it('a kazoo Lock holder and a lockdeck waiter exclude each other; the waiter gets the lock when kazoo lets go', async () => {
    const p = path('kazoo-first');
    const seen: LockChange[] = [];
    const stop = b.watch((c) => c.key === p && seen.push(c));
    try {
      const k = track(kazoo(connect, 'lock', p, 'kazoo-holder'));
      await k.line('acquired');
      expect(await a.tryAcquire(p)).toBeNull();
      let got = false;
      const waiting = a.acquire(p, { waitMs: 30_000, owner: 'lockdeck-waiter' }).then((h) => ((got = true), h));
      await eventually(async () => ((await b.get(p))?.waiters.length ?? 0) === 1, 10_000, 'lockdeck waiter queued');
      const info = (await b.get(p))!;
      expect(info).toMatchObject({ key: p, format: 'kazoo-lock', kind: 'mutex', health: 'ok', ttlMs: null, expiresAt: null });
      expect(info.owner).toMatch(/^kazoo-holder \(session 0x[0-9a-f]{16}\)$/);
      expect(info.waiters[0]!.owner).toBe('lockdeck-waiter');
      expect(info.meta?.session).toMatch(/^0x[0-9a-f]{16}$/);
      expect(typeof info.acquiredAt).toBe('number');
      await new Promise((r) => setTimeout(r, 200));
      expect(got).toBe(false);
      k.send('release');
      const h = await waiting;
      expect(compareFences(h.fence, info.fence!)).toBe(1);
      expect((await b.get(p))?.format).toBe('lockdeck');
      await eventually(() => seen.some((c) => c.type === 'released') && seen.some((c) => c.type === 'acquired' && c.lock?.format === 'lockdeck'), 5000, 'watch events');
      await h.release();
      await k.stop();
    } finally {
      stop();
    }
  });

  it('a lockdeck holder blocks a kazoo Lock that counts "-lock-" contenders (extra_lock_patterns)', async () => {
    const p = path('lockdeck-first');
    const h = await a.acquire(p, { owner: 'lockdeck-holder' });
    const k = track(kazoo(connect, 'lock', p, 'kazoo-waiter', { extra_lock_patterns: ['-lock-'] }));
    await k.line('contending');
    await eventually(async () => ((await b.get(p))?.waiters.length ?? 0) === 1, 10_000, 'kazoo waiter queued');
    const info = (await b.get(p))!;
    expect(info.format).toBe('lockdeck');
    expect(info.owner).toBe('lockdeck-holder');
    expect(info.waiters[0]!.owner).toMatch(/^kazoo-waiter \(session/);
    await new Promise((r) => setTimeout(r, 300));
    expect(k.has('acquired')).toBe(false);
    await h.release();
    await k.line('acquired', 10_000);
    expect((await b.get(p))?.format).toBe('kazoo-lock');
    await k.stop();
  });

  it('a forced release of the kazoo holder hands the lock to the next waiter', async () => {
    const p = path('forced');
    const k = track(kazoo(connect, 'lock', p, 'stuck-holder'));
    await k.line('acquired');
    const waiting = a.acquire(p, { waitMs: 30_000 });
    await eventually(async () => ((await b.get(p))?.waiters.length ?? 0) === 1, 10_000, 'waiter queued');
    const seen = (await b.get(p))!;
    expect((await b.forceRelease(p, { fence: String(Number(seen.fence) + 1) })).status).toBe('changed');
    const res = await b.forceRelease(p, { fence: seen.fence!, owner: seen.owner! });
    expect(res.status).toBe('released');
    if (res.status === 'released') expect(String(res.lock.meta?.notice)).toMatch(/cannot tell a foreign holder/);
    const h = await waiting;
    expect(compareFences(h.fence, seen.fence!)).toBe(1);
    // The parent stays: only the holder node was deleted.
    expect((await b.get(p))?.fence).toBe(h.fence);
    await h.release();
    await k.stop();
  });

  it('a forced release of a stuck kazoo holder hands the lock to the next kazoo waiter', async () => {
    const p = path('kazoo-forced');
    const stuck = track(kazoo(connect, 'lock', p, 'stuck'));
    await stuck.line('acquired');
    const next = track(kazoo(connect, 'lock', p, 'next-in-line'));
    await next.line('contending');
    await eventually(async () => ((await b.get(p))?.waiters.length ?? 0) === 1, 10_000, 'kazoo waiter queued');
    const seen = (await b.get(p))!;
    expect(seen.waiters[0]!.owner).toMatch(/^next-in-line /);
    expect((await b.forceRelease(p, { fence: seen.fence!, owner: seen.owner! })).status).toBe('released');
    await next.line('acquired', 10_000);
    expect((await b.get(p))?.owner).toMatch(/^next-in-line /);
    await Promise.all([stuck.stop(), next.stop()]);
  });

  it('shows kazoo read/write locks, semaphores, plain ephemeral and persistent (orphaned) locks', async () => {
    const rw = path('rw');
    const r1 = track(kazoo(connect, 'rlock', rw, 'reader-1'));
    const r2 = track(kazoo(connect, 'rlock', rw, 'reader-2'));
    await Promise.all([r1.line('acquired'), r2.line('acquired')]);
    const w = track(kazoo(connect, 'wlock', rw, 'writer'));
    await w.line('contending');
    await eventually(async () => ((await b.get(rw))?.waiters.length ?? 0) === 1, 10_000, 'writer queued');
    const rwInfo = (await b.get(rw))!;
    expect(rwInfo).toMatchObject({ format: 'kazoo-rwlock', kind: 'read' });
    expect(rwInfo.holders.map((h) => h.owner?.split(' ')[0]).sort()).toEqual(['reader-1', 'reader-2']);
    expect(rwInfo.waiters[0]!.owner).toMatch(/^writer /);

    const sem = path('sem');
    const s = track(kazoo(connect, 'semaphore', sem, 'sem-holder', { max_leases: 2 }));
    await s.line('acquired');
    const semInfo = (await b.get(sem))!;
    expect(semInfo).toMatchObject({ key: sem, format: 'kazoo-semaphore', kind: 'semaphore' });
    expect(semInfo.meta?.maxLeases).toBe('2');
    expect(semInfo.owner).toMatch(/^sem-holder /);

    const eph = path('plain');
    const e = track(kazoo(connect, 'ephemeral', eph, 'plain-owner'));
    await e.line('acquired');
    const ephInfo = (await b.get(eph))!;
    expect(ephInfo).toMatchObject({ key: eph, format: 'ephemeral', kind: 'mutex', health: 'ok' });
    expect(ephInfo.owner).toMatch(/^plain-owner \(session 0x/);

    const pers = path('persistent');
    const pk = track(kazoo(connect, 'persistent-lock', pers, 'gone-for-good'));
    await pk.line('acquired');
    await pk.stop(); // its session ends; the persistent sequential node stays
    const persInfo = (await b.get(pers))!;
    expect(persInfo).toMatchObject({ format: 'kazoo-lock', health: 'orphaned', owner: 'gone-for-good' });
    expect(persInfo.meta?.session).toBeNull();

    const keys = (await b.list()).map((l) => l.key);
    expect(keys).toEqual(expect.arrayContaining([rw, sem, eph, pers]));
    expect((await b.list({ q: 'PLAIN' })).map((l) => l.key)).toEqual([eph]);

    // Force-release of a plain ephemeral node (fence = czxid) and of the orphan.
    expect((await b.forceRelease(eph, { fence: ephInfo.fence! })).status).toBe('released');
    expect(await b.get(eph)).toBeNull();
    expect((await b.forceRelease(pers, { fence: persInfo.fence! })).status).toBe('released');
    expect(await b.get(pers)).toBeNull();

    // The writer gets the lock once both readers let go.
    r1.send('release');
    r2.send('release');
    await w.line('acquired', 10_000);
    // kazoo's WriteLock names its nodes like a plain Lock: alone, it reads as a mutex.
    expect(await b.get(rw)).toMatchObject({ format: 'kazoo-lock', kind: 'mutex', waiters: [] });
    await Promise.all([r1.stop(), r2.stop(), w.stop(), s.stop(), e.stop()]);
  });
});

describe('ZooKeeper interop with kazoo NonBlockingLease', { timeout: 60_000 }, () => {
  it('shows the lease with its wall-clock expiry; a forced release lets another client take it before its end', async () => {
    const p = path('lease');
    const first = track(kazoo(connect, 'lease', p, 'nightly-on-host-a', { seconds: 600 }));
    await first.line('acquired');
    const info = (await b.get(p))!;
    expect(info).toMatchObject({ key: p, format: 'kazoo-lease', kind: 'mutex', owner: 'nightly-on-host-a', health: 'ok', waiters: [] });
    // `end` has whole seconds from the writer's clock: within a few seconds of now + 600 s.
    expect(Math.abs(info.expiresAt! - (Date.now() + 600_000))).toBeLessThan(5000);
    expect(info.ttlMs!).toBeGreaterThan(590_000);
    expect((await b.list()).filter((l) => l.key === p)).toHaveLength(1);
    const other = track(kazoo(connect, 'lease', p, 'nightly-on-host-b', { seconds: 600 }));
    await other.line('not-obtained');
    expect((await b.forceRelease(p, { fence: String(BigInt(info.fence!) + 1n) })).status).toBe('changed');
    expect((await b.forceRelease(p, { fence: info.fence!, owner: 'nightly-on-host-a' })).status).toBe('released');
    expect(await b.get(p)).toBeNull();
    const third = track(kazoo(connect, 'lease', p, 'nightly-on-host-b', { seconds: 1 }));
    await third.line('acquired');
    expect((await b.get(p))?.owner).toBe('nightly-on-host-b');
    // Past its end the node stays until someone takes over: shown as expired.
    await eventually(async () => (await b.get(p))?.health === 'expired', 5000, 'lease shown expired');
    await Promise.all([first.stop(), other.stop(), third.stop()]);
  });
});

describe('ZooKeeper interop with Curator', { timeout: 90_000 }, () => {
  let classpath: string;
  let dispose = () => {};
  beforeAll(() => {
    ({ classpath, dispose } = compileCurator());
  });
  afterAll(() => dispose());

  it('a Curator InterProcessMutex holder and a lockdeck waiter exclude each other', async () => {
    const p = path('curator-first');
    const c = track(curator(classpath, connect, 'mutex', p));
    const node = (await c.line('acquired', 30_000)).slice('acquired '.length);
    expect(node).toMatch(/\/_c_[0-9a-f-]{36}-lock-\d{10}$/);
    expect(await a.tryAcquire(p)).toBeNull();
    const waiting = a.acquire(p, { waitMs: 30_000, owner: 'after-curator' });
    await eventually(async () => ((await b.get(p))?.waiters.length ?? 0) === 1, 10_000, 'waiter queued');
    const info = (await b.get(p))!;
    // Curator's default node data is the client's IP address, as text.
    expect(info).toMatchObject({ format: 'curator-mutex', kind: 'mutex', meta: expect.objectContaining({ node: node.split('/').pop() }) });
    expect(info.owner).toMatch(/^[0-9a-f.:]+ \(session 0x[0-9a-f]{16}\)$/);
    c.send('release');
    const h = await waiting;
    expect(compareFences(h.fence, info.fence!)).toBe(1);
    await h.release();
    await c.stop();
  });

  it('a lockdeck holder blocks a Curator InterProcessMutex until it releases', async () => {
    const p = path('lockdeck-then-curator');
    const h = await a.acquire(p, { owner: 'before-curator' });
    const c = track(curator(classpath, connect, 'mutex', p));
    await c.line('contending', 30_000);
    await eventually(async () => ((await b.get(p))?.waiters.length ?? 0) === 1, 20_000, 'Curator waiter queued');
    expect((await b.get(p))?.owner).toBe('before-curator');
    await new Promise((r) => setTimeout(r, 300));
    expect(c.has('acquired')).toBe(false);
    await h.release();
    await c.line('acquired', 10_000);
    expect((await b.get(p))?.format).toBe('curator-mutex');
    await c.stop();
  });

  it('a forced release of a stuck Curator holder hands the lock to the next Curator waiter', async () => {
    const p = path('curator-forced');
    const stuck = track(curator(classpath, connect, 'mutex', p));
    await stuck.line('acquired', 30_000);
    const next = track(curator(classpath, connect, 'mutex', p));
    await next.line('contending', 30_000);
    await eventually(async () => ((await b.get(p))?.waiters.length ?? 0) === 1, 20_000, 'Curator waiter queued');
    const seen = (await b.get(p))!;
    expect((await b.forceRelease(p, { fence: seen.fence!, owner: seen.owner! })).status).toBe('released');
    // The waiter's own watch on the deleted node wakes it; the stuck holder was not told.
    await next.line('acquired', 10_000);
    expect(stuck.has('released')).toBe(false);
    const now = (await b.get(p))!;
    expect(now.format).toBe('curator-mutex');
    expect(compareFences(now.fence!, seen.fence!)).toBe(1);
    await Promise.all([stuck.stop(), next.stop()]);
  });

  it('shows Curator read-write locks and SemaphoreV2 leases', async () => {
    const rw = path('curator-rw');
    const r = track(curator(classpath, connect, 'read', rw));
    await r.line('acquired', 30_000);
    const w = track(curator(classpath, connect, 'write', rw));
    await w.line('contending', 30_000);
    await eventually(async () => ((await b.get(rw))?.waiters.length ?? 0) === 1, 20_000, 'writer queued');
    expect(await b.get(rw)).toMatchObject({ format: 'curator-rwlock', kind: 'read' });
    // Our mutex on the same path queues behind both, like a writer.
    expect(await a.tryAcquire(rw)).toBeNull();
    r.send('release');
    await w.line('acquired', 10_000);
    expect(await b.get(rw)).toMatchObject({ format: 'curator-rwlock', kind: 'write', waiters: [] });

    // A SemaphoreV2 (1 lease) shows at the path it was given, its queue in locks/ as waiters.
    const sem = path('curator-sem');
    const s = track(curator(classpath, connect, 'semaphore', sem));
    await s.line('acquired', 30_000);
    const s2 = track(curator(classpath, connect, 'semaphore', sem));
    await s2.line('contending', 30_000);
    await eventually(async () => ((await b.get(sem))?.waiters.length ?? 0) === 1 || ((await b.get(sem))?.holders.length ?? 0) === 2, 20_000, 'second acquirer queued');
    const semInfo = (await b.get(sem))!;
    expect(semInfo).toMatchObject({ key: sem, format: 'curator-semaphore', kind: 'semaphore' });
    expect(semInfo.meta?.leasesDir).toBe(`${sem}/leases`);
    expect(await b.get(`${sem}/locks`)).toBeNull();
    const listed = (await b.list({ q: 'curator-sem' })).filter((l) => l.key.startsWith(sem));
    expect(listed.map((l) => l.key)).toEqual([sem]);
    s.send('release');
    await s2.line('acquired', 10_000);
    await eventually(async () => (await b.get(sem))?.holders.length === 1 && (await b.get(sem))?.waiters.length === 0, 10_000, 'handed over');
    await Promise.all([r.stop(), w.stop(), s.stop(), s2.stop()]);
  });
});
