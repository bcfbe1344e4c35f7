import { inject } from 'vitest';

import { createZooKeeperBackend } from '../lib/backends/zookeeper';
import { runBackendContract } from './contract';

// Each make() opens its own ZooKeeper session, as a separate process would.
runBackendContract('zookeeper', async () => {
  const connect = inject('zookeeperConnect');
  return {
    keyPrefix: '/lockdeck-ct/',
    make: async () => createZooKeeperBackend({ id: 'zk-test', type: 'zookeeper', connect, roots: ['/lockdeck-ct'] }, { sessionTimeoutMs: 6000 }),
  };
});
