/**
 * The same contract on a Redis Cluster (hash tags keep a lock's keys in one slot) and through a
 * Sentinel. Each starts its own servers.
 */
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
