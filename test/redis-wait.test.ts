/**
 * The Redis `waitReplicas` option (config; Redisson's `checkLockSyncedSlaves`): a lock is returned
 * only once its grant is on the replicas, on real servers — a primary and a replica that replicates
 * through a delaying proxy (torture/proxy.ts), so that asynchronous replication is visibly behind
 * and a missing or misdirected WAIT shows.
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRedisBackend } from '../lib/backends/redis';
import { ReplicationError } from '../lib/locks/errors';
import type { LockBackend } from '../lib/locks/types';
import { startRedis, startRedisCluster, startRedisReplica, type RunningServer } from '../scripts/servers';
import { FaultProxy } from '../torture/proxy';

const LAG_MS = 150;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('redis waitReplicas (primary + lagging replica)', { timeout: 30_000 }, () => {
  let primary: RunningServer;
  let replica: RunningServer;
  let proxy: FaultProxy;
  let p: Redis;
  let r: Redis;
  const backends: LockBackend[] = [];
  const make = (wait: boolean, waitTimeoutMs = 3000) => {
    const b = createRedisBackend(
      { id: wait ? 'wait' : 'plain', type: 'redis', url: primary.url, ...(wait ? { waitReplicas: 1, waitTimeoutMs } : {}) },
      { commandTimeoutMs: 5000, recheckMs: 500 },
    );
    backends.push(b);
    return b;
  };

  beforeAll(async () => {
    primary = await startRedis();
    proxy = new FaultProxy('127.0.0.1', primary.port);
    await proxy.start();
    replica = await startRedisReplica(proxy.port);
    proxy.setDelay(LAG_MS); // after the initial sync: each replicated write arrives LAG_MS late
    p = new Redis(primary.url);
    r = new Redis(replica.url);
  });

  afterAll(async () => {
    for (const b of backends) await b.close().catch(() => undefined);
    p?.disconnect();
    r?.disconnect();
    if (replica) process.kill(replica.process.pid!, 'SIGCONT');
    await replica?.stop();
    await proxy?.stop();
    await primary?.stop();
  });

  it('without the option the replica is behind when acquire resolves (the lag these tests rely on)', async () => {
    const h = await make(false).acquire('ctl', { ttlMs: 10_000 });
    expect(await r.hget('lockdeck:{ctl}', 'fence')).toBeNull();
    await h.release();
  });

  it('with it, the replica holds our grant (token and fence) the moment acquire and tryAcquire resolve', async () => {
    const b = make(true);
    const h = await b.acquire('a', { ttlMs: 10_000 });
    const [token, fence] = await r.hmget('lockdeck:{a}', 'token', 'fence');
    expect(fence).toBe(h.fence);
    expect(token).toBe(await p.hget('lockdeck:{a}', 'token'));
    const t = await b.tryAcquire('a2', { ttlMs: 10_000 });
    expect(t).not.toBeNull();
    expect(await r.hget('lockdeck:{a2}', 'fence')).toBe(t!.fence);
    // A release resolves once the replica has it too.
    await h.release();
    expect(await r.exists('lockdeck:{a}')).toBe(0);
    await t!.release();
  });

  it('a handoff: the waiter resolves only once the replica shows the waiter as holder', async () => {
    // The holder does not use WAIT: the waiter's safety must not depend on the releaser.
    const holder = await make(false).acquire('h', { ttlMs: 10_000 });
    const waiting = make(true).acquire('h', { ttlMs: 10_000, waitMs: 15_000 });
    // Let the waiter's own attempt (and the WAIT pipelined with its queue entry) finish, so that
    // it is idle, waiting for the grant message, when the release comes.
    for (let i = 0; i < 100 && (await r.zcard('lockdeck:{h}:q')) === 0; i++) await sleep(20);
    expect(await r.zcard('lockdeck:{h}:q')).toBe(1);
    await sleep(LAG_MS * 2 + 200);
    await holder.release();
    const w = await waiting;
    const [fence, token] = await r.hmget('lockdeck:{h}', 'fence', 'token');
    expect(fence).toBe(w.fence);
    expect(token).toBe(await p.hget('lockdeck:{h}', 'token'));
    // The handoff's short first lease was topped up to the TTL by the confirming EXTEND.
    expect(await p.pttl('lockdeck:{h}')).toBeGreaterThan(8000);
    await w.release();
  });

  it('replica stopped: acquire/try throw ReplicationError and leave nothing held; another holder is untouched', async () => {
    const plain = make(false);
    const b = make(true, 1000); // well above the 2 × LAG_MS round trip of a replica's ack
    const other = await plain.acquire('mine-not', { ttlMs: 10_000 });
    const held = await b.acquire('renewme', { ttlMs: 10_000, autoRenew: false });
    process.kill(replica.process.pid!, 'SIGSTOP');
    try {
      const err = await b.tryAcquire('c', { ttlMs: 10_000 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ReplicationError);
      expect((err as ReplicationError).message).toMatch(/lock "c": acquire not confirmed by replicas: 0 of 1 required acknowledged within 1000 ms/);
      expect(await p.exists('lockdeck:{c}')).toBe(0);

      await expect(b.acquire('d', { ttlMs: 10_000, waitMs: 2000 })).rejects.toBeInstanceOf(ReplicationError);
      expect(await p.exists('lockdeck:{d}')).toBe(0);
      expect(await p.zcard('lockdeck:{d}:q')).toBe(0);

      // Someone else's lock: refused (null), never deleted by our clean-up.
      expect(await b.tryAcquire('mine-not', { ttlMs: 10_000 })).toBeNull();
      expect(await p.hget('lockdeck:{mine-not}', 'fence')).toBe(other.fence);
      await other.extend(10_000);

      // A renewal the replicas do not confirm fails (the holder keeps its earlier deadline), and
      // a release still happens on the primary but says it is unconfirmed.
      const before = held.expiresAt;
      await expect(held.extend(10_000)).rejects.toBeInstanceOf(ReplicationError);
      expect(held.held).toBe(true);
      expect(held.expiresAt).toBe(before);
      await expect(held.release()).rejects.toBeInstanceOf(ReplicationError);
      expect(await p.exists('lockdeck:{renewme}')).toBe(0);
    } finally {
      process.kill(replica.process.pid!, 'SIGCONT');
    }
    const again = await b.acquire('c', { ttlMs: 10_000 });
    expect(await r.hget('lockdeck:{c}', 'fence')).toBe(again.fence);
    await again.release();
    await other.release();
  });

  it('is refused for Redlock and with a timeout not below the command timeout', () => {
    expect(() => createRedisBackend({ id: 'rl', type: 'redis', urls: [primary.url, replica.url], waitReplicas: 1 })).toThrow(/does not apply to Redlock/);
    expect(() => createRedisBackend({ id: 'x', type: 'redis', url: primary.url, waitReplicas: 1, waitTimeoutMs: 5000 }, { commandTimeoutMs: 5000 })).toThrow(
      /waitTimeoutMs \(5000\) must be below the command timeout/,
    );
  });
});

describe('redis waitReplicas on a Cluster (3 masters, 1 replica each)', { timeout: 60_000 }, () => {
  it("WAITs on the node that owns the key's slot", async () => {
    const cluster = await startRedisCluster(3, 1);
    const admin = new Redis(cluster.url);
    const keys = new Cluster([{ host: '127.0.0.1', port: cluster.port }]);
    const direct = cluster.nodes.map((n) => new Redis(n.url));
    const backend = createRedisBackend(
      { id: 'cluster-wait', type: 'redis', url: cluster.url, cluster: true, waitReplicas: 1, waitTimeoutMs: 1000 },
      { commandTimeoutMs: 3000 },
    );
    let stopped: RunningServer | undefined;
    try {
      // `cluster create` assigns replicas at once; their first sync comes after.
      for (let i = 0; i < 200; i++) {
        const infos = await Promise.all(direct.map((d) => d.info('replication')));
        if (infos.filter((x) => /master_link_status:up/.test(x)).length === 3) break;
        await sleep(100);
      }
      // [start, end, [host, port, id], [replica host, port, id]...] per slot range.
      type Ranges = [number, number, ...[string, number, string][]][];
      let ranges = (await admin.cluster('SLOTS')) as unknown as Ranges;
      for (let i = 0; i < 200 && !ranges.every((rg) => rg.length > 3); i++) {
        await sleep(100); // the seed learns of the replicas by gossip
        ranges = (await admin.cluster('SLOTS')) as unknown as Ranges;
      }
      const names = Array.from({ length: 12 }, (_, i) => `job-${i}`);
      // Every replica of a slot's master holds the grant once acquire resolves.
      for (const n of names) {
        const h = await backend.acquire(n, { ttlMs: 10_000 });
        const slot = (await admin.cluster('KEYSLOT', `lockdeck:{${n}}`)) as number;
        const range = ranges.find(([s, e]) => slot >= s && slot <= e)!;
        const replicaPort = range[3]![1];
        const rep = direct[cluster.nodes.findIndex((x) => x.port === replicaPort)]!;
        await rep.readonly();
        expect(await rep.hget(`lockdeck:{${n}}`, 'fence')).toBe(h.fence);
        await h.release();
      }
      // Stop one master's replica: exactly the names in that master's slots fail. A WAIT routed to
      // another node (keyless commands go to a random one) would answer 1 there and let them pass.
      const victim = ranges[0]!;
      const victimPort = victim[3]![1];
      stopped = cluster.nodes.find((x) => x.port === victimPort)!;
      const victimRanges = ranges.filter((rg) => rg[3]![1] === victimPort);
      process.kill(stopped.process.pid!, 'SIGSTOP');
      let failed = 0;
      for (const n of names) {
        const slot = (await admin.cluster('KEYSLOT', `lockdeck:{${n}}`)) as number;
        const onVictim = victimRanges.some(([s, e]) => slot >= s && slot <= e);
        const got = await backend.tryAcquire(n, { ttlMs: 10_000 }).catch((e: unknown) => e);
        if (onVictim) {
          failed++;
          expect(got).toBeInstanceOf(ReplicationError);
          expect(await keys.exists(`lockdeck:{${n}}`)).toBe(0);
        } else {
          expect(got).not.toBeInstanceOf(Error);
          await (got as { release(): Promise<void> }).release();
        }
      }
      expect(failed).toBeGreaterThan(0);
    } finally {
      if (stopped) process.kill(stopped.process.pid!, 'SIGCONT');
      await backend.close();
      admin.disconnect();
      keys.disconnect();
      for (const d of direct) d.disconnect();
      await cluster.stop();
    }
  });
});
