/** A Redis that goes away and comes back: the backend reports it and recovers by itself. */
import Redis from 'ioredis';
import { describe, expect, it } from 'vitest';

import { createRedisBackend } from '../lib/backends/redis';
import { BackendUnavailableError, InvalidArgumentError, type LockChange } from '../lib/locks';
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

// Found by the torture run (RELIABILITY.md, redis-ephemeral × server-kill): with a plain INCR
// counter, a Redis restarted without persistence handed out fence 1 again (551 regressions in 4
// restarts). Fences now have the server clock in µs as their floor.
describe('regression (torture: redis-ephemeral server-kill): fences keep increasing', { timeout: 30_000 }, () => {
  it('across a restart that forgot every key, and when the stored fence is ahead of the clock', async () => {
    let server = await startRedis();
    const port = server.port;
    const backend = createRedisBackend({ id: 'fences', type: 'redis', url: server.url }, { commandTimeoutMs: 500 });
    try {
      const fences: bigint[] = [];
      const cycle = async (name: string) => {
        const h = await backend.tryAcquire(name, { ttlMs: 5000 });
        if (!h) throw new Error(`${name} was not free`);
        fences.push(BigInt(h.fence));
        await h.release();
      };
      for (let i = 0; i < 3; i++) await cycle('job');
      await server.stop();
      server = await startRedis({ port });
      await eventually(async () => backend.ping().then(() => true, () => false), 10_000, 'reconnect');
      const raw = new Redis(server.url);
      try {
        expect(await raw.exists('lockdeck:{job}:fence')).toBe(0); // the restart really forgot the counter
        await cycle('job');
        // A counter ahead of the clock (a server whose clock stepped back) goes on from the counter.
        const ahead = fences[fences.length - 1]! + 10n ** 12n;
        await raw.set('lockdeck:{job}:fence', ahead.toString());
        await cycle('job');
        expect(fences[fences.length - 1]).toBe(ahead + 1n);
      } finally {
        raw.disconnect();
      }
      for (let i = 1; i < fences.length; i++) expect(fences[i]! > fences[i - 1]!, `fence ${i}: ${fences.join(', ')}`).toBe(true);
      // handoffTtlMs 0 is the scripts' Redlock mode (plain counter): refused for a single server.
      expect(() => createRedisBackend({ id: 'fences', type: 'redis', url: server.url }, { handoffTtlMs: 0 })).toThrow(InvalidArgumentError);
    } finally {
      await backend.close();
      await server.stop();
    }
  });
});
