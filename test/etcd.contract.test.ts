import { inject } from 'vitest';

import { createEtcdBackend } from '../lib/backends/etcd';
import { runBackendContract } from './contract';

// Each make() is its own client with its own sessions (leases), as a separate process would be.
runBackendContract('etcd', async () => {
  const endpoints = inject('etcdEndpoints');
  return {
    keyPrefix: '/lockdeck-ct/',
    make: async () => createEtcdBackend({ id: 'etcd-test', type: 'etcd', endpoints, prefixes: ['/lockdeck-ct/'] }),
  };
});
