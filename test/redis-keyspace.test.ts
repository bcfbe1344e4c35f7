/**
 * Where the Redis server publishes keyspace notifications, foreign locks reach a watcher within
 * a round trip; where it does not, nothing is turned on behind the operator's back.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRedisBackend } from '../lib/backends/redis';
import type { LockChange } from '../lib/locks';
import { startRedis, type RunningServer } from '../scripts/servers';
import { eventually } from './contract';

describe('redis watch: foreign locks via keyspace notifications', { timeout: 20_000 }, () => {
  let server: RunningServer;
  let writer: Redis;

  beforeAll(async () => {
    server = await startRedis({ args: ['--notify-keyspace-events', 'KEA'] });
    writer = new Redis(server.url);
  });
  afterAll(async () => {
    writer?.disconnect();
    await server?.stop();
  });

  it('pushes a foreign acquire, renewal and release as they happen', async () => {
    const backend = createRedisBackend({ id: 'ks', type: 'redis', url: server.url, match: ['lock:*'] });
    const seen: LockChange[] = [];
    const stop = backend.watch((c) => seen.push(c));
    try {
      await new Promise((r) => setTimeout(r, 200)); // let the pattern subscription settle
      const t0 = Date.now();
      await writer.set('lock:report', 'a1b2c3d4e5f60718293a4b5c6d7e8f90', 'PX', 10_000, 'NX');
      await eventually(() => seen.some((c) => c.key === 'lock:report' && c.type === 'acquired'), 1000, 'acquired');
      expect(Date.now() - t0).toBeLessThan(1000);
      const acquired = seen.find((c) => c.type === 'acquired')!;
      expect(acquired.lock).toMatchObject({ format: 'redis-plain', key: 'lock:report' });
      await writer.pexpire('lock:report', 20_000);
      await eventually(() => seen.some((c) => c.key === 'lock:report' && c.type === 'changed'), 1000, 'changed');
      await writer.del('lock:report');
      await eventually(() => seen.some((c) => c.key === 'lock:report' && c.type === 'released'), 1000, 'released');
    } finally {
      stop();
      await backend.close();
    }
  });

  it('leaves the server configuration alone when notifications are off', async () => {
    const plain = await startRedis();
    const backend = createRedisBackend({ id: 'ks-off', type: 'redis', url: plain.url, match: ['lock:*'] });
    const stop = backend.watch(() => undefined);
    try {
      await new Promise((r) => setTimeout(r, 200));
      const probe = new Redis(plain.url);
      const [, flags] = (await probe.config('GET', 'notify-keyspace-events')) as [string, string];
      probe.disconnect();
      expect(flags).toBe('');
    } finally {
      stop();
      await backend.close();
      await plain.stop();
    }
  });
});
