/**
 * lockdeck's etcd mutex on a 3-member cluster (scripts/etcd-server.ts), with one member killed in
 * the middle of a contended run: a fenced register must see no overlap and no stale write.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createEtcdBackend, type EtcdLockBackend } from '../lib/backends/etcd';
import { compareFences, withLock } from '../lib/locks';
import { startEtcdCluster, type EtcdCluster } from '../scripts/etcd-server';

describe('etcd: 3-member cluster with a member killed mid-run', { timeout: 120_000 }, () => {
  let cluster: EtcdCluster;
  const backends: EtcdLockBackend[] = [];

  beforeAll(async () => {
    cluster = await startEtcdCluster(3);
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled(backends.map((b) => b.close()));
    await cluster?.stop();
  });

  it('keeps mutual exclusion and increasing fences: 0 overlaps', async () => {
    for (let i = 0; i < 4; i++) {
      backends.push(createEtcdBackend({ id: 'etcd-cluster', type: 'etcd', endpoints: cluster.endpoints, prefixes: ['/lockdeck-cl/'] }, { opTimeoutMs: 3000 }));
    }
    const name = '/lockdeck-cl/register';
    let lastFence: string | null = null;
    let inside = 0;
    let overlaps = 0;
    let stale = 0;
    let writes = 0;
    let failures = 0;
    const stopAt = Date.now() + 8000;
    let killed = false;
    const killer = setTimeout(() => {
      killed = true;
      void cluster.members[1]!.stop();
    }, 2500);
    await Promise.all(
      backends.map(async (b) => {
        for (let i = 0; i < 400 && Date.now() < stopAt; i++) {
          try {
            await withLock(b, name, { ttlMs: 3000, waitMs: 15_000 }, async (_signal, h) => {
              if (++inside > 1) overlaps++;
              await new Promise((r) => setTimeout(r, Math.random() * 3));
              if (lastFence !== null && compareFences(h.fence, lastFence) <= 0) stale++;
              else {
                lastFence = h.fence;
                writes++;
              }
              inside--;
            });
          } catch {
            // A request caught by the kill fails (unavailable); the client tries again.
            failures++;
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      }),
    );
    clearTimeout(killer);
    expect(killed).toBe(true);
    expect({ overlaps, stale }).toEqual({ overlaps: 0, stale: 0 });
    expect(writes).toBeGreaterThan(50);
    // The surviving quorum still serves: one more lock after the run.
    const h = await backends[0]!.acquire(name, { ttlMs: 3000, waitMs: 10_000 });
    expect(compareFences(h.fence, lastFence!)).toBe(1);
    await h.release();
    console.log(`etcd cluster run: ${writes} fenced writes, ${failures} failed attempts, member 2 killed at 2.5 s`);
  });
});
