import { inject } from 'vitest';

import { createRedisBackend } from '../lib/backends/redis';
import { runBackendContract } from './contract';

runBackendContract('redis (Redlock, 3 masters)', async () => {
  const urls = inject('redlockUrls');
  return { make: async () => createRedisBackend({ id: 'redlock-test', type: 'redis', urls }) };
});
