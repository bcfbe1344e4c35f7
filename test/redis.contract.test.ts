import { inject } from 'vitest';

import { createRedisBackend } from '../lib/backends/redis';
import { runBackendContract } from './contract';

runBackendContract('redis', async () => {
  const url = inject('redisUrl');
  return { make: async () => createRedisBackend({ id: 'redis-test', type: 'redis', url }) };
});
