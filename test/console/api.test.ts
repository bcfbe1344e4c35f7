/**
 * The console's HTTP API against a real `next start` (contract.md §2, §3), with a real SQLite
 * store and a real Redis (started for this file), locks taken through lib/ as applications do,
 * and a foreign redis-py-style lock written with plain SET NX PX.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createRedisBackend } from '../../lib/backends/redis';
import { createSqliteBackend } from '../../lib/backends/sqlite';
import { delay } from '../../lib/locks/util';
import type { LockBackend, LockHandle, LockInfo } from '../../lib/locks/types';
import { startRedis, type RunningServer } from '../../scripts/servers';
import { eventually, openEvents, startConsole, type ConsoleServer, type SseClient } from './harness';

const OP = `op-${randomBytes(12).toString('hex')}`;
const VW = `vw-${randomBytes(12).toString('hex')}`;
const RUN = randomBytes(3).toString('hex');
const JSON_HEADERS = { 'content-type': 'application/json' };

let redisServer: RunningServer;
let server: ConsoleServer;
let dir: string;
let sqlitePath: string;
let local: LockBackend;
let cache: LockBackend;
let redis: Redis;
const handles: LockHandle[] = [];

/** A Python `uuid.uuid1().hex` made at `ms`: what redis-py writes as its lock token. */
function uuid1Hex(ms: number): string {
  const ticks = BigInt(ms) * 10_000n + 0x01b21dd213814000n;
  const low = (ticks & 0xffffffffn).toString(16).padStart(8, '0');
  const mid = ((ticks >> 32n) & 0xffffn).toString(16).padStart(4, '0');
  const hi = (((ticks >> 48n) & 0x0fffn) | 0x1000n).toString(16).padStart(4, '0');
  const seq = (0x8000 | (randomBytes(2).readUInt16BE() & 0x3fff)).toString(16);
  return `${low}${mid}${hi}${seq}${randomBytes(6).toString('hex')}`;
}

async function take(backend: LockBackend, name: string, ttlMs = 30_000): Promise<LockHandle> {
  const h = await backend.acquire(name, { ttlMs });
  handles.push(h);
  return h;
}

async function json<T = Record<string, unknown>>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

type ErrorBody = { error: { code: string; message: string } };

async function expectError(res: Response, status: number, code: string): Promise<ErrorBody> {
  const body = await json<ErrorBody>(res);
  expect({ status: res.status, body }).toMatchObject({ status, body: { error: { code } } });
  expect(typeof body.error.message).toBe('string');
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);
  return body;
}

function release(body: unknown, init: RequestInit & { token?: string } = {}): Promise<Response> {
  return server.fetch('/api/locks/release', {
    method: 'POST',
    token: OP,
    ...init,
    headers: { ...JSON_HEADERS, ...(init.headers as Record<string, string> | undefined) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function locks(query = ''): Promise<{ now: number; locks: LockInfo[]; unavailable: unknown[]; truncated: boolean }> {
  const res = await server.fetch(`/api/locks${query}`, { token: VW });
  expect(res.status).toBe(200);
  return json(res);
}

async function auditEntries(query: string): Promise<Array<Record<string, unknown>>> {
  const res = await server.fetch(`/api/audit?${query}`, { token: VW });
  expect(res.status).toBe(200);
  return (await json<{ entries: Array<Record<string, unknown>> }>(res)).entries;
}

/** Logs in through the `/?token=` link and returns the Cookie header value. */
async function loginCookie(token: string): Promise<string> {
  const res = await server.fetch(`/?token=${encodeURIComponent(token)}`);
  expect(res.status).toBe(303);
  const setCookie = res.headers.get('set-cookie')!;
  return setCookie.split(';')[0]!;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lockdeck-api-test-'));
  sqlitePath = join(dir, 'locks.db');
  redisServer = await startRedis();
  redis = new Redis(redisServer.url);
  local = createSqliteBackend({ id: 'local', type: 'sqlite', path: sqlitePath });
  cache = createRedisBackend({ id: 'cache', type: 'redis', url: redisServer.url });
  server = await startConsole({
    config: {
      backends: [
        { id: 'local', type: 'sqlite', path: sqlitePath },
        { id: 'cache', type: 'redis', url: redisServer.url, match: ['app:*'] },
      ],
    },
    env: {
      LOCKDECK_OPERATOR_TOKEN: OP,
      LOCKDECK_VIEWER_TOKEN: VW,
      LOCKDECK_RELEASE_RATE_LIMIT: '1000',
      LOCKDECK_RECONCILE_INTERVAL_MS: '500',
      LOCKDECK_HEARTBEAT_MS: '300',
    },
  });
}, 600_000);

afterAll(async () => {
  await Promise.allSettled(handles.map((h) => h.release()));
  await Promise.allSettled([local?.close(), cache?.close()]);
  await server?.stop();
  redis?.disconnect();
  await redisServer?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('authentication', () => {
  it('GET /api/health is the one anonymous route', async () => {
    const res = await server.fetch('/api/health');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });

  it('every other route answers 401 without credentials, with a bad token, or with a bad cookie', async () => {
    const routes: Array<[string, string]> = [
      ['GET', '/api/backends'],
      ['GET', '/api/locks'],
      ['GET', '/api/locks/detail?backend=local&key=x'],
      ['GET', '/api/locks/history?backend=local&key=x'],
      ['GET', '/api/events'],
      ['GET', '/api/audit'],
      ['GET', '/api/metrics'],
      ['GET', '/api/session'],
      ['POST', '/api/locks/release'],
      ['POST', '/api/logout'],
    ];
    for (const [method, path] of routes) {
      for (const init of [{}, { token: 'not-the-token' }, { headers: { cookie: 'lockdeck_session=eyJ2IjoxfQ.forged' } }] as Array<RequestInit & { token?: string }>) {
        const res = await server.fetch(path, { method, ...init, headers: { ...JSON_HEADERS, ...(init.headers as object) }, body: method === 'POST' ? '{}' : undefined });
        expect(res.status, `${method} ${path} ${JSON.stringify(init)}`).toBe(401);
        await expectError(res, 401, 'unauthorized');
      }
    }
  });

  it('x-middleware-subrequest is refused, and never skips the checks', async () => {
    for (const token of [undefined, VW]) {
      const res = await server.fetch('/api/locks', { token, headers: { 'x-middleware-subrequest': 'middleware:middleware:middleware:middleware:middleware' } });
      expect(res.status).toBe(400);
      await expectError(res, 400, 'bad_request');
    }
    const r = await server.fetch('/api/locks', { headers: { 'x-middleware-subrequest': 'src/middleware' } });
    expect(r.status).not.toBe(200);
  });

  it('/?token= logs a browser in once and drops the token from the URL; a bad token sets no cookie', async () => {
    const res = await server.fetch(`/?token=${VW}&tab=locks`);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toMatch(/^(http:\/\/127\.0\.0\.1:\d+)?\/\?tab=locks$/);
    const cookie = res.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^lockdeck_session=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+/);
    expect(cookie).not.toContain(VW);
    const session = await server.fetch('/api/session', { headers: { cookie: cookie.split(';')[0]! } });
    expect(await json(session)).toMatchObject({ role: 'viewer', readOnly: false, canRelease: false, via: 'cookie' });

    const bad = await server.fetch('/?token=wrong');
    expect(bad.status).toBe(401);
    expect(bad.headers.get('set-cookie')).toBeNull();
  });

  it('POST /api/login (form login) and POST /api/logout', async () => {
    const res = await server.fetch('/api/login', { method: 'POST', headers: { ...JSON_HEADERS, origin: server.url }, body: JSON.stringify({ token: OP }) });
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ role: 'operator', readOnly: false });
    const cookie = res.headers.get('set-cookie')!.split(';')[0]!;
    expect((await server.fetch('/api/session', { headers: { cookie } })).status).toBe(200);
    await expectError(await server.fetch('/api/login', { method: 'POST', headers: { ...JSON_HEADERS, origin: server.url }, body: JSON.stringify({ token: 'x' }) }), 401, 'unauthorized');
    await expectError(await server.fetch('/api/login', { method: 'POST', headers: { ...JSON_HEADERS, origin: 'http://evil.example' }, body: JSON.stringify({ token: OP }) }), 403, 'csrf');

    const out = await server.fetch('/api/logout', { method: 'POST', headers: { cookie, origin: server.url } });
    expect(out.status).toBe(200);
    expect(out.headers.get('set-cookie')).toMatch(/^lockdeck_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0/);
    await expectError(await server.fetch('/api/logout', { method: 'POST', headers: { cookie, origin: 'http://evil.example' } }), 403, 'csrf');
  });

  it('GET /api/session tells the UI the role and read-only mode', async () => {
    expect(await json(await server.fetch('/api/session', { token: OP }))).toMatchObject({ role: 'operator', readOnly: false, canRelease: true, via: 'bearer' });
    expect(await json(await server.fetch('/api/session', { token: VW }))).toMatchObject({ role: 'viewer', readOnly: false, canRelease: false });
  });

  it('unknown API routes answer 404 in the error shape', async () => {
    await expectError(await server.fetch('/api/nope', { token: VW }), 404, 'not_found');
    await expectError(await server.fetch('/api/locks/nope/deeper', { method: 'POST', token: OP }), 404, 'not_found');
  });
});

describe('backends and locks', () => {
  it('GET /api/backends: both up, with latency', async () => {
    const res = await server.fetch('/api/backends', { token: VW });
    expect(res.status).toBe(200);
    const { backends } = await json<{ backends: Array<Record<string, unknown>> }>(res);
    expect(backends.map((b) => [b.id, b.type, b.status])).toEqual([
      ['local', 'sqlite', 'up'],
      ['cache', 'redis', 'up'],
    ]);
    for (const b of backends) {
      expect(typeof b.latencyMs).toBe('number');
      expect(b.error).toBeUndefined();
    }
  });

  it('GET /api/backends and /api/metrics say how fresh the foreign-lock discovery of a Redis backend is', async () => {
    const key = `app:discovery-${RUN}`;
    await redis.set(key, randomBytes(16).toString('hex'), 'PX', 60_000);
    // Found once a pass that started after the SET completes (the console lists every few seconds,
    // which keeps the discovery going; passes run at least once a second on this tiny keyspace).
    let d: Record<string, unknown> | undefined;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const { backends } = await json<{ backends: Array<Record<string, unknown>> }>(await server.fetch('/api/backends', { token: VW }));
      d = backends.find((b) => b.id === 'cache')?.discovery as Record<string, unknown> | undefined;
      if (d && (d.known as number) >= 1 && (d.passes as number) >= 2) break;
      await delay(200);
    }
    expect(d).toMatchObject({ behind: false, full: false, lastError: null });
    expect(d!.known).toBeGreaterThanOrEqual(1);
    expect(d!.lastPassAgeMs).toBeLessThan(d!.staleAfterMs as number);
    // SQLite has no discovery: the field is absent, not null.
    const { backends } = await json<{ backends: Array<Record<string, unknown>> }>(await server.fetch('/api/backends', { token: VW }));
    expect(backends.find((b) => b.id === 'local')).not.toHaveProperty('discovery');
    const text = await (await server.fetch('/api/metrics', { token: VW })).text();
    expect(Number(/^lockdeck_foreign_discovery_known_locks\{backend="cache"\} (\d+)/m.exec(text)?.[1])).toBeGreaterThanOrEqual(1);
    expect(text).toMatch(/^lockdeck_foreign_discovery_behind\{backend="cache"\} 0$/m);
    expect(text).toMatch(/^lockdeck_foreign_discovery_last_pass_age_seconds\{backend="cache"\} [\d.e-]+$/m);
    expect(text).not.toMatch(/lockdeck_foreign_discovery_[a-z_]+\{backend="local"\}/);
    await redis.del(key);
  });

  it('GET /api/locks merges every backend, sorted by backend then key, in the LockInfo shape', async () => {
    await take(local, `list-b-${RUN}`);
    await take(local, `list-a-${RUN}`);
    await take(cache, `list-c-${RUN}`);
    const before = Date.now();
    const body = await locks(`?q=${RUN}`);
    expect(body.now).toBeGreaterThanOrEqual(before);
    const mine = body.locks.filter((l) => l.key.startsWith('list-'));
    expect(mine.map((l) => `${l.backend}/${l.key}`)).toEqual([`cache/list-c-${RUN}`, `local/list-a-${RUN}`, `local/list-b-${RUN}`]);
    for (const l of mine) {
      expect(Object.keys(l)).toEqual(
        expect.arrayContaining(['backend', 'key', 'format', 'kind', 'owner', 'holders', 'fence', 'acquiredAt', 'expiresAt', 'ttlMs', 'waiters', 'health']),
      );
      expect(l).toMatchObject({ format: 'lockdeck', kind: 'mutex', health: 'ok', waiters: [] });
      expect(l.fence).toMatch(/^\d+$/);
      expect(l.owner).toBeTruthy();
      expect(l.ttlMs).toBeGreaterThan(20_000);
      expect(l.ttlMs).toBeLessThanOrEqual(30_000);
      expect(l.holders).toEqual([{ owner: l.owner, fence: l.fence, acquiredAt: l.acquiredAt }]);
    }
    expect(body.unavailable).toEqual([]);
  });

  it('filters by backend, by plain-text q, and bounds limit', async () => {
    const onlyLocal = await locks(`?backend=local&q=${RUN}`);
    expect(onlyLocal.locks.every((l) => l.backend === 'local')).toBe(true);
    expect(onlyLocal.locks.length).toBeGreaterThanOrEqual(2);
    const one = await locks(`?q=list-&limit=1`);
    expect(one.locks).toHaveLength(1);
    expect(one.truncated).toBe(true);
    expect((await locks(`?q=${encodeURIComponent(`LIST-A-${RUN}`)}`)).locks.map((l) => l.key)).toEqual([`list-a-${RUN}`]);
    for (const bad of ['limit=0', 'limit=10001', 'limit=abc', 'limit=-1', 'limit=1.5']) {
      await expectError(await server.fetch(`/api/locks?${bad}`, { token: VW }), 400, 'invalid_request');
    }
    await expectError(await server.fetch('/api/locks?backend=nope', { token: VW }), 400, 'unknown_backend');
    await expectError(await server.fetch('/api/locks?backend=Bad%20Id', { token: VW }), 400, 'invalid_request');
    await expectError(await server.fetch(`/api/locks?q=${'x'.repeat(600)}`, { token: VW }), 400, 'invalid_request');
    await expectError(await server.fetch('/api/locks?q=a%00b', { token: VW }), 400, 'invalid_request');
    await expectError(await server.fetch('/api/locks?backend=local&backend=cache', { token: VW }), 400, 'invalid_request');
  });

  it('glob characters in q are plain text, on SQLite and on Redis (own and foreign keys)', async () => {
    await take(local, `glob*[x]?-${RUN}`);
    await take(cache, `glob*[x]?-${RUN}`);
    await redis.set(`app:glob-${RUN}`, randomBytes(16).toString('hex'), 'PX', 30_000);
    for (const q of ['*', '*[x]?', '?', '[x]', '\\']) {
      const found = (await locks(`?q=${encodeURIComponent(q)}`)).locks.map((l) => `${l.backend}/${l.key}`);
      const literal = q === '\\' ? [] : [`cache/glob*[x]?-${RUN}`, `local/glob*[x]?-${RUN}`];
      expect(found, `q=${q}`).toEqual(literal);
    }
    await redis.del(`app:glob-${RUN}`);
  });

  it('holder tokens never leave the server (only a short hash)', async () => {
    const h1 = await take(local, `secret-${RUN}`);
    const h2 = await take(cache, `secret-${RUN}`);
    const db = new Database(sqlitePath, { readonly: true });
    const sqliteToken = (db.prepare('SELECT token FROM locks WHERE name = ?').get(h1.name) as { token: string }).token;
    db.close();
    const redisToken = await redis.hget(`lockdeck:{${h2.name}}`, 'token');
    expect(sqliteToken).toBeTruthy();
    expect(redisToken).toBeTruthy();
    const texts = [
      await (await server.fetch(`/api/locks?q=${RUN}`, { token: VW })).text(),
      await (await server.fetch(`/api/locks/detail?backend=local&key=${h1.name}`, { token: VW })).text(),
      await (await server.fetch(`/api/locks/detail?backend=cache&key=${h2.name}`, { token: VW })).text(),
    ];
    for (const t of texts) {
      expect(t).not.toContain(sqliteToken);
      expect(t).not.toContain(redisToken!);
    }
    const detail = JSON.parse(texts[1]!) as { lock: LockInfo };
    expect(detail.lock.meta?.tokenHash).toMatch(/^[0-9a-f]{10}$/);
  });

  it('GET /api/locks/detail: the lock and its history; 404 when nothing holds the key; 400 for bad input', async () => {
    // The first detail read opens the watches; what happens from then on is recorded.
    await server.fetch(`/api/locks/detail?backend=local&key=warmup-${RUN}`, { token: VW });
    const name = `detail-${RUN}`;
    const h = await take(local, name);
    const res = await eventually(async () => {
      const r = await server.fetch(`/api/locks/detail?backend=local&key=${name}`, { token: VW });
      const b = await json<{ now: number; lock: LockInfo; history: Array<Record<string, unknown>> }>(r);
      return b.history?.length ? b : null;
    }, 5000, 'history of the acquisition');
    expect(res.lock).toMatchObject({ backend: 'local', key: name, fence: h.fence });
    expect(res.history[0]).toMatchObject({ type: 'acquired', backend: 'local', key: name, fence: h.fence, owner: h.owner.id, source: 'watch' });
    await h.release();
    await eventually(async () => (await server.fetch(`/api/locks/detail?backend=local&key=${name}`, { token: VW })).status === 404, 5000, '404 after release');
    await expectError(await server.fetch(`/api/locks/detail?backend=local&key=${name}`, { token: VW }), 404, 'not_found');
    // The history of a free lock stays readable.
    const hist = await json<{ history: Array<{ type: string; fence: string; owner: string }> }>(
      await server.fetch(`/api/locks/history?backend=local&key=${name}`, { token: VW }),
    );
    expect(hist.history.map((e) => e.type)).toEqual(['released', 'acquired']);
    expect(hist.history[0]).toMatchObject({ fence: h.fence, owner: h.owner.id });

    await expectError(await server.fetch('/api/locks/detail?backend=local', { token: VW }), 400, 'invalid_request');
    await expectError(await server.fetch('/api/locks/detail?key=x', { token: VW }), 400, 'invalid_request');
    await expectError(await server.fetch(`/api/locks/detail?backend=local&key=${'k'.repeat(600)}`, { token: VW }), 400, 'invalid_request');
    await expectError(await server.fetch('/api/locks/detail?backend=local&key=a%0Ab', { token: VW }), 400, 'invalid_request');
    await expectError(await server.fetch('/api/locks/detail?backend=ghost&key=x', { token: VW }), 400, 'unknown_backend');
  });
});

describe('the event stream', () => {
  let sse: SseClient;

  beforeAll(async () => {
    sse = await openEvents(server, { token: VW });
  });
  afterAll(() => sse?.close());

  it('is text/event-stream and starts with a snapshot of every lock and backend', async () => {
    expect(sse.response.status).toBe(200);
    expect(sse.response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const snap = await sse.waitFor((e) => e.event === 'snapshot');
    const data = snap.data as { now: number; locks: LockInfo[]; backends: Array<{ id: string; status: string }> };
    expect(data.backends.map((b) => [b.id, b.status])).toEqual([
      ['local', 'up'],
      ['cache', 'up'],
    ]);
    expect(data.locks.some((l) => l.key === `list-a-${RUN}`)).toBe(true);
    expect(sse.events[0]!.event).toBe('snapshot');
  });

  it('an acquire through lib reaches the stream in under a second (SQLite and Redis), and so does its release', async () => {
    for (const backend of [local, cache]) {
      const name = `live-${backend.id}-${RUN}`;
      const t0 = performance.now();
      const h = await take(backend, name);
      const acquired = await sse.waitFor((e) => e.event === 'acquired' && (e.data as { key: string }).key === name, 3000);
      expect(acquired.receivedAt - t0, backend.id).toBeLessThan(1000);
      expect(acquired.data).toMatchObject({ type: 'acquired', backend: backend.id, key: name, fence: h.fence, lock: { key: name, fence: h.fence, owner: h.owner.id } });

      const t1 = performance.now();
      await h.release();
      const released = await sse.waitFor((e) => e.event === 'released' && (e.data as { key: string }).key === name, 3000);
      expect(released.receivedAt - t1, backend.id).toBeLessThan(1000);
      // Redis says only "released <key>": the console fills in whose lock it was.
      expect(released.data).toMatchObject({ backend: backend.id, key: name, owner: h.owner.id, fence: h.fence });
    }
  });

  it('a renewal is streamed (changed, id 0, a later expiry) but not stored: the history keeps the acquisition', async () => {
    const name = `renewed-${RUN}`;
    const h = await cache.acquire(name, { ttlMs: 900 }); // auto-renewed every 300 ms
    handles.push(h);
    const key = (e: { data: unknown }) => (e.data as { key: string }).key === name;
    await sse.waitFor((e) => e.event === 'acquired' && key(e), 3000);
    const renewals = () => sse.events.filter((e) => e.event === 'changed' && key(e)).map((e) => e.data as { id: number; fence: string; lock: LockInfo });
    await eventually(async () => (renewals().length >= 3 ? true : null), 5000, 'three renewals on the stream');
    const seen = renewals();
    expect(seen.every((r) => r.id === 0 && r.fence === h.fence && r.lock.fence === h.fence)).toBe(true);
    const expiries = seen.map((r) => r.lock.expiresAt!);
    expect(expiries.at(-1)!).toBeGreaterThan(expiries[0]!);
    const hist = await json<{ history: Array<{ type: string }> }>(await server.fetch(`/api/locks/history?backend=cache&key=${name}`, { token: VW }));
    expect(hist.history.map((e) => e.type)).toEqual(['acquired']);
    await h.release();
    await sse.waitFor((e) => e.event === 'released' && key(e), 3000);
  });

  it('a forced release is a `forced` event', async () => {
    const name = `forced-ev-${RUN}`;
    const h = await take(local, name);
    await sse.waitFor((e) => e.event === 'acquired' && (e.data as { key: string }).key === name, 3000);
    expect((await release({ backend: 'local', key: name, fence: h.fence, reason: 'test forced event' })).status).toBe(200);
    const ev = await sse.waitFor((e) => e.event === 'forced' && (e.data as { key: string }).key === name, 3000);
    expect(ev.data).toMatchObject({ backend: 'local', fence: h.fence });
  });

  it('foreign locks (no change feed of their own) arrive too: through the reconcile, as this Redis sends no keyspace events', async () => {
    const key = `app:report-${RUN}`;
    await redis.set(key, uuid1Hex(Date.now()), 'PX', 30_000, 'NX');
    const ev = await sse.waitFor((e) => e.event === 'acquired' && (e.data as { key: string }).key === key, 5000);
    expect(ev.data).toMatchObject({ backend: 'cache', source: 'reconcile', lock: { format: 'redis-plain', owner: null } });
    await redis.del(key);
    await sse.waitFor((e) => e.event === 'released' && (e.data as { key: string }).key === key, 5000);
  });

  it('an ending the reconcile found first is not recorded again when its watch event comes late', async () => {
    // The lock's keys are deleted behind the watch's back (no event), so the reconcile reports the
    // release; then the release event the watch would have carried arrives, late. One ending.
    const name = `late-release-${RUN}`;
    const h = await take(cache, name);
    await sse.waitFor((e) => e.event === 'acquired' && (e.data as { key: string }).key === name, 5000);
    await redis.del(`lockdeck:{${name}}`);
    await redis.zrem('lockdeck:index', name);
    await sse.waitFor((e) => e.event === 'released' && (e.data as { key: string; source: string }).key === name, 5000);
    await redis.publish('lockdeck:events', `released\n${Date.now()}\n${h.fence}\n${h.owner.id}\n5\n${name}`);
    // The late event goes through the same stream: a marker sent after it shows it was handled.
    const marker = `late-release-marker-${RUN}`;
    const m = await take(cache, marker);
    await sse.waitFor((e) => e.event === 'acquired' && (e.data as { key: string }).key === marker, 5000);
    await m.release();
    const hist = await json<{ history: Array<{ type: string; source: string; fence: string }> }>(
      await server.fetch(`/api/locks/history?backend=cache&key=${encodeURIComponent(name)}`, { token: VW }),
    );
    expect(hist.history.filter((e) => e.type !== 'lost').map((e) => [e.type, e.source])).toEqual([['released', 'reconcile'], ['acquired', 'watch']]);
  });

  it('while requests keep listing, their listings serve as the reconcile: a foreign lock still comes and goes', async () => {
    // Every unfiltered /api/locks listing is handed to the hub, which diffs it instead of listing
    // the store again (events.ts onListing); the changes it finds are still `source: reconcile`.
    let polling = true;
    const poll = (async () => {
      while (polling) {
        await (await server.fetch('/api/locks?backend=cache', { token: VW })).arrayBuffer();
        await delay(100);
      }
    })();
    try {
      const key = `app:polled-${RUN}`;
      await redis.set(key, uuid1Hex(Date.now()), 'PX', 30_000, 'NX');
      const acq = await sse.waitFor((e) => e.event === 'acquired' && (e.data as { key: string }).key === key, 5000);
      expect(acq.data).toMatchObject({ backend: 'cache', source: 'reconcile' });
      await redis.del(key);
      const rel = await sse.waitFor((e) => e.event === 'released' && (e.data as { key: string }).key === key, 5000);
      expect(rel.data).toMatchObject({ backend: 'cache', source: 'reconcile' });
    } finally {
      polling = false;
      await poll;
    }
  });

  it('sends heartbeat comments', async () => {
    await eventually(() => sse.comments.some((c) => c.startsWith('heartbeat')), 3000, 'a heartbeat');
  });

  it('many clients share the watches; a closed client is cleaned up', async () => {
    const streams = async () => {
      const text = await (await server.fetch('/api/metrics', { token: VW })).text();
      return Number(/^lockdeck_console_event_streams (\d+)/m.exec(text)?.[1]);
    };
    const extra = await Promise.all([1, 2, 3].map(() => openEvents(server, { token: VW })));
    await Promise.all(extra.map((c) => c.waitFor((e) => e.event === 'snapshot')));
    expect(await streams()).toBe(4);
    const name = `fanout-${RUN}`;
    const h = await take(local, name);
    await Promise.all([sse, ...extra].map((c) => c.waitFor((e) => e.event === 'acquired' && (e.data as { key: string }).key === name, 3000)));
    await h.release();
    for (const c of extra) c.close();
    await eventually(async () => (await streams()) === 1, 5000, 'closed streams to be dropped');
  });
});

describe('force release', () => {
  it('operator with the fence seen: 200, the lock is gone, the holder is told, and it is audited (row + JSON line)', async () => {
    const name = `rel-ok-${RUN}`;
    const h = await take(local, name);
    const res = await release({ backend: 'local', key: name, fence: h.fence, owner: h.owner.id, reason: 'stuck job, ticket OPS-1' });
    expect(res.status).toBe(200);
    const body = await json<{ released: boolean; lock: LockInfo }>(res);
    expect(body).toMatchObject({ released: true, lock: { backend: 'local', key: name, fence: h.fence, owner: h.owner.id } });
    expect(await local.get(name)).toBeNull();
    await eventually(() => h.signal.aborted, 5000, 'the holder to learn of the forced release');

    const [entry] = await auditEntries(`key=${name}`);
    expect(entry).toMatchObject({ actor: 'operator', backend: 'local', key: name, owner: h.owner.id, fence: h.fence, reason: 'stuck job, ticket OPS-1', result: 'released' });
    expect(typeof entry!.at).toBe('number');
    const line = server.stdout.find((l) => l.includes('"lockdeck":"audit"') && l.includes(name));
    expect(JSON.parse(line!)).toMatchObject({ lockdeck: 'audit', actor: 'operator', backend: 'local', key: name, result: 'released', reason: 'stuck job, ticket OPS-1' });
  });

  it('a stale fence: 409 with the current lock, nothing released', async () => {
    const name = `rel-stale-${RUN}`;
    const first = await take(cache, name);
    const seenFence = first.fence;
    await first.release();
    const second = await take(cache, name);
    const res = await release({ backend: 'cache', key: name, fence: seenFence, reason: 'release what I saw' });
    expect(res.status).toBe(409);
    const body = await json<ErrorBody & { lock: LockInfo }>(res);
    expect(body.error.code).toBe('lock_changed');
    expect(body.lock).toMatchObject({ key: name, fence: second.fence });
    expect((await cache.get(name))?.fence).toBe(second.fence);
    expect(second.held).toBe(true);
    expect((await auditEntries(`key=${name}`))[0]).toMatchObject({ result: 'changed', expectFence: seenFence, fence: second.fence, owner: second.owner.id });
    const wrongOwner = await release({ backend: 'cache', key: name, owner: 'someone-else', reason: 'x' });
    expect(wrongOwner.status).toBe(409);
    expect((await cache.get(name))?.fence).toBe(second.fence);
  });

  it('nothing holds the key: 404, audited', async () => {
    const name = `rel-none-${RUN}`;
    await expectError(await release({ backend: 'local', key: name, reason: 'cleanup' }), 404, 'not_found');
    expect((await auditEntries(`key=${name}`))[0]).toMatchObject({ result: 'not-found', status: 404 });
  });

  it('a viewer is refused (403) and the refusal is audited', async () => {
    const name = `rel-viewer-${RUN}`;
    const h = await take(local, name);
    await expectError(await release({ backend: 'local', key: name, reason: 'viewer tries' }, { token: VW }), 403, 'forbidden');
    expect(h.held).toBe(true);
    expect((await local.get(name))?.fence).toBe(h.fence);
    expect((await auditEntries(`key=${name}`))[0]).toMatchObject({ actor: 'viewer', result: 'refused', status: 403, code: 'forbidden', reason: 'viewer tries' });
  });

  it('no or bad credentials: 401, audited as anonymous', async () => {
    const name = `rel-anon-${RUN}`;
    await expectError(await release({ backend: 'local', key: name, reason: 'r' }, { token: undefined }), 401, 'unauthorized');
    await expectError(await release({ backend: 'local', key: name, reason: 'r' }, { token: 'guess' }), 401, 'unauthorized');
    const entries = await auditEntries(`key=${name}`);
    expect(entries).toHaveLength(2);
    expect(entries[0]).toMatchObject({ actor: 'anonymous', result: 'refused', status: 401 });
  });

  it('CSRF: foreign Origin, Origin: null, and a cookie without Origin/Sec-Fetch-Site are refused; the own origin passes', async () => {
    const name = `rel-csrf-${RUN}`;
    const h = await take(local, name);
    const cookie = await loginCookie(OP);
    const cases: Array<[string, Record<string, string>, string | undefined]> = [
      ['foreign origin, cookie', { cookie, origin: 'http://evil.example' }, undefined],
      ['Origin: null, cookie', { cookie, origin: 'null' }, undefined],
      ['Origin: null, bearer', { origin: 'null' }, OP],
      ['cross-site fetch', { cookie, 'sec-fetch-site': 'cross-site' }, undefined],
      ['cookie, no Origin, no Sec-Fetch-Site', { cookie }, undefined],
      ['same host, other port', { cookie, origin: `http://127.0.0.1:${server.port + 1}` }, undefined],
    ];
    for (const [what, headers, token] of cases) {
      const res = await release({ backend: 'local', key: name, fence: h.fence, reason: what }, { token, headers });
      expect(res.status, what).toBe(403);
      await expectError(res, 403, 'csrf');
    }
    expect(h.held).toBe(true);
    expect((await local.get(name))?.fence).toBe(h.fence);
    const audited = await auditEntries(`key=${name}`);
    expect(audited).toHaveLength(cases.length);
    expect(audited.every((e) => e.code === 'csrf' && e.result === 'refused')).toBe(true);

    const ok = await release({ backend: 'local', key: name, fence: h.fence, reason: 'from the console page' }, { token: undefined, headers: { cookie, origin: server.url } });
    expect(ok.status).toBe(200);
    expect((await auditEntries(`key=${name}`))[0]).toMatchObject({ result: 'released', via: 'cookie', actor: 'operator' });
    const sameOrigin = await release({ backend: 'local', key: name, reason: 'fetch without Origin' }, { token: undefined, headers: { cookie, 'sec-fetch-site': 'same-origin' } });
    expect(sameOrigin.status).toBe(404);
  });

  it('bad input is a 4xx in the error shape, audited, and releases nothing', async () => {
    const name = `rel-bad-${RUN}`;
    const h = await take(local, name);
    const cases: Array<[string, string | object, number, string, Record<string, string>?]> = [
      ['malformed JSON', `{"backend":"local","key":"${name}",`, 400, 'invalid_json'],
      ['empty body', '', 400, 'invalid_json'],
      ['not an object', '[1,2]', 400, 'invalid_request'],
      ['missing reason', { backend: 'local', key: name }, 400, 'invalid_request'],
      ['blank reason', { backend: 'local', key: name, reason: '   ' }, 400, 'invalid_request'],
      ['501-char reason', { backend: 'local', key: name, reason: 'r'.repeat(501) }, 400, 'invalid_request'],
      ['unknown backend', { backend: 'ghost', key: name, reason: 'r' }, 400, 'unknown_backend'],
      ['600-char key', { backend: 'local', key: 'k'.repeat(600), reason: 'r' }, 400, 'invalid_request'],
      ['control characters in key', { backend: 'local', key: `${name}\u0000`, reason: 'r' }, 400, 'invalid_request'],
      ['newline in key', { backend: 'local', key: `${name}\nx`, reason: 'r' }, 400, 'invalid_request'],
      ['glob key', { backend: 'local', key: '*', reason: 'r' }, 404, 'not_found'],
      ['fence of the wrong type', { backend: 'local', key: name, fence: 7, reason: 'r' }, 400, 'invalid_request'],
      ['unknown field (a typo must not drop a guard)', { backend: 'local', key: name, fense: h.fence, reason: 'r' }, 400, 'invalid_request'],
      ['1 MB body', { backend: 'local', key: name, reason: 'r'.repeat(1024 * 1024) }, 413, 'body_too_large'],
      ['text/plain body', { backend: 'local', key: name, reason: 'r' }, 415, 'unsupported_media_type', { 'content-type': 'text/plain' }],
      ['form body', `backend=local&key=${name}&reason=r`, 415, 'unsupported_media_type', { 'content-type': 'application/x-www-form-urlencoded' }],
    ];
    for (const [what, body, status, code, headers] of cases) {
      const res = await release(body, { headers });
      expect(res.status, what).toBe(status);
      await expectError(res, status, code);
    }
    // A body streamed without Content-Length is cut off too.
    const big = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode(`{"backend":"local","key":"${name}","reason":"`));
        for (let i = 0; i < 64; i++) c.enqueue(new Uint8Array(16 * 1024).fill(0x61));
        c.enqueue(new TextEncoder().encode('"}'));
        c.close();
      },
    });
    const streamed = await server.fetch('/api/locks/release', { method: 'POST', token: OP, headers: JSON_HEADERS, body: big, duplex: 'half' } as RequestInit);
    expect([400, 413]).toContain(streamed.status);

    expect(h.held).toBe(true);
    expect((await local.get(name))?.fence).toBe(h.fence);
    // Bodies that name the key are audited under it (unreadable ones are audited with nulls).
    const audited = await auditEntries(`key=${name}`);
    expect(audited.length).toBeGreaterThanOrEqual(6);
    expect(audited.every((e) => e.result === 'refused')).toBe(true);
    expect(audited.some((e) => e.code === 'unknown_backend' && e.backend === 'ghost')).toBe(true);
    expect((await auditEntries('result=refused&limit=1000')).some((e) => e.code === 'body_too_large' && e.key === null)).toBe(true);
  });

  it('a foreign redis-py lock appears with its TTL and can be force-released (only the value that was seen)', async () => {
    const key = `app:lock:nightly-${RUN}`;
    const token = uuid1Hex(Date.now() - 2000);
    expect(await redis.set(key, token, 'PX', 30_000, 'NX')).toBe('OK');
    const l = (await locks(`?backend=cache&q=${encodeURIComponent(key)}`)).locks[0]!;
    expect(l).toMatchObject({ backend: 'cache', key, format: 'redis-plain', kind: 'mutex', owner: null, fence: null, health: 'ok' });
    expect(l.ttlMs).toBeGreaterThan(25_000);
    expect(l.expiresAt).toBeGreaterThan(Date.now());
    expect(l.acquiredAt).toBeGreaterThan(Date.now() - 10_000);
    expect(l.meta).toMatchObject({ likelyClient: 'redis-py', tokenShape: 'uuid1-hex' });
    expect(JSON.stringify(l)).not.toContain(token);

    // The value changed hands since the operator looked: the valueHash guard refuses.
    const res409 = await release({ backend: 'cache', key, valueHash: 'ffffffffff', reason: 'stale view' });
    expect(res409.status).toBe(409);
    expect(await redis.get(key)).toBe(token);

    const res = await release({ backend: 'cache', key, valueHash: l.meta!.valueHash, reason: 'redis-py worker crashed' });
    expect(res.status).toBe(200);
    expect(await json(res)).toMatchObject({ released: true, lock: { key, format: 'redis-plain' } });
    expect(await redis.exists(key)).toBe(0);
    expect((await auditEntries(`backend=cache&key=${encodeURIComponent(key)}`)).map((e) => e.result)).toEqual(['released', 'changed']);
  });

  it('GET /api/audit filters and bounds', async () => {
    const all = await auditEntries('limit=1000');
    expect(all.length).toBeGreaterThan(10);
    const ids = all.map((e) => e.id as number);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect((await auditEntries('limit=2')).length).toBe(2);
    expect((await auditEntries('actor=viewer')).every((e) => e.actor === 'viewer')).toBe(true);
    expect((await auditEntries('result=released')).every((e) => e.result === 'released')).toBe(true);
    for (const e of all) {
      expect(Object.keys(e)).toEqual(expect.arrayContaining(['at', 'actor', 'backend', 'key', 'owner', 'fence', 'reason', 'result']));
    }
    await expectError(await server.fetch('/api/audit?limit=0', { token: VW }), 400, 'invalid_request');
    await expectError(await server.fetch('/api/audit?backend=NO!', { token: VW }), 400, 'invalid_request');
    // Filters are exact matches, never patterns.
    expect((await auditEntries('key=*')).every((e) => e.key === '*')).toBe(true);
    expect(await auditEntries('key=rel-%25')).toEqual([]);
    expect(await auditEntries('actor=oper*')).toEqual([]);
  });
});

describe('metrics', () => {
  it('Prometheus text with bounded labels and no lock keys', async () => {
    const secretKey = `metrics-key-${RUN}`;
    await take(local, secretKey);
    const res = await server.fetch('/api/metrics', { token: VW });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toMatch(/^lockdeck_locks_held\{backend="local",format="lockdeck"\} \d+/m);
    expect(text).toMatch(/^lockdeck_lock_waiters\{backend="cache"\} \d+/m);
    expect(text).toMatch(/^lockdeck_backend_up\{backend="cache",type="redis"\} 1/m);
    expect(text).toMatch(/^lockdeck_backend_up\{backend="local",type="sqlite"\} 1/m);
    expect(text).toMatch(/^lockdeck_forced_releases_total\{backend="local",result="released"\} \d+/m);
    expect(text).toMatch(/^lockdeck_forced_releases_total\{backend="unknown",result="refused"\} \d+/m);
    expect(text).toMatch(/^lockdeck_backend_ping_seconds_bucket\{[^}]*backend="local"[^}]*\} \d+/m);
    expect(text).not.toContain(secretKey);
  });
});

describe('the server log', () => {
  it('has no unexpected errors (bad input is answered, not crashed on)', () => {
    const noise = server.stderr.filter((l) => l.trim() !== '' && !/ExperimentalWarning|--trace-warnings/.test(l));
    expect(noise).toEqual([]);
  });
});
