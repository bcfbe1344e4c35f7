/**
 * A 3-server ZooKeeper ensemble with one server killed: locks keep working through the other two,
 * a client that loses its only server presumes its locks lost at once, and those locks become free
 * only when its session expires.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createZooKeeperBackend } from '../lib/backends/zookeeper';
import { LockLostError, type LockBackend } from '../lib/locks';
import { startZooKeeperEnsemble, type RunningServer } from '../scripts/servers';
import { eventually } from './contract';

describe('ZooKeeper ensemble', { timeout: 90_000 }, () => {
  let ensemble: RunningServer & { members: RunningServer[] };
  const backends: LockBackend[] = [];
  const make = (connect: string) => {
    const b = createZooKeeperBackend({ id: 'zk-ens', type: 'zookeeper', connect, roots: ['/ens'] }, { sessionTimeoutMs: 3000 });
    backends.push(b);
    return b;
  };

  beforeAll(async () => {
    ensemble = await startZooKeeperEnsemble(3, { tickTime: 500 });
  });

  afterAll(async () => {
    await Promise.all(backends.map((b) => b.close()));
    await ensemble?.stop();
  });

  it('keeps working with one server killed', async () => {
    const [m0, m1, m2] = ensemble.members as [RunningServer, RunningServer, RunningServer];
    const lone = make(`${m0.host}:${m0.port}`); // knows only the server we kill
    const full = make(ensemble.url);
    const others = make(`${m1.host}:${m1.port},${m2.host}:${m2.port}`);

    const stranded = await lone.acquire('/ens/stranded', { ttlMs: 60_000 });
    const h = await full.acquire('/ens/a', { ttlMs: 60_000 });
    expect(await others.tryAcquire('/ens/a')).toBeNull();
    await h.release();

    await m0.stop();
    // Disconnected from its only server: presumed lost at once (the session may still be alive).
    await eventually(() => stranded.signal.aborted, 5000, 'stranded holder aborted');
    expect((stranded.signal.reason as LockLostError).reason).toBe('session-lost');

    // The other two keep a quorum: locks work, exclusion holds.
    const t0 = Date.now();
    const h2 = await full.acquire('/ens/b', { ttlMs: 60_000, waitMs: 20_000 });
    expect(await others.tryAcquire('/ens/b')).toBeNull();
    await h2.release();
    const h3 = await others.acquire('/ens/b', { waitMs: 5000 });
    await h3.release();

    // The stranded lock is freed by its session's expiry (3 s), not before.
    const freed = await others.acquire('/ens/stranded', { waitMs: 20_000 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(Number(freed.fence)).toBeGreaterThan(Number(stranded.fence));
    await freed.release();
  });
});
