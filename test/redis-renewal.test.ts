/**
 * Renewal traffic is batched: a process holding many auto-renewed locks renews them in one
 * pipeline per tick (base.ts runRenewals, node.ts extend), not one timer and round trip each.
 * Counted on the server (INFO stats total_reads_processed: one per socket read, so one per
 * pipeline), on a Redis of its own so no other test's traffic is counted.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRedisBackend } from '../lib/backends/redis';
import type { LockHandle } from '../lib/locks';
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
});
