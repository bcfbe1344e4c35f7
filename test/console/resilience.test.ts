/**
 * A backend that goes down makes its own status `down` and never fails the requests for the
 * others (contract.md §3); when it comes back, the console uses it again by itself, watch
 * included.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRedisBackend } from '../../lib/backends/redis';
import { createSqliteBackend } from '../../lib/backends/sqlite';
import type { LockBackend, LockHandle, LockInfo } from '../../lib/locks/types';
import { startRedis, type RunningServer } from '../../scripts/servers';
import { eventually, openEvents, startConsole, type ConsoleServer, type SseClient } from './harness';

const OP = `op-${randomBytes(12).toString('hex')}`;
const RUN = randomBytes(3).toString('hex');

let redisServer: RunningServer;
let redisPort: number;
let server: ConsoleServer;
let dir: string;
let local: LockBackend;
let cache: LockBackend;
let sse: SseClient;
const handles: LockHandle[] = [];

type Backends = { backends: Array<{ id: string; status: string; error?: string; latencyMs?: number }> };

async function get<T>(path: string): Promise<{ status: number; body: T; ms: number }> {
  const t0 = performance.now();
  const res = await server.fetch(path, { token: OP });
  return { status: res.status, body: (await res.json()) as T, ms: performance.now() - t0 };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lockdeck-resilience-'));
  const sqlitePath = join(dir, 'locks.db');
  redisServer = await startRedis();
  redisPort = redisServer.port;
  local = createSqliteBackend({ id: 'local', type: 'sqlite', path: sqlitePath });
  cache = createRedisBackend({ id: 'cache', type: 'redis', url: redisServer.url });
  server = await startConsole({
    config: {
      backends: [
        { id: 'cache', type: 'redis', url: redisServer.url },
        { id: 'local', type: 'sqlite', path: sqlitePath },
      ],
    },
    env: {
      LOCKDECK_OPERATOR_TOKEN: OP,
      LOCKDECK_HEALTH_INTERVAL_MS: '500',
      LOCKDECK_PING_TIMEOUT_MS: '500',
      LOCKDECK_BACKEND_TIMEOUT_MS: '1000',
    },
  });
  handles.push(await local.acquire(`local-${RUN}`, { ttlMs: 60_000 }));
  handles.push(await cache.acquire(`cache-${RUN}`, { ttlMs: 60_000 }));
  sse = await openEvents(server, { token: OP });
  await sse.waitFor((e) => e.event === 'snapshot');
}, 600_000);

afterAll(async () => {
  sse?.close();
  await Promise.allSettled(handles.map((h) => h.release()));
  await Promise.allSettled([local?.close(), cache?.close()]);
  await server?.stop();
  await redisServer?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('a Redis backend that stops', () => {
  it('is shown down with an error while SQLite keeps working, and /api/locks still answers 200 quickly', async () => {
    const before = await get<{ locks: LockInfo[] }>('/api/locks');
    expect(before.body.locks.map((l) => l.key).sort()).toEqual([`cache-${RUN}`, `local-${RUN}`]);

    await redisServer.stop();

    const down = await eventually(async () => {
      const r = await get<Backends>('/api/backends');
      return r.body.backends.find((b) => b.id === 'cache' && b.status === 'down') ? r : null;
    }, 10_000, 'cache to be reported down');
    expect(down.status).toBe(200);
    const cacheStatus = down.body.backends.find((b) => b.id === 'cache')!;
    expect(cacheStatus.error).toEqual(expect.any(String));
    expect(cacheStatus.error!.length).toBeGreaterThan(0);
    expect(down.body.backends.find((b) => b.id === 'local')).toMatchObject({ status: 'up' });

    const ev = await sse.waitFor((e) => e.event === 'backend' && (e.data as { id: string; status: string }).status === 'down', 5000);
    expect(ev.data).toMatchObject({ id: 'cache', type: 'redis', status: 'down', error: expect.any(String) });

    // Several rounds, so a slow path would show.
    for (let i = 0; i < 3; i++) {
      const list = await get<{ locks: LockInfo[]; unavailable: Array<{ backend: string; error: string }> }>('/api/locks');
      expect(list.status).toBe(200);
      expect(list.body.locks.map((l) => l.key)).toEqual([`local-${RUN}`]);
      expect(list.body.unavailable).toEqual([{ backend: 'cache', error: expect.any(String) }]);
      expect(list.ms).toBeLessThan(1000);
    }

    // SQLite is unaffected: new locks show up, live.
    const name = `local-while-down-${RUN}`;
    const t0 = performance.now();
    handles.push(await local.acquire(name, { ttlMs: 60_000 }));
    const acq = await sse.waitFor((e) => e.event === 'acquired' && (e.data as { key: string }).key === name, 3000);
    expect(acq.receivedAt - t0).toBeLessThan(1000);
    expect((await get<{ locks: LockInfo[] }>('/api/locks?backend=local')).body.locks.some((l) => l.key === name)).toBe(true);
  });

  it('requests aimed at the down backend answer 503 naming it; a release attempt is audited as an error', async () => {
    const list = await server.fetch('/api/locks?backend=cache', { token: OP });
    expect(list.status).toBe(503);
    const body = (await list.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('backend_unavailable');
    expect(body.error.message).toContain('"cache"');

    const detail = await server.fetch(`/api/locks/detail?backend=cache&key=cache-${RUN}`, { token: OP });
    expect(detail.status).toBe(503);

    const rel = await server.fetch('/api/locks/release', {
      method: 'POST',
      token: OP,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ backend: 'cache', key: `cache-${RUN}`, reason: 'while down' }),
    });
    expect(rel.status).toBe(503);
    const audit = (await (await server.fetch(`/api/audit?backend=cache`, { token: OP })).json()) as { entries: Array<Record<string, unknown>> };
    expect(audit.entries[0]).toMatchObject({ key: `cache-${RUN}`, result: 'error', status: 503, code: 'backend_unavailable' });

    const metrics = await (await server.fetch('/api/metrics', { token: OP })).text();
    expect(metrics).toMatch(/^lockdeck_backend_up\{backend="cache",type="redis"\} 0/m);
    expect(metrics).toMatch(/^lockdeck_backend_up\{backend="local",type="sqlite"\} 1/m);
  });

  it('comes back by itself: status up, locks listed, and its watch pushes again', async () => {
    redisServer = await startRedis({ port: redisPort });
    await eventually(async () => {
      const r = await get<Backends>('/api/backends');
      return r.body.backends.find((b) => b.id === 'cache')?.status === 'up';
    }, 15_000, 'cache to come back up');
    await sse.waitFor((e) => e.event === 'backend' && (e.data as { id: string; status: string }).status === 'up', 5000);

    // The new server is empty: the old lock is gone with it; a new one is seen live.
    const name = `cache-after-${RUN}`;
    // This test's own client reconnects on its own schedule.
    await eventually(() => cache.ping().then(() => true, () => false), 10_000, 'the test client to reconnect');
    const t0 = performance.now();
    const h = await cache.acquire(name, { ttlMs: 30_000 });
    handles.push(h);
    const acq = await sse.waitFor((e) => e.event === 'acquired' && (e.data as { key: string }).key === name, 5000);
    expect(acq.receivedAt - t0).toBeLessThan(1000);
    const list = await get<{ locks: LockInfo[]; unavailable: unknown[] }>('/api/locks');
    expect(list.body.unavailable).toEqual([]);
    expect(list.body.locks.map((l) => l.key)).toContain(name);
  });
});
