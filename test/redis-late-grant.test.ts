/**
 * Regressions found by the torture checker under network delay (torture/repro/late-grant.ts,
 * late-handoff.ts): a Redis lock must never be returned as held when, by the caller's own clock,
 * its lease is already over — else a second client can hold it at the same time.
 * The delay comes from a loopback proxy in front of one client (torture/proxy.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRedisBackend } from '../lib/backends/redis';
import { AcquireTimeoutError } from '../lib/locks';
import { startRedis, type RunningServer } from '../scripts/servers';
import { FaultProxy } from '../torture/proxy';

let server: RunningServer;
let proxy: FaultProxy;
let slowUrl: string;

beforeAll(async () => {
  server = await startRedis();
  proxy = new FaultProxy('127.0.0.1', server.port);
  slowUrl = `redis://127.0.0.1:${await proxy.start()}`;
});

afterAll(async () => {
  await proxy?.stop();
  await server?.stop();
});

describe('redis: no lock whose lease ran out in transit', { timeout: 30_000 }, () => {
  it('regression (late grant): a reply that arrives after the lease ended is not a held lock', async () => {
    const slow = createRedisBackend({ id: 'slow', type: 'redis', url: slowUrl }, { commandTimeoutMs: 5000 });
    const fast = createRedisBackend({ id: 'fast', type: 'redis', url: server.url });
    try {
      await Promise.all([slow.ping(), fast.ping()]);
      proxy.setDelay(300); // each way: the grant reaches the slow client ~600 ms after it was made
      const slowAcquire = slow.acquire('late-grant', { ttlMs: 200 }).then((h) => h, (e: unknown) => e);
      await new Promise((r) => setTimeout(r, 450)); // its 200 ms lease is over on the server
      const other = await fast.acquire('late-grant', { ttlMs: 5000, waitMs: 2000 });
      const got = await slowAcquire;
      // Before: resolved with held=true while `other` held the lock too.
      expect(got).toBeInstanceOf(AcquireTimeoutError);
      expect(other.held).toBe(true);
      proxy.setDelay(0);
      await other.release();
    } finally {
      proxy.setDelay(0);
      await Promise.all([slow.close(), fast.close()]);
    }
  });

  it('regression (late handoff): a grant message delayed past its lease does not make a second holder', async () => {
    const opts = { handoffTtlMs: 200, recheckMs: 5000, commandTimeoutMs: 5000 };
    const holder = createRedisBackend({ id: 'h', type: 'redis', url: server.url }, opts);
    const waiter = createRedisBackend({ id: 'w', type: 'redis', url: slowUrl }, opts);
    const third = createRedisBackend({ id: 't', type: 'redis', url: server.url }, opts);
    try {
      await Promise.all([holder.ping(), waiter.ping(), third.ping()]);
      const first = await holder.acquire('late-handoff', { ttlMs: 10_000 });
      const waiting = waiter.acquire('late-handoff', { ttlMs: 10_000, waitMs: 3000 }).then((h) => h, (e: unknown) => e);
      await new Promise((r) => setTimeout(r, 300)); // queued
      proxy.setDelay(300);
      await first.release(); // handed to the waiter with a 200 ms lease, announced 300 ms late
      const other = await third.acquire('late-handoff', { ttlMs: 10_000, waitMs: 5000 }); // after that lease
      const got = await waiting;
      // Before: the waiter's acquire() resolved with held=true while `other` held the lock.
      expect(got).toBeInstanceOf(AcquireTimeoutError);
      expect(other.held).toBe(true);
      proxy.setDelay(0);
      await other.release();
    } finally {
      proxy.setDelay(0);
      await Promise.all([holder.close(), waiter.close(), third.close()]);
    }
  });
});
