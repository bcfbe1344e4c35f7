/**
 * The same contract on a Redis Cluster (hash tags keep a lock's keys in one slot) and through a
 * Sentinel. Each starts its own servers.
 */
import { randomBytes } from 'node:crypto';

import { Cluster } from 'ioredis';
import { describe, expect, it } from 'vitest';

import { createRedisBackend } from '../lib/backends/redis';
import { startRedisCluster, startRedisSentinel } from '../scripts/servers';
import { runBackendContract } from './contract';

runBackendContract('redis (Cluster, 3 masters)', async () => {
  const cluster = await startRedisCluster(3);
  return {
    make: async () => createRedisBackend({ id: 'cluster-test', type: 'redis', url: cluster.url, cluster: true }),
    teardown: () => cluster.stop(),
  };
});

runBackendContract('redis (Sentinel)', async () => {
  const s = await startRedisSentinel();
  return {
    make: async () => createRedisBackend({ id: 'sentinel-test', type: 'redis', sentinel: { name: 'mymaster', sentinels: [s.sentinel] } }),
    teardown: () => s.stop(),
  };
});

describe('redis (Cluster): foreign locks', { timeout: 30_000 }, () => {
  it('finds foreign locks on every master and releases them by compare-and-delete', async () => {
    const cluster = await startRedisCluster(3);
    const backend = createRedisBackend({ id: 'cluster-foreign', type: 'redis', url: cluster.url, cluster: true, match: ['lock:*'] });
    const writer = new Cluster([{ host: '127.0.0.1', port: cluster.port }]);
    try {
      // Enough names that they spread over all three masters' slots.
      const names = Array.from({ length: 12 }, (_, i) => `lock:job-${i}`);
      for (const n of names) await writer.set(n, randomBytes(16).toString('hex'), 'PX', 30_000, 'NX');
      const listed = (await backend.list()).filter((l) => l.key.startsWith('lock:job-'));
      expect(listed.map((l) => l.key).sort()).toEqual([...names].sort());
      expect(listed.every((l) => l.format === 'redis-plain' && l.ttlMs! > 20_000)).toBe(true);
      const target = listed[0]!;
      expect((await backend.forceRelease(target.key, { owner: target.owner ?? undefined })).status).toBe('released');
      expect(await writer.exists(target.key)).toBe(0);
    } finally {
      writer.disconnect();
      await backend.close();
      await cluster.stop();
    }
  });
});
