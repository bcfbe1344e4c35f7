/**
 * console.db: the audit log is append-only by schema, history is bounded per key and in total.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { AuditLog, type NewAuditEntry } from '../../lib/console/audit';
import { openConsoleDb } from '../../lib/console/db';
import { HistoryStore } from '../../lib/console/history';
import type { LockInfo } from '../../lib/locks/types';

const dir = mkdtempSync(join(tmpdir(), 'lockdeck-console-db-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const entry = (over: Partial<NewAuditEntry> = {}): NewAuditEntry => ({
  at: Date.now(),
  actor: 'operator',
  via: 'bearer',
  backend: 'local',
  key: 'job',
  owner: 'host:1/a',
  fence: '7',
  expectOwner: null,
  expectFence: '7',
  reason: 'stuck',
  result: 'released',
  status: 200,
  code: null,
  message: null,
  action: 'release',
  ...over,
});

describe('audit log', () => {
  it('writes the JSON line first, then the row; filters newest first', () => {
    const db = openConsoleDb(join(dir, 'a'));
    const lines: string[] = [];
    const log = new AuditLog(db, (l) => lines.push(l));
    const a = log.append(entry());
    log.append(entry({ actor: 'viewer', result: 'refused', status: 403, code: 'forbidden', key: 'other' }));
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0]!)).toMatchObject({ lockdeck: 'audit', actor: 'operator', key: 'job', result: 'released' });
    expect(lines[0]!.endsWith('\n')).toBe(true);
    expect(log.query({ limit: 10 }).map((e) => e.key)).toEqual(['other', 'job']);
    expect(log.query({ limit: 10, actor: 'operator' })).toEqual([a]);
    expect(log.query({ limit: 10, result: 'refused' })[0]).toMatchObject({ code: 'forbidden', status: 403 });
    expect(log.query({ limit: 10, before: a.id + 1 })).toEqual([a]);
    db.close();
  });

  it('cannot be updated or deleted, even by hand', () => {
    const db = openConsoleDb(join(dir, 'b'));
    new AuditLog(db, () => undefined).append(entry());
    expect(() => db.prepare("UPDATE audit SET result = 'x'").run()).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit').run()).toThrow(/append-only/);
    expect((db.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n).toBe(1);
    db.close();
  });

  it('the log survives a reopen', () => {
    const path = join(dir, 'c');
    let db = openConsoleDb(path);
    new AuditLog(db, () => undefined).append(entry());
    db.close();
    db = openConsoleDb(path);
    expect(new AuditLog(db, () => undefined).query({ limit: 5 })).toHaveLength(1);
    db.close();
  });
});

describe('history', () => {
  const lock = (key: string, fence: string): LockInfo => ({
    backend: 'local', key, format: 'lockdeck', kind: 'mutex', owner: 'o', holders: [{ owner: 'o', fence, acquiredAt: 1 }], fence,
    acquiredAt: 1, expiresAt: 2, ttlMs: 1, waiters: Array.from({ length: 50 }, () => ({ owner: 'w', since: 1 })), health: 'ok',
  });

  it('keeps the newest N per key and M overall, newest first', () => {
    const db = openConsoleDb(join(dir, 'h'));
    const h = new HistoryStore(db, { perKey: 5, total: 12 });
    for (let i = 0; i < 8; i++) h.record({ at: i, type: 'changed', backend: 'local', key: 'a', owner: 'o', fence: String(i), source: 'watch', lock: lock('a', String(i)) });
    const a = h.forKey('local', 'a');
    expect(a.map((e) => e.fence)).toEqual(['7', '6', '5', '4', '3']);
    expect(a[0]!.lock!.waiters).toHaveLength(20); // stored copies keep a bounded queue
    for (let i = 0; i < 10; i++) h.record({ at: i, type: 'acquired', backend: 'local', key: `k${i}`, owner: null, fence: null, source: 'reconcile', lock: null });
    h.trim();
    expect((db.prepare('SELECT count(*) AS n FROM history').get() as { n: number }).n).toBe(12);
    expect(h.forKey('local', 'a')).toHaveLength(2);
    db.close();
  });
});
