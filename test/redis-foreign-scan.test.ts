/**
 * The foreign-lock scan covers the whole keyspace once, whatever the number of globs, and says
 * when it stops at its bound. Regression: with one SCAN cursor per glob, the six default globs
 * split the budget six ways, and on a large keyspace the console showed 10 of 60 foreign locks
 * with no sign that any were missing (found by the console-at-scale bench).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

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

  it('says it was truncated when the bound is smaller than the keyspace', async () => {
    const r = await scanForeign(redis, { backendId: 'r', match: MATCH, ownPrefix: 'lockdeck', now: Date.now(), maxKeysScanned: 2_000, scanCount: 500 });
    expect(r.truncated).toBe(true);
    expect(r.locks.length).toBeLessThan(60);
  });
});
