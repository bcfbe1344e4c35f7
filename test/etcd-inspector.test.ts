/**
 * The etcd inspector beyond the contract: listing across pages, the foreign single-key layouts it
 * recognises (microsoft/etcd3's `Lock`, written by the real npm package; ShedLock's etcd provider,
 * written byte for byte as its source does), and watch() recovering after its revision was
 * compacted while it was cut off from the server.
 */
import { Etcd3 } from 'etcd3';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { createEtcdBackend, type EtcdLockBackend, type EtcdBackendOptions } from '../lib/backends/etcd';
import { LockLostError, type LockChange, type LockHandle, type LockInfo } from '../lib/locks';
import { randomId } from '../lib/locks/util';
import { eventually } from './contract';
import { startTcpProxy, type TcpProxy } from './support/tcp-proxy';

describe('etcd inspector', { timeout: 60_000 }, () => {
  let endpoints: string[];
  let raw: Etcd3;
  const backends: EtcdLockBackend[] = [];
  const handles: LockHandle[] = [];
  const root = `/lockdeck-insp/${randomId(4)}`;
  const make = (opts: EtcdBackendOptions = {}, prefixes = [`${root}/`], eps?: string[]) => {
    const b = createEtcdBackend({ id: 'etcd-insp', type: 'etcd', endpoints: eps ?? endpoints, prefixes }, opts);
    backends.push(b);
    return b;
  };

  beforeAll(() => {
    endpoints = inject('etcdEndpoints');
    raw = new Etcd3({ hosts: endpoints });
  });

  afterAll(async () => {
    await Promise.allSettled(handles.map((h) => h.release()));
    await Promise.allSettled(backends.map((b) => b.close()));
    await raw?.delete().prefix(`${root}/`).exec().catch(() => undefined);
    raw?.close();
  });

  it('lists and reads locks across many Range pages, the same as in one page', async () => {
    const dir = `${root}/paged`;
    const holder = make({}, [`${dir}/`]);
    const names = Array.from({ length: 9 }, (_, i) => `${dir}/job-${i}`);
    for (const n of names) handles.push(await holder.acquire(n, { ttlMs: 20_000, owner: `owner-${n.slice(-1)}` }));
    // One lock with a queue longer than a page: four waiters, each from its own client.
    const queued = names[4]!;
    const waiting: Promise<LockHandle>[] = [];
    for (let i = 0; i < 4; i++) {
      waiting.push(make({}, [`${dir}/`]).acquire(queued, { ttlMs: 20_000, waitMs: 30_000, owner: `waiter-${i}` }));
      await eventually(async () => ((await holder.get(queued))?.waiters.length ?? 0) === i + 1, 5000, `waiter ${i} queued`);
    }
    const onePage = make({}, [`${dir}/`]);
    const paged = make({ pageSize: 2 }, [`${dir}/`]);
    const whole = await onePage.list();
    expect(whole.map((l) => l.key)).toEqual([...names].sort());
    // 13 keys at 2 a page: 7 pages, all read at the revision of the first.
    const inPages = await paged.list();
    expect(inPages.map((l) => [l.key, l.owner, l.fence, l.waiters.map((w) => w.owner)])).toEqual(
      whole.map((l) => [l.key, l.owner, l.fence, l.waiters.map((w) => w.owner)]),
    );
    const q = (await paged.get(queued))!;
    expect(q.waiters.map((w) => w.owner)).toEqual(['waiter-0', 'waiter-1', 'waiter-2', 'waiter-3']);
    expect(q.meta?.contenders).toBe(5);
    // Counted by etcd without reading the keys: 9 holders + 4 waiters.
    expect(await paged.countKeys()).toEqual([{ prefix: `${dir}/`, keys: 13, revision: expect.any(String) }]);
    // A prefix larger than maxKeys: what was read, plus a warning row saying so.
    const capped = await make({ pageSize: 2, maxKeys: 6 }, [`${dir}/`]).list();
    const warning = capped.find((l) => l.format === 'unknown');
    expect(warning?.meta?.warning).toMatch(/^13 keys under this prefix: only the first 6 were read/);
    expect(capped.filter((l) => l.format === 'lockdeck').length).toBeLessThan(names.length);
    // The queue drains in order: the first waiter gets the lock, the paged read shows the rest.
    const held = handles.find((h) => h.name === queued)!;
    handles.splice(handles.indexOf(held), 1);
    await held.release();
    const next = await waiting[0]!;
    handles.push(next);
    expect((await paged.get(queued))!).toMatchObject({ owner: 'waiter-0', waiters: [{ owner: 'waiter-1' }, { owner: 'waiter-2' }, { owner: 'waiter-3' }] });
    for (const w of waiting.slice(1)) void w.then((h) => handles.push(h), () => undefined);
  });

  it('a first page reads only the keys it needs, and equals the head of the whole list, where key order is not lock order', async () => {
    // perf-reliability-anchors D4. Names chosen so etcd's key order differs from the locks' order:
    // the contenders of `a` (`a/<hex>`) sort after `a-b/…`, `a,c` and `a.d/…` ('-', ',' and '.' are
    // below '/'), and `a/x` is a lock of its own under `a/`.
    const dir = `${root}/first`;
    const holder = make({}, [`${dir}/`]);
    const names = ['a', 'a-b', 'a.d', 'a/x', 'a/x-y', 'b', ...Array.from({ length: 30 }, (_, i) => `z-${String(i).padStart(2, '0')}`)].map((n) => `${dir}/${n}`);
    for (const n of names) handles.push(await holder.acquire(n, { ttlMs: 20_000, owner: `owner-${n.slice(dir.length + 1)}` }));
    // `a` has two waiters, so its keys run past a page of 3; `a,c` is a microsoft/etcd3-style lock
    // (an empty value on a lease of its own), a single key that sorts between `a-b/…` and `a.d/…`.
    for (let i = 0; i < 2; i++) {
      void make({}, [`${dir}/`]).acquire(names[0]!, { ttlMs: 20_000, waitMs: 30_000, owner: `waiter-${i}` }).then((h) => handles.push(h), () => undefined);
      await eventually(async () => ((await holder.get(names[0]!))?.waiters.length ?? 0) === i + 1, 5000, `waiter ${i} queued`);
    }
    const lease = raw.lease(30, { autoKeepAlive: false });
    await lease.put(`${dir}/a,c`).value('');
    const shape = (l: LockInfo) => [l.key, l.owner, l.fence, l.waiters.map((w) => w.owner)];
    const whole = (await make({}, [`${dir}/`]).list()).map(shape);
    expect(whole.map((l) => l[0])).toEqual([...names, `${dir}/a,c`].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
    const paged = make({ pageSize: 3 }, [`${dir}/`]);
    for (let k = 1; k <= whole.length + 1; k++) expect((await paged.list({ limit: k })).map(shape), `limit ${k}`).toEqual(whole.slice(0, k));
    // With a filter: the first matching locks.
    expect((await paged.list({ limit: 2, q: 'a/x' })).map((l) => l.key)).toEqual([`${dir}/a/x`, `${dir}/a/x-y`]);
    expect(await paged.list({ limit: 0 })).toEqual([]);
    await lease.revoke();
    // A key that is not valid UTF-8 (foreign tools write bytes) decodes to U+FFFD and sorts, as a
    // name, before names with 4-byte characters that come first in etcd's byte order.
    const utf = `${dir}/utf/`;
    const bytes = raw.lease(30, { autoKeepAlive: false });
    const id = await bytes.grant();
    for (let i = 0; i < 4; i++) await bytes.put(`${utf}\u{10000}${i}`).value('');
    await bytes.put(Buffer.concat([Buffer.from(utf), Buffer.from([0xff]), Buffer.from(`/${BigInt(id).toString(16)}`)])).value('');
    const allUtf = (await make({}, [utf]).list()).map((l) => l.key);
    expect(allUtf[0]).toBe(`${utf}\ufffd`);
    expect((await make({ pageSize: 2 }, [utf]).list({ limit: 1 })).map((l) => l.key)).toEqual(allUtf.slice(0, 1));
    await bytes.revoke();
    // Where no key past the first page can belong to the first locks (names like `z-NN`), the
    // first 3 of 30 cost one page (8 keys here) and one count_only Txn, not a read of all 30.
    const flat = make({ pageSize: 8 }, [`${dir}/z-`]);
    expect((await flat.readFirstGroups(`${dir}/z-`, 3, () => true)).kvs).toHaveLength(8);
    expect((await flat.list({ limit: 3 })).map(shape)).toEqual(whole.filter((l) => String(l[0]).startsWith(`${dir}/z-`)).slice(0, 3));
  });

  it('recognises a microsoft/etcd3 Lock taken by the real npm package, and revokes it as the package does', async () => {
    const key = `${root}/npm/report`;
    const inspector = make();
    const lock = raw.lock(key).ttl(15);
    await lock.acquire();
    const leaseId = await lock.leaseId();
    const info = (await inspector.get(key))!;
    expect(info).toMatchObject({ key, format: 'etcd3-npm-lock', kind: 'mutex', owner: `lease ${BigInt(leaseId!).toString(16)}`, waiters: [], health: 'ok' });
    expect(info.ttlMs).toBeGreaterThan(10_000);
    expect(info.ttlMs).toBeLessThanOrEqual(16_000);
    expect(info.meta).toMatchObject({ grantedTtlS: 15, leaseKeys: 1, holderKey: key });
    expect((await inspector.list({ q: 'npm/report' })).map((l) => l.format)).toEqual(['etcd3-npm-lock']);
    // The npm Lock never waits: a second one on the key fails at once.
    await expect(raw.lock(key).acquire()).rejects.toThrow(/Failed to acquire a lock/);
    const res = await inspector.revokeLease(key, { fence: info.fence! });
    expect(res).toMatchObject({ status: 'revoked', keys: [key] });
    expect(await inspector.get(key)).toBeNull();
    await lock.release().catch(() => undefined); // its lease is gone already
  });

  it('lists and watches 300 locks that each have a lease of their own, every TTL read from its lease', async () => {
    // The microsoft/etcd3 Lock layout (an empty value on a lease of its own), as 300 processes
    // would leave it; the holder leases are looked up together (prefetchLeases), not one by one.
    const dir = `${root}/own-leases`;
    const leases = [];
    for (let i = 0; i < 300; i += 50) {
      leases.push(...(await Promise.all(Array.from({ length: 50 }, async (_, j) => {
        const lease = raw.lease(30 + ((i + j) % 5), { autoKeepAlive: false });
        await lease.put(`${dir}/job-${String(i + j).padStart(3, '0')}`).value('');
        return lease;
      }))));
    }
    try {
      const inspector = make({}, [`${dir}/`]);
      const seen: LockChange[] = [];
      const stop = inspector.watch((c) => seen.push(c));
      const listed = await inspector.list({ limit: 1000 });
      expect(listed).toHaveLength(300);
      expect(listed.every((l) => l.format === 'etcd3-npm-lock' && l.health === 'ok' && l.expiresAt !== null)).toBe(true);
      // Each TTL comes from that lock's own lease (granted 30–34 s).
      expect(new Set(listed.map((l) => l.meta?.grantedTtlS))).toEqual(new Set([30, 31, 32, 33, 34]));
      // The watch's first snapshot is silent; a lease revoked afterwards is reported.
      await new Promise((r) => setTimeout(r, 500));
      expect(seen).toEqual([]);
      await leases[7]!.revoke();
      await eventually(async () => seen.some((c) => c.type === 'released' && c.key === `${dir}/job-007`), 5000, 'the release of job-007');
      stop();
    } finally {
      await Promise.allSettled(leases.map((l) => l.revoke()));
    }
  });

  it('recognises a ShedLock etcd lock (key shedlock:<env>:<name>, value ADDED:<instant>@<host>, on a lease)', async () => {
    // providers/etcd/shedlock-provider-etcd-jetcd/.../EtcdLockProvider.java: buildKey, buildValue,
    // tryToLock (a lease of lockAtMostFor seconds, Txn if version(key) == 0 then put).
    const env = `lockdeck${randomId(4)}`;
    const key = `shedlock:${env}:nightly-report`;
    const lockedAt = new Date(Date.now() - 1500);
    const value = `ADDED:${lockedAt.toISOString()}@${hostname()}`; // Utils.toIsoString: 3 fraction digits, Z
    const lease = await raw.leaseClient.leaseGrant({ TTL: 30, ID: 0 });
    const put = await raw.kv.txn({
      compare: [{ key: Buffer.from(key), target: 'Version', result: 'Equal', version: 0 }],
      success: [{ request_put: { key: Buffer.from(key), value: Buffer.from(value), lease: lease.ID } }],
      failure: [{ request_range: { key: Buffer.from(key) } }],
    });
    expect(put.succeeded).toBe(true);
    try {
      const inspector = make({}, [`shedlock:${env}:`]);
      const info = (await inspector.get(key))!;
      expect(info).toMatchObject({ key, format: 'shedlock', owner: hostname(), acquiredAt: lockedAt.getTime(), waiters: [], health: 'ok' });
      expect(info.ttlMs).toBeGreaterThan(25_000);
      expect((await inspector.list()).map((l) => [l.key, l.format])).toEqual([[key, 'shedlock']]);
      // Forced release: a Txn on the create revision the operator saw.
      expect((await inspector.forceRelease(key, { fence: '1' })).status).toBe('changed');
      expect((await inspector.forceRelease(key, { fence: info.fence! })).status).toBe('released');
      expect(await inspector.get(key)).toBeNull();
    } finally {
      await raw.leaseClient.leaseRevoke({ ID: lease.ID }).catch(() => undefined);
    }
  });

  it('a waiter whose predecessor gives up waits on the key before it, and gets the lock only when that is released', async () => {
    const name = `${root}/chain`;
    const [h, w1, w2, insp] = [make(), make(), make(), make()];
    const held = await h.acquire(name, { ttlMs: 20_000 });
    const quitter = w1.acquire(name, { ttlMs: 20_000, waitMs: 400, owner: 'quitter' });
    await eventually(async () => ((await insp.get(name))?.waiters.length ?? 0) === 1, 5000, 'first waiter queued');
    let got: LockHandle | null = null;
    const patient = w2.acquire(name, { ttlMs: 20_000, waitMs: 20_000, owner: 'patient' }).then((x) => (got = x));
    patient.catch(() => undefined); // awaited below; a failure before that must not go unhandled
    await eventually(async () => ((await insp.get(name))?.waiters.length ?? 0) === 2, 5000, 'second waiter queued');
    // The quitter times out: its key goes, which wakes the patient waiter, who must now wait for
    // the holder instead (its Range names the holder's key), not take the lock.
    await expect(quitter).rejects.toThrow(/still held after waiting 400 ms/);
    await new Promise((r) => setTimeout(r, 300));
    expect(got).toBeNull();
    expect((await insp.get(name))!.waiters.map((w) => w.owner)).toEqual(['patient']);
    await held.release();
    const next = await patient;
    expect(BigInt(next.fence)).toBeGreaterThan(BigInt(held.fence));
    expect((await insp.get(name))!.owner).toBe('patient');
    await next.release();
  });

  describe('watch() across a compaction', () => {
    let proxy: TcpProxy;
    beforeAll(async () => {
      proxy = await startTcpProxy(endpoints[0]!.replace(/^http:\/\//, ''));
    });
    afterAll(async () => {
      await proxy?.close();
    });

    it('a holder cut off while the revision of its key watch is compacted checks its key instead, and still hears of a forced release', async () => {
      const dir = `${root}/holder-compact`;
      const holderClient = make({}, [`${dir}/`], [`http://${proxy.address}`]);
      const operator = make({}, [`${dir}/`]);
      const compactAway = async () => {
        for (let i = 0; i < 3; i++) await raw.put(`${dir}-filler/${i}`).value(String(i));
        const rev = (await raw.kv.range({ key: Buffer.from(`${dir}-filler/0`) })).header.revision;
        await raw.kv.compact({ revision: rev, physical: true });
      };
      // 1. Cut off, compacted, healed: the key is still ours, so the holder keeps the lock and
      //    watches afresh; a forced release afterwards reaches it.
      const kept = await holderClient.acquire(`${dir}/kept`, { ttlMs: 20_000 });
      handles.push(kept);
      await new Promise((r) => setTimeout(r, 200)); // its key watch is armed (50 ms)
      proxy.cut();
      await compactAway();
      await new Promise((r) => setTimeout(r, 300));
      proxy.heal();
      await eventually(() => holderClient.ping().then(() => true, () => false), 15_000, 'the holder client reconnected');
      await new Promise((r) => setTimeout(r, 1000)); // its watch stream too (the client's own backoff)
      expect(kept.signal.aborted).toBe(false);
      // Reconnected by now or soon: the forced release is heard through the new watch.
      expect((await operator.forceRelease(`${dir}/kept`, { fence: kept.fence })).status).toBe('released');
      await eventually(() => kept.signal.aborted, 15_000, 'the holder told of the forced release');
      expect((kept.signal.reason as LockLostError).reason).toBe('forced');
      // 2. Force-released while cut off, then compacted: the resumed watch is refused, the key
      //    is looked at and found gone.
      const lost = await holderClient.acquire(`${dir}/lost`, { ttlMs: 20_000 });
      handles.push(lost);
      await new Promise((r) => setTimeout(r, 200));
      proxy.cut();
      expect((await operator.forceRelease(`${dir}/lost`, { fence: lost.fence })).status).toBe('released');
      await compactAway();
      await new Promise((r) => setTimeout(r, 300));
      proxy.heal();
      await eventually(() => lost.signal.aborted, 15_000, 'the holder told after it reconnected');
      expect((lost.signal.reason as LockLostError).reason).toBe('forced');
      await raw.delete().prefix(`${dir}-filler/`).exec();
    });

    it('re-lists when its revision was compacted while it was cut off: every change once, none twice, and events flow on', async () => {
      const dir = `${root}/compact`;
      const seen: LockChange[] = [];
      const inspector = make({}, [`${dir}/`], [`http://${proxy.address}`]);
      const client = make({}, [`${dir}/`]);
      const off = inspector.watch((c) => {
        if (!c.key.startsWith(`${dir}/probe`)) seen.push(c);
        else probed = true;
      });
      let probed = false;
      try {
        // watch() reads the prefix before it watches: a change made before that read is no event.
        for (let i = 0; i < 50 && !probed; i++) {
          await (await client.acquire(`${dir}/probe-${i}`, { ttlMs: 5000 })).release();
          await new Promise((r) => setTimeout(r, 100));
        }
        expect(probed).toBe(true);
        const kept = await client.acquire(`${dir}/kept`, { ttlMs: 20_000 });
        handles.push(kept);
        const gone = await client.acquire(`${dir}/gone`, { ttlMs: 20_000 });
        await eventually(() => seen.filter((c) => c.type === 'acquired').length === 2, 5000, 'both acquired events');

        proxy.cut();
        await gone.release();
        const added = await client.acquire(`${dir}/added`, { ttlMs: 20_000 });
        handles.push(added);
        // More revisions, then compact them all away: the watch cannot resume where it was.
        for (let i = 0; i < 5; i++) await raw.put(`${dir}-filler/${i}`).value(String(i));
        const rev = (await raw.kv.range({ key: Buffer.from(`${dir}-filler/0`) })).header.revision;
        await raw.kv.compact({ revision: rev, physical: true });
        await new Promise((r) => setTimeout(r, 500));
        proxy.heal();

        await eventually(() => seen.some((c) => c.type === 'released' && c.key === `${dir}/gone`) && seen.some((c) => c.key === `${dir}/added`), 20_000, 'the changes made while cut off');
        expect(inspector.watchRelists).toBeGreaterThanOrEqual(1);
        // Events keep flowing after the re-list.
        const later = await client.acquire(`${dir}/later`, { ttlMs: 20_000 });
        await eventually(() => seen.some((c) => c.type === 'acquired' && c.key === `${dir}/later`), 5000, 'an event after the re-list');
        await later.release();
        await eventually(() => seen.some((c) => c.type === 'released' && c.key === `${dir}/later`), 5000, 'its release');
        await new Promise((r) => setTimeout(r, 300));
        const byKey = seen.filter((c) => c.type !== 'changed').map((c) => `${c.type} ${c.key.slice(dir.length + 1)}`);
        expect([...byKey].sort()).toEqual(['acquired added', 'acquired gone', 'acquired kept', 'acquired later', 'released gone', 'released later']);
        expect(byKey.slice(0, 2).sort()).toEqual(['acquired gone', 'acquired kept']);
        expect(byKey.slice(-2)).toEqual(['acquired later', 'released later']);
      } finally {
        off();
        await raw.delete().prefix(`${dir}-filler/`).exec();
      }
    });
  });
});
