/**
 * lockdeck's etcd mutex across a crash of its server and across long waits, as the torture
 * runner's `etcd × server-kill` cell found them (torture/backends.ts).
 *
 *  - regression (torture: etcd server-kill): waiters that waited through the outage got handles
 *    whose lease had been counted from the start of acquire(), so any wait longer than the TTL
 *    handed back a lock lost as "expired" within milliseconds (its key deleted, the next waiter let
 *    in while the first was inside its critical section). Any contended etcd lock whose wait
 *    outlasted ttlMs had it, outage or not.
 *  - a holder keeps its lock across SIGKILL + restart of a single member from its data dir (the
 *    WAL has the key, the lease is restored with a full TTL, the keepalive stream reconnects), and
 *    fences keep increasing.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { createEtcdBackend, type EtcdLockBackend } from '../lib/backends/etcd';
import { compareFences } from '../lib/locks';
import { randomId } from '../lib/locks/util';
import { startEtcd, type EtcdCluster } from '../scripts/etcd-server';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('etcd: long waits and server restarts', { timeout: 90_000 }, () => {
  const backends: EtcdLockBackend[] = [];
  const root = `/lockdeck-restart/${randomId(4)}`;
  const make = (endpoints: string[]) => {
    const b = createEtcdBackend({ id: 'etcd-restart', type: 'etcd', endpoints, prefixes: [`${root}/`] }, { opTimeoutMs: 2000 });
    backends.push(b);
    return b;
  };
  let own: EtcdCluster | undefined;

  beforeAll(async () => {
    own = await startEtcd();
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled(backends.map((b) => b.close()));
    await own?.stop();
  });

  it('regression (torture: etcd server-kill): a lock granted after a wait longer than its TTL is not expired at birth', async () => {
    const endpoints = inject('etcdEndpoints');
    const a = make(endpoints);
    const b = make(endpoints);
    const c = make(endpoints);
    const name = `${root}/long-wait`;
    const first = await a.acquire(name, { ttlMs: 1000 });
    // The holder keeps its lock (renewed) for 2.5 TTLs, then releases; the waiter waits all along.
    const releasing = sleep(2500).then(() => first.release());
    const t0 = performance.now();
    const second = await b.acquire(name, { ttlMs: 1000, waitMs: 15_000 });
    await releasing;
    expect(performance.now() - t0).toBeGreaterThan(2000);
    expect(compareFences(second.fence, first.fence)).toBeGreaterThan(0);
    // Before the fix: lost ("expired") a few ms after acquire() returned, and the key deleted.
    await sleep(200);
    expect(second.signal.aborted).toBe(false);
    expect(second.held).toBe(true);
    expect(await c.tryAcquire(name, { ttlMs: 1000 })).toBeNull();
    // And it keeps it over more than one TTL (renewed through the session's keepalives).
    await sleep(1500);
    expect(second.held).toBe(true);
    expect(await c.tryAcquire(name, { ttlMs: 1000 })).toBeNull();
    await second.release();
    const third = await c.tryAcquire(name, { ttlMs: 1000 });
    expect(third).not.toBeNull();
    await third!.release();
  });

  it('a holder keeps its lock across SIGKILL + restart of the member from its data dir', async () => {
    const server = own!;
    const member = server.members[0]!;
    const a = make(server.endpoints);
    const name = `${root}/restart`;
    // 8 s lease: longer than the outage (kill + restart + single-member election, ~1.5 s here).
    const h = await a.acquire(name, { ttlMs: 8000 });
    const pid = member.process.pid;
    await member.kill();
    await sleep(500);
    await member.restart();
    expect(member.process.pid).not.toBe(pid);
    // A fresh client sees the key (the WAL kept it) on a live lease: the lock is still taken.
    const b = make(server.endpoints);
    expect(await b.tryAcquire(name, { ttlMs: 8000 })).toBeNull();
    // The holder's keepalives get through again (new stream): still held after a renewal period.
    await sleep(3500);
    expect(h.held).toBe(true);
    await h.extend();
    expect(h.held).toBe(true);
    await h.release();
    const next = await b.acquire(name, { ttlMs: 8000, waitMs: 5000 });
    // Fences (create revisions) continue from the persisted revision.
    expect(compareFences(next.fence, h.fence)).toBeGreaterThan(0);
    await next.release();
  });

  it('regression (torture: etcd server-kill): a release that failed while the server was down still frees the lock', async () => {
    const server = own!;
    const member = server.members[0]!;
    const a = make(server.endpoints);
    const b = make(server.endpoints);
    const name = `${root}/failed-release`;
    // 5 s lease: A's session outlives the outage (kill + restart), so it keeps its lease alive
    // afterwards; only A's key has to go for the lock to be free.
    const h = await a.acquire(name, { ttlMs: 5000 });
    await member.kill();
    await expect(h.release()).rejects.toThrow(/cannot release/);
    await member.restart();
    // Before the fix: the key stayed on A's live lease for as long as A's process kept its
    // session (the lock stuck for good); now A deletes it once etcd is back.
    const t0 = performance.now();
    const next = await b.acquire(name, { ttlMs: 5000, waitMs: 10_000 });
    expect(performance.now() - t0).toBeLessThan(8000);
    await next.release();
    // A can take it again afterwards (its name reservation was given back).
    const again = await a.acquire(name, { ttlMs: 5000, waitMs: 5000 });
    expect(compareFences(again.fence, next.fence)).toBeGreaterThan(0);
    await again.release();
  });
});
