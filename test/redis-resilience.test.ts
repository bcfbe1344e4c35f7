/** A Redis that goes away and comes back: the backend reports it and recovers by itself. */
import { describe, expect, it } from 'vitest';

import { createRedisBackend } from '../lib/backends/redis';
import { BackendUnavailableError, type LockChange } from '../lib/locks';
import { startRedis } from '../scripts/servers';
import { eventually } from './contract';

describe('redis backend with the server down', { timeout: 30_000 }, () => {
  it('fails calls with BackendUnavailableError, then works again, watch included', async () => {
    let server = await startRedis();
    const port = server.port;
    const backend = createRedisBackend({ id: 'flaky', type: 'redis', url: server.url }, { commandTimeoutMs: 500 });
    try {
      await backend.ping();
      await server.stop();
      await expect(backend.tryAcquire('job', { ttlMs: 1000 })).rejects.toBeInstanceOf(BackendUnavailableError);
      // A watch opened while the server is down must start delivering once it is back.
      const seen: LockChange[] = [];
      const stop = backend.watch((c) => seen.push(c));
      server = await startRedis({ port });
      await eventually(async () => backend.ping().then(() => true, () => false), 10_000, 'reconnect');
      const other = createRedisBackend({ id: 'flaky', type: 'redis', url: server.url });
      try {
        await eventually(async () => {
          const h = await other.tryAcquire(`job-${seen.length}-${Date.now()}`, { ttlMs: 5000 });
          await h?.release();
          return seen.some((c) => c.type === 'acquired');
        }, 10_000, 'an acquired event after the restart');
      } finally {
        stop();
        await other.close();
      }
      expect(seen.some((c) => c.type === 'acquired')).toBe(true);
    } finally {
      await backend.close();
      await server.stop();
    }
  });
});
