/**
 * The ZooKeeper backend beyond the contract: the layout rules, big parents, name validation.
 */
import zookeeper from 'node-zookeeper-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';

import { createBackend } from '../lib/backends';
import { createZooKeeperBackend } from '../lib/backends/zookeeper';
import { arrange, contendersOf } from '../lib/backends/zookeeper/layout';
import { InvalidArgumentError, LockLostError, type LockBackend, type LockChange } from '../lib/locks';
import { randomId } from '../lib/locks/util';
import { eventually } from './contract';
import { FaultProxy } from '../torture/proxy';
import { startTcpProxy } from './support/tcp-proxy';
import { connectRaw, rawCall } from './support/zk-raw';

const seq = (n: number) => String(n).padStart(10, '0');

describe('ZooKeeper lock layouts', () => {
  it('a writer holds only when lowest; readers hold until the first writer; leases all hold', () => {
    const order = (names: string[]) => {
      const { holders, waiters } = arrange(contendersOf(names).contenders);
      return { holders: holders.map((c) => c.name), waiters: waiters.map((c) => c.name) };
    };
    expect(order([`_c_b-lock-${seq(3)}`, `_c_a-lock-${seq(1)}`, `x__lock__${seq(2)}`])).toEqual({
      holders: [`_c_a-lock-${seq(1)}`],
      waiters: [`x__lock__${seq(2)}`, `_c_b-lock-${seq(3)}`],
    });
    expect(order([`r1__rlock__${seq(1)}`, `r2__rlock__${seq(2)}`, `w__lock__${seq(3)}`, `r3__rlock__${seq(4)}`])).toEqual({
      holders: [`r1__rlock__${seq(1)}`, `r2__rlock__${seq(2)}`],
      waiters: [`w__lock__${seq(3)}`, `r3__rlock__${seq(4)}`],
    });
    // Curator's downgrade: a read node re-using its write node's sequence holds with it.
    expect(order([`_c_u-__WRIT__${seq(5)}`, `_c_u-__READ__${seq(5)}`, `_c_v-__READ__${seq(6)}`])).toEqual({
      holders: [`_c_u-__WRIT__${seq(5)}`, `_c_u-__READ__${seq(5)}`],
      waiters: [`_c_v-__READ__${seq(6)}`],
    });
    expect(order([`_c_a-lease-${seq(1)}`, `_c_b-lease-${seq(2)}`]).holders).toHaveLength(2);
    expect(contendersOf(['leases', 'locks', `_c_x-latch-${seq(1)}`]).contenders).toEqual([]);
  });
});

describe('ZooKeeper backend', { timeout: 60_000 }, () => {
  const root = `/zk-${randomId(4).replace(/[^A-Za-z0-9]/g, 'x')}`;
  let connect: string;
  let zk: LockBackend;
  let raw: zookeeper.Client;


  beforeAll(async () => {
    connect = inject('zookeeperConnect');
    zk = createZooKeeperBackend({ id: 'zk', type: 'zookeeper', connect, roots: [root] });
    raw = await connectRaw(connect);
  });

  afterAll(async () => {
    await zk?.close();
    raw?.close();
  });

  it('is created by the registry from its configuration', async () => {
    const b = createBackend({ id: 'zk-reg', type: 'zookeeper', connect, roots: [root] });
    expect(b.type).toBe('zookeeper');
    expect(b.capabilities).toMatchObject({ ttl: false, fencing: true, fifo: true, notifiesHolderOnForce: true });
    expect(await b.ping()).toBeLessThan(1000);
    await b.close();
  });

  it('takes relative names under the first root and refuses paths ZooKeeper would refuse', async () => {
    const h = await zk.acquire('jobs/nightly', { ttlMs: 5000 });
    const info = await zk.get(`${root}/jobs/nightly`);
    expect(info?.key).toBe(`${root}/jobs/nightly`);
    expect((await zk.get('jobs/nightly'))?.fence).toBe(h.fence);
    // Curator-compatible node name.
    expect(String(info?.meta?.node)).toMatch(/^_c_[0-9a-f-]{36}-lock-\d{10}$/);
    await h.release();
    await expect(zk.acquire('/a//b')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(zk.acquire('/a/../b')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(zk.acquire('a/')).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('reads a parent with 20,000 contenders once, showing the first waiters, and skips one over the bound', async () => {
    const p = `${root}/big`;
    await rawCall<string>((cb) => raw.mkdirp(p, cb));
    const total = 20_000;
    // Persistent sequential kazoo-style contenders, 1000 per multi request.
    for (let i = 0; i < total; i += 1000) {
      const tx = raw.transaction();
      for (let j = 0; j < 1000; j++) tx.create(`${p}/${'ab'.repeat(16)}__lock__`, Buffer.from(`c${i + j}`), zookeeper.CreateMode.PERSISTENT_SEQUENTIAL);
      await rawCall((cb) => tx.commit(cb));
    }
    try {
      const t0 = performance.now();
      const info = (await zk.get(p))!;
      const ms = performance.now() - t0;
      expect(info).toMatchObject({ format: 'kazoo-lock', owner: 'c0', health: 'orphaned' });
      expect(info.waiters).toHaveLength(100);
      expect(info.meta).toMatchObject({ contenders: total, waitersTotal: total - 1 });
      expect(ms).toBeLessThan(5000);

      const bounded = createZooKeeperBackend({ id: 'zk', type: 'zookeeper', connect, roots: [root] }, { maxChildren: 5000 });
      try {
        const listed = await bounded.list({ q: 'big' });
        expect(listed).toHaveLength(1);
        expect(listed[0]).toMatchObject({ key: p, format: 'unknown', health: 'unknown' });
        expect(String(listed[0]!.meta?.warning)).toMatch(/20000 children: over the bound of 5000/);
      } finally {
        await bounded.close();
      }
    } finally {
      const children = await rawCall<string[]>((cb) => raw.getChildren(p, cb));
      for (let i = 0; i < children.length; i += 1000) {
        const tx = raw.transaction();
        for (const c of children.slice(i, i + 1000)) tx.remove(`${p}/${c}`, -1);
        await rawCall((cb) => tx.commit(cb));
      }
    }
  });

  it('lists more lock parents than one read wave, nested, in walk order; limit and the visit bound cut it', async () => {
    // 300 lock parents under wave/a and 3 under wave/b: list() reads 256 directories at a time.
    const sub = `${root}/wave`;
    const held = [];
    try {
      for (let i = 0; i < 300; i += 50) held.push(...(await Promise.all(Array.from({ length: 50 }, (_, j) => zk.acquire(`wave/a/l${String(i + j).padStart(3, '0')}`, { ttlMs: 60_000 })))));
      for (let i = 0; i < 3; i++) held.push(await zk.acquire(`wave/b/l${i}`, { ttlMs: 60_000 }));
      const keys = (await zk.list({ q: '/wave/', limit: 10_000 })).map((l) => l.key);
      expect(new Set(keys).size).toBe(303);
      // Breadth-first: every lock under a and b, each directory's children in the order read.
      const underA = await rawCall<string[]>((cb) => raw.getChildren(`${sub}/a`, cb));
      expect(keys.filter((k) => k.startsWith(`${sub}/a/`))).toEqual(underA.map((c) => `${sub}/a/${c}`));
      expect((await zk.list({ q: '/wave/', limit: 7 })).map((l) => l.key)).toEqual(keys.slice(0, 7));

      // Bound of 100 directories: a warning row where the walk stopped, and nothing past it.
      const bounded = createZooKeeperBackend({ id: 'zk', type: 'zookeeper', connect, roots: [sub] }, { maxNodes: 100 });
      try {
        const listed = await bounded.list({ limit: 10_000 });
        const warnings = listed.filter((l) => l.format === 'unknown');
        expect(warnings).toHaveLength(1);
        expect(String(warnings[0]!.meta?.warning)).toMatch(/visited its bound of 100 nodes/);
        // root, a and b, then 97 lock parents of a: the 98th directory is where it stopped, and
        // the warning comes last, naming it.
        expect(listed.filter((l) => l.format !== 'unknown')).toHaveLength(97);
        expect(listed.at(-1)).toMatchObject({ key: `${sub}/a/${underA[97]}`, format: 'unknown' });
        // A limit reached before the bound: that many locks, and no warning.
        const cut = await bounded.list({ limit: 50 });
        expect(cut).toHaveLength(50);
        expect(cut.every((l) => l.format !== 'unknown')).toBe(true);
      } finally {
        await bounded.close();
      }
    } finally {
      await Promise.all(held.map((h) => h.release()));
    }
  });

  it('reports a forced release to watchers as forced, and the next waiter gets the lock', async () => {
    const other = createZooKeeperBackend({ id: 'zk', type: 'zookeeper', connect, roots: [root] });
    const seen: LockChange[] = [];
    const k = `${root}/watched/forced`;
    const stop = zk.watch((c) => c.key === k && seen.push(c));
    try {
      await new Promise((r) => setTimeout(r, 100));
      const h = await other.acquire(k);
      const waiting = other.acquire(k, { waitMs: 10_000 });
      await eventually(() => seen.some((c) => c.type === 'acquired'), 5000, 'acquired event');
      const res = await zk.forceRelease(k, { fence: h.fence });
      expect(res.status).toBe('released');
      await eventually(() => h.signal.aborted, 2000, 'holder told');
      expect((h.signal.reason as LockLostError).reason).toBe('forced');
      const next = await waiting;
      await eventually(() => seen.some((c) => c.type === 'forced') && seen.filter((c) => c.type === 'acquired').length === 2, 5000, 'forced event');
      expect(seen.find((c) => c.type === 'forced')!.lock?.fence).toBe(h.fence);
      await next.release();
    } finally {
      stop();
      await other.close();
    }
  });

  it('an expired session marks holders lost and fails waiters; a new session takes locks again', async () => {
    // The victim reaches the server through a proxy that the test cuts for longer than the
    // session timeout: the server expires the session, and the victim learns it on reconnecting.
    const proxy = await startTcpProxy(connect);
    const victim = createBackend({ id: 'zk', type: 'zookeeper', connect: proxy.address, roots: [root], sessionTimeoutMs: 2000 });
    const other = createZooKeeperBackend({ id: 'zk', type: 'zookeeper', connect, roots: [root] });
    try {
      const h = await victim.acquire('expiry/held');
      const blocker = await other.acquire('expiry/queued');
      const waiting = victim.acquire('expiry/queued', { waitMs: 60_000 });
      const waitFailed = waiting.then(() => null, (e: unknown) => e);
      await eventually(async () => ((await other.get('expiry/queued'))?.waiters.length ?? 0) === 1, 5000, 'victim queued');
      proxy.cut();
      // Suspended connection: lost until proven otherwise.
      await eventually(() => h.signal.aborted, 5000, 'holder told');
      expect((h.signal.reason as LockLostError).reason).toBe('session-lost');
      // The server expires the session (2 s) and deletes its ephemeral nodes: the lock is free.
      await eventually(async () => (await other.get('expiry/held')) === null, 15_000, 'expired node gone');
      const next = await other.tryAcquire('expiry/held');
      expect(next).not.toBeNull();
      expect(Number(next!.fence)).toBeGreaterThan(Number(h.fence));
      proxy.heal();
      expect(String(await waitFailed)).toMatch(/session expired/);
      await next!.release();
      await blocker.release();
      // The victim carries on with a new session.
      const again = await victim.acquire('expiry/held', { waitMs: 10_000 });
      expect(again.held).toBe(true);
      await again.release();
    } finally {
      await Promise.all([victim.close(), other.close()]);
      await proxy.close();
    }
  });

  it('regression (torture: ensemble leader kill): a lock lost or released while the connection is down is deleted once it is back', async () => {
    // Before: the delete failed with CONNECTION_LOSS and was dropped; the session survived the
    // blip, so its node held the lock for nobody until the process exited (waiters timed out).
    const proxy = await startTcpProxy(connect);
    const holder = createZooKeeperBackend({ id: 'zk', type: 'zookeeper', connect: proxy.address, roots: [root] }, { sessionTimeoutMs: 20_000, opTimeoutMs: 1000 });
    const other = createZooKeeperBackend({ id: 'zk', type: 'zookeeper', connect, roots: [root] });
    try {
      const h = await holder.acquire('blip/held');
      proxy.cut();
      await eventually(() => h.signal.aborted, 5000, 'holder told');
      await h.release(); // a no-op for a lost handle; the backend owes the delete
      await new Promise((r) => setTimeout(r, 1500)); // the queued delete times out meanwhile
      expect(await other.tryAcquire('blip/held')).toBeNull(); // its node is still there
      proxy.heal();
      // Reconnected with the same session (20 s): the node goes, the lock is free.
      await eventually(async () => (await other.get('blip/held')) === null, 10_000, 'node deleted after reconnect');
      const next = await other.tryAcquire('blip/held');
      expect(next).not.toBeNull();
      await next!.release();
    } finally {
      await Promise.all([holder.close(), other.close()]);
      await proxy.close();
    }
  });

  it('regression (torture: net-loss): a waiter that waited longer than its TTL gets a live lock', async () => {
    // Before: the local lease started when acquire() was called, so a waiter that waited over
    // its TTL got a handle whose lease had already run out: lost on the next tick.
    const other = createZooKeeperBackend({ id: 'zk', type: 'zookeeper', connect, roots: [root] });
    try {
      const first = await zk.acquire('long-wait', { ttlMs: 500 });
      const waiting = other.acquire('long-wait', { ttlMs: 500, waitMs: 10_000 });
      await new Promise((r) => setTimeout(r, 1200)); // held (and renewed) for over twice the TTL
      await first.release();
      const h = await waiting;
      await new Promise((r) => setTimeout(r, 100));
      expect(h.signal.aborted).toBe(false);
      expect(h.held).toBe(true);
      expect((await other.get('long-wait'))?.fence).toBe(h.fence);
      await h.release();
    } finally {
      await other.close();
    }
  });

  it('regression (torture: net-loss): a waiter whose re-check timed out on a live connection looks again', async () => {
    // Before: a getChildren that got no answer within opTimeoutMs (slow link, connection up) was
    // taken for a connection loss, and the waiter waited for a reconnect that never came: once
    // first in line, it held the lock for nobody until its waitMs ran out.
    const proxy = new FaultProxy('127.0.0.1', Number(connect.slice(connect.lastIndexOf(':') + 1)));
    const port = await proxy.start();
    const opts = { sessionTimeoutMs: 15_000, opTimeoutMs: 1000 };
    const holder = createZooKeeperBackend({ id: 'zk', type: 'zookeeper', connect, roots: [root] }, opts);
    const leaver = createZooKeeperBackend({ id: 'zk', type: 'zookeeper', connect, roots: [root] }, opts);
    const slow = createZooKeeperBackend({ id: 'zk', type: 'zookeeper', connect: `127.0.0.1:${port}`, roots: [root] }, opts);
    try {
      await slow.ping();
      const h = await holder.acquire('slow-link', { ttlMs: 5000 });
      const abort = new AbortController();
      const left = leaver.acquire('slow-link', { waitMs: 30_000, signal: abort.signal }).catch(() => 'left');
      await eventually(async () => ((await holder.get('slow-link'))?.waiters.length ?? 0) === 1, 5000, 'leaver queued');
      const waiting = slow.acquire('slow-link', { ttlMs: 5000, waitMs: 20_000 });
      await eventually(async () => ((await holder.get('slow-link'))?.waiters.length ?? 0) === 2, 5000, 'slow waiter queued');
      proxy.setDelay(800); // 1.6 s round trips > opTimeoutMs; the connection stays up
      abort.abort(); // the slow waiter's blocker goes: it re-lists through the slow link, and times out
      expect(await left).toBe('left');
      await new Promise((r) => setTimeout(r, 2500));
      proxy.setDelay(0);
      await new Promise((r) => setTimeout(r, 300));
      const released = performance.now();
      await h.release(); // the slow waiter is first in line now
      const got = await waiting;
      expect(got.held).toBe(true);
      // Well before its waitMs (20 s): it looked again on its own.
      expect(performance.now() - released).toBeLessThan(8000);
      await got.release();
    } finally {
      await Promise.all([holder.close(), leaver.close(), slow.close()]);
      await proxy.stop();
    }
  });

  it('gives the lock up when the handle lets its lease lapse, so the next waiter gets it', async () => {
    const other = createZooKeeperBackend({ id: 'zk', type: 'zookeeper', connect, roots: [root] });
    try {
      const h = await zk.acquire('lapse', { ttlMs: 200, autoRenew: false });
      const next = await other.acquire('lapse', { waitMs: 5000 });
      expect(h.held).toBe(false);
      expect(Number(next.fence)).toBeGreaterThan(Number(h.fence));
      await next.release();
    } finally {
      await other.close();
    }
  });
});
