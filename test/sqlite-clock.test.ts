/**
 * Regression (torture checker, clock-jump × sqlite: 129 overlapping critical sections, 58 lost
 * unfenced updates): the embedded store's leases followed the wall clock of the writing process,
 * so a process whose clock stepped forward took live locks. The store now keeps time on the
 * host's monotonic clock (lib/backends/sqlite/clock.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, describe, expect, it, vi } from 'vitest';

import { createSqliteBackend } from '../lib/backends/sqlite';

describe('sqlite store clock', () => {
  afterEach(() => vi.restoreAllMocks());

  it('regression (torture: clock-jump): a wall clock stepped an hour ahead takes no live lock', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lockdeck-clock-'));
    const path = join(dir, 'locks.db');
    const a = createSqliteBackend({ id: 'a', type: 'sqlite', path });
    const b = createSqliteBackend({ id: 'b', type: 'sqlite', path });
    try {
      const held = await a.acquire('nightly', { ttlMs: 10_000, autoRenew: false });
      const realNow = Date.now.bind(Date);
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 3_600_000); // NTP step, or an operator
      expect(await b.tryAcquire('nightly', { ttlMs: 10_000 })).toBeNull();
      const info = await b.get('nightly');
      expect(info?.health).toBe('ok');
      vi.restoreAllMocks();
      await held.release();
      const next = await b.tryAcquire('nightly', { ttlMs: 10_000 });
      expect(next).not.toBeNull();
      await next!.release();
    } finally {
      vi.restoreAllMocks();
      await Promise.all([a.close(), b.close()]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
