/**
 * Redlock keeps working with a minority of masters down and refuses to pretend with a majority
 * down. These tests start (and kill) their own three masters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRedisBackend } from '../lib/backends/redis';
import { BackendUnavailableError, compareFences, type LockBackend } from '../lib/locks';
import { startRedis, type RunningServer } from '../scripts/servers';

describe('Redlock with masters down', { timeout: 30_000 }, () => {
  let servers: RunningServer[] = [];
  let a: LockBackend;
  let b: LockBackend;

  beforeAll(async () => {
    servers = await Promise.all([startRedis(), startRedis(), startRedis()]);
    const config = { id: 'redlock-faults', type: 'redis' as const, urls: servers.map((s) => s.url) };
    // Short timeouts so a dead master costs little; the defaults are for production.
    a = createRedisBackend(config, { commandTimeoutMs: 500 });
    b = createRedisBackend(config, { commandTimeoutMs: 500 });
  });

  afterAll(async () => {
    await Promise.allSettled([a?.close(), b?.close()]);
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('keeps mutual exclusion and increasing fences with one master of three down', async () => {
    const before = await a.acquire('job', { ttlMs: 5000 });
    await before.release();
    await servers[2]!.stop();
    const h = await a.acquire('job', { ttlMs: 5000 });
    expect(compareFences(h.fence, before.fence)).toBe(1);
    expect(await b.tryAcquire('job', { ttlMs: 5000 })).toBeNull();
    await h.extend();
    await h.release();
    const h2 = await b.acquire('job', { ttlMs: 5000, waitMs: 2000 });
    expect(compareFences(h2.fence, h.fence)).toBe(1);
    await h2.release();
  });

  it('refuses to grant with a majority of masters down', async () => {
    await servers[1]!.stop();
    await expect(a.acquire('job-2', { ttlMs: 5000 })).rejects.toBeInstanceOf(BackendUnavailableError);
  });
});
