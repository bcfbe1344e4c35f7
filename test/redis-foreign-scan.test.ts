/**
 * The foreign-lock scan covers the whole keyspace once, whatever the number of globs, and says
 * when it stops at its bound. Regression: with one SCAN cursor per glob, the six default globs
 * split the budget six ways, and on a large keyspace the console showed 10 of 60 foreign locks
 * with no sign that any were missing (found by the console-at-scale bench). The background
 * discovery (discovery.ts) that list() now relies on walks the keyspace the same way.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { ForeignDiscovery } from '../lib/backends/redis/discovery';
import { scanForeign } from '../lib/backends/redis/formats';
import { startRedis, type RunningServer } from '../scripts/servers';

let server: RunningServer;
let redis: Redis;
const MATCH = ['lock:*', 'locks:*', 'mutex:*', 'job-lock:*', 'lock.*', 'leader:*'];

beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url);
  // 20,000 other keys, and 10 foreign locks under each of the six globs.
  for (let i = 0; i < 20_000; i += 1000) {
    const p = redis.pipeline();
    for (let j = i; j < i + 1000; j++) p.set(`cache:item:${j}`, 'x');
    await p.exec();
  }
  const p = redis.pipeline();
  for (const g of MATCH) for (let i = 0; i < 10; i++) p.set(`${g.slice(0, -1)}res-${i}`, `token-${i}`, 'PX', 600_000);
  await p.exec();
});

afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
});

describe('foreign-lock scan over many globs', { timeout: 60_000 }, () => {
  it('finds every foreign lock under six globs with a budget of one pass over the keyspace', async () => {
    const now = Date.now();
    // 25,000 keys examined: enough for one pass over 20,060 keys, not for six.
    const r = await scanForeign(redis, { backendId: 'r', match: MATCH, ownPrefix: 'lockdeck', now, maxKeysScanned: 25_000, scanCount: 500 });
    expect(r.locks).toHaveLength(60);
    expect(r.truncated).toBe(false);
  });

  it('the background discovery walks the keyspace once per pass with one cursor, and finds all of them', async () => {
    const scans = async () => Number(/^cmdstat_scan:calls=(\d+)/m.exec(await redis.info('commandstats'))?.[1] ?? 0);
    const d = new ForeignDiscovery(redis, { backendId: 'r', match: MATCH, ownPrefix: 'lockdeck' }, { intervalMs: 3_600_000, duty: 1, scanCount: 500 });
    try {
      const before = await scans();
      await d.passNow();
      // 20,060 keys at COUNT 500: about 41 calls for one pass; six cursors would be six times that.
      expect((await scans()) - before).toBeLessThanOrEqual(Math.ceil(20_060 / 500) + 5);
      expect(d.status()).toMatchObject({ passes: 1, known: 60, lastError: null });
      const locks = await d.read(undefined, 1000, 'r', Date.now());
      expect(locks).toHaveLength(60);
      expect(new Set(locks.map((l) => l.format))).toEqual(new Set(['redis-plain']));
    } finally {
      d.stop();
    }
  });

  it('says it was truncated when the bound is smaller than the keyspace', async () => {
    const r = await scanForeign(redis, { backendId: 'r', match: MATCH, ownPrefix: 'lockdeck', now: Date.now(), maxKeysScanned: 2_000, scanCount: 500 });
    expect(r.truncated).toBe(true);
    expect(r.locks.length).toBeLessThan(60);
  });
});
