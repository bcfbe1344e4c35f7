/**
 * Renewal traffic is batched: a process holding many auto-renewed locks renews them in one
 * pipeline per tick (base.ts runRenewals, node.ts extend), not one timer and round trip each.
 * Counted on the server (INFO stats total_reads_processed: one per socket read, so one per
 * pipeline), on a Redis of its own so no other test's traffic is counted. And a watcher (the
 * console) hears renewals with their new expiry instead of reading each lock back.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRedisBackend } from '../lib/backends/redis';
import type { LockChange, LockHandle } from '../lib/locks';
import { startRedis, type RunningServer } from '../scripts/servers';

let server: RunningServer;
let admin: Redis;

beforeAll(async () => {
  server = await startRedis();
  admin = new Redis(server.url);
});

afterAll(async () => {
  admin?.disconnect();
  await server?.stop();
});

async function reads(): Promise<number> {
  const info = await admin.info('stats');
  return Number(/total_reads_processed:(\d+)/.exec(info)![1]);
}

describe('redis renewal batching', { timeout: 30_000 }, () => {
  it('keeps 100 locks alive past 3 TTLs with far fewer server reads than one per renewal', async () => {
    const backend = createRedisBackend({ id: 'renew', type: 'redis', url: server.url });
    const handles: LockHandle[] = [];
    try {
      for (let i = 0; i < 100; i++) handles.push(await backend.acquire(`renew-${i}`, { ttlMs: 600 }));
      const before = await reads();
      await new Promise((r) => setTimeout(r, 1800));
      const used = (await reads()) - before - 1; // our own INFO
      expect(handles.every((h) => h.held)).toBe(true);
      // Unbatched: 100 locks × (1800 / 200 ms) ≈ 900 renewals; ioredis coalesced them into ~190 reads
      // (bench, before batching). Batched: about one pipeline per tick, ~20 reads.
      expect(used).toBeLessThan(100);
      const ttls = await Promise.all(handles.slice(0, 5).map((h) => backend.get(h.name)));
      expect(ttls.every((l) => l !== null && (l.ttlMs ?? 0) > 0)).toBe(true);
    } finally {
      await Promise.allSettled(handles.map((h) => h.release()));
      await backend.close();
    }
  });

  it('a watcher hears each renewal with its new expiry and reads nothing back for it', async () => {
    const holder = createRedisBackend({ id: 'renew-holder', type: 'redis', url: server.url });
    const watcher = createRedisBackend({ id: 'renew-watcher', type: 'redis', url: server.url });
    const seen: LockChange[] = [];
    const stop = watcher.watch((c) => c.key.startsWith('watched-') && seen.push(c));
    try {
      await new Promise((r) => setTimeout(r, 200)); // subscribed
      const handles = await Promise.all(Array.from({ length: 20 }, (_, i) => holder.acquire(`watched-${i}`, { ttlMs: 600 })));
      const scriptedReads = async () => Number(/cmdstat_evalsha_ro:calls=(\d+)/.exec(await admin.info('commandstats'))?.[1] ?? 0);
      // Each acquisition is read back once (it carries no lock data): wait for those first.
      for (let t = 0; t < 50 && seen.filter((c) => c.type === 'acquired' && c.lock).length < 20; t++) await new Promise((r) => setTimeout(r, 20));
      const before = await scriptedReads();
      await new Promise((r) => setTimeout(r, 1500)); // ~7 renewals each (every 200 ms; a watcher passes on one a second per lock)
      const renewals = seen.filter((c) => c.type === 'changed');
      // Older: a read of the lock (a read-own script) per renewal, from every watching process.
      expect(await scriptedReads()).toBe(before);
      expect(renewals.length).toBeGreaterThanOrEqual(20);
      for (const c of renewals) {
        const h = handles.find((x) => x.name === c.key)!;
        expect(c.lock).toBeNull();
        expect(c.renewal?.fence).toBe(h.fence);
        expect(c.renewal!.expiresAt).toBeGreaterThan(c.at);
        expect(c.renewal!.expiresAt).toBeLessThanOrEqual(c.at + 600);
      }
      await Promise.all(handles.map((h) => h.release()));
    } finally {
      stop();
      await Promise.all([holder.close(), watcher.close()]);
    }
  });
});
