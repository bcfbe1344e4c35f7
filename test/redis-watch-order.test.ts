/**
 * Regression: watch() must deliver a lock's events in the order they happened. An `acquired`
 * needs a read of the lock, and a `released` that came right behind it on the events channel used
 * to overtake that read: a watcher (the console) then saw the lock come back after its release,
 * with no fence, and kept showing it until the next reconcile (found by the console load test).
 */
import { describe, expect, inject, it } from 'vitest';

import { createRedisBackend } from '../lib/backends/redis';
import type { LockChange } from '../lib/locks';
import { randomId } from '../lib/locks/util';
import { eventually } from './contract';

describe('redis watch order', { timeout: 30_000 }, () => {
  it('an acquire released at once is seen as acquired, then released — never the other way round', async () => {
    const url = inject('redisUrl');
    const worker = createRedisBackend({ id: 'order', type: 'redis', url });
    const watcher = createRedisBackend({ id: 'order', type: 'redis', url });
    const prefix = `order-${randomId(4)}-`;
    const seen: LockChange[] = [];
    const stop = watcher.watch((c) => c.key.startsWith(prefix) && seen.push(c));
    try {
      await new Promise((r) => setTimeout(r, 200)); // subscribed
      const keys = Array.from({ length: 10 }, (_, i) => `${prefix}${i}`);
      let cycles = 0;
      for (let round = 0; round < 20; round++) {
        await Promise.all(
          keys.map(async (k) => {
            const h = await worker.acquire(k, { ttlMs: 10_000 });
            await h.release(); // no await between: the release event is right behind the acquire's
            cycles++;
          }),
        );
      }
      await eventually(() => seen.filter((c) => c.type === 'released').length >= cycles, 10_000, 'every release seen');
      const state = new Map<string, string | null>();
      for (const c of seen) {
        if (c.type === 'acquired' || c.type === 'changed') {
          expect(c.lock, `${c.type} of ${c.key} without a lock`).not.toBeNull();
          state.set(c.key, c.lock!.fence);
        } else if (c.type === 'released') {
          expect(state.get(c.key), `release of ${c.key} fence ${c.lock?.fence} before its acquire`).toBe(c.lock?.fence);
          state.delete(c.key);
        }
      }
      expect([...state.keys()]).toEqual([]);
    } finally {
      stop();
      await Promise.all([worker.close(), watcher.close()]);
    }
  });
});
