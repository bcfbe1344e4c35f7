/**
 * `POST /api/locks/release` with `action: "revoke-lease"` on a real etcd behind a real
 * `next start`: ends the holder's whole lease (every key on it goes), is refused where a backend
 * has no leases, changes nothing when the holder changed, and is audited as its own action.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { createEtcdBackend } from '../../lib/backends/etcd';
import { createSqliteBackend } from '../../lib/backends/sqlite';
import { LockLostError, type LockBackend, type LockInfo } from '../../lib/locks';
import { eventually, startConsole, type ConsoleServer } from './harness';

const OP = `op-${randomBytes(12).toString('hex')}`;
const RUN = randomBytes(3).toString('hex');
const PREFIX = `/revoke-${RUN}`;

let server: ConsoleServer;
let etcd: LockBackend;
let local: LockBackend;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lockdeck-revoke-'));
  const endpoints = inject('etcdEndpoints');
  const sqlitePath = join(dir, 'locks.db');
  etcd = createEtcdBackend({ id: 'etcd', type: 'etcd', endpoints, prefixes: [PREFIX] });
  local = createSqliteBackend({ id: 'local', type: 'sqlite', path: sqlitePath });
  server = await startConsole({
    config: {
      backends: [
        { id: 'etcd', type: 'etcd', endpoints, prefixes: [PREFIX] },
        { id: 'local', type: 'sqlite', path: sqlitePath },
      ],
    },
    env: { LOCKDECK_OPERATOR_TOKEN: OP },
  });
});

afterAll(async () => {
  await server?.stop();
  await Promise.allSettled([etcd?.close(), local?.close()]);
  rmSync(dir, { recursive: true, force: true });
});

const release = (body: unknown) =>
  server.fetch('/api/locks/release', { method: 'POST', token: OP, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function detail(backend: string, key: string): Promise<LockInfo | null> {
  const res = await server.fetch(`/api/locks/detail?backend=${backend}&key=${encodeURIComponent(key)}`, { token: OP });
  if (res.status === 404) return null;
  return ((await res.json()) as { lock: LockInfo }).lock;
}

describe('lease revocation through the console', { timeout: 60_000 }, () => {
  it('says which backends can revoke leases', async () => {
    const res = await server.fetch('/api/backends', { token: OP });
    const { backends } = (await res.json()) as { backends: { id: string; capabilities: { leaseRevocation?: boolean } | null }[] };
    expect(backends.find((b) => b.id === 'etcd')?.capabilities?.leaseRevocation).toBe(true);
    expect(backends.find((b) => b.id === 'local')?.capabilities?.leaseRevocation).toBe(false);
  });

  it('ends the holder lease: both locks on it go, the holder is told, the audit says so', async () => {
    // Same backend instance and TTL: one session lease carries both keys.
    const a = await etcd.acquire(`${PREFIX}/a`, { ttlMs: 20_000 });
    const b = await etcd.acquire(`${PREFIX}/b`, { ttlMs: 20_000 });
    const seen = await eventually(() => detail('etcd', `${PREFIX}/a`), 10_000, 'lock a listed');
    expect(typeof seen.meta?.lease).toBe('string');

    // A stale fence: 409, nothing revoked.
    const stale = await release({ backend: 'etcd', key: `${PREFIX}/a`, fence: String(BigInt(seen.fence!) + 1n), reason: 'test', action: 'revoke-lease' });
    expect(stale.status).toBe(409);
    expect(a.held && b.held).toBe(true);

    const res = await release({ backend: 'etcd', key: `${PREFIX}/a`, fence: seen.fence, owner: seen.owner, reason: 'holder host gone', action: 'revoke-lease' });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { released: boolean; revoked: { lease: string; keys: string[] } };
    expect(body.revoked.lease).toBe(seen.meta?.lease);
    expect(body.revoked.keys.sort()).toEqual([expect.stringMatching(new RegExp(`^${PREFIX}/a/`)), expect.stringMatching(new RegExp(`^${PREFIX}/b/`))]);
    await eventually(() => a.signal.aborted && b.signal.aborted, 10_000, 'both holders told');
    expect(a.signal.reason).toBeInstanceOf(LockLostError);
    expect(await detail('etcd', `${PREFIX}/b`)).toBeNull();

    const audit = await server.fetch(`/api/audit?backend=etcd&key=${encodeURIComponent(`${PREFIX}/a`)}`, { token: OP });
    const { entries } = (await audit.json()) as { entries: { action: string; result: string; status: number; message: string | null }[] };
    expect(entries[0]).toMatchObject({ action: 'revoke-lease', result: 'released', status: 200 });
    expect(entries[0]!.message).toMatch(/2 key\(s\) dropped/);
    expect(entries[1]).toMatchObject({ action: 'revoke-lease', result: 'changed', status: 409 });
  });

  it('is refused (400 not_supported, audited) on a backend without leases, and the lock stays', async () => {
    const h = await local.acquire(`nolease-${RUN}`, { ttlMs: 30_000 });
    const res = await release({ backend: 'local', key: `nolease-${RUN}`, reason: 'test', action: 'revoke-lease' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_supported');
    expect(h.held).toBe(true);
    expect(await detail('local', `nolease-${RUN}`)).not.toBeNull();
    const bad = await release({ backend: 'local', key: `nolease-${RUN}`, reason: 'test', action: 'drop-everything' });
    expect(bad.status).toBe(400);
    await h.release();
  });
});
