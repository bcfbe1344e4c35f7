/**
 * The contention store on its own (console.db): waiter samples are a step function written only
 * on change, the integration is time-weighted, percentiles are nearest-rank, and both tables are
 * bounded by age and row count.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { ContentionStore, distribution, integrateWaiters, percentile } from '../../lib/console/contention';
import { openConsoleDb } from '../../lib/console/db';
import type { LockChange } from '../../lib/locks/types';

const dir = mkdtempSync(join(tmpdir(), 'lockdeck-contention-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const change = (over: Partial<LockChange>): LockChange => ({ type: 'acquired', backend: 'b', key: 'k', lock: null, at: 0, ...over });

describe('contention store', () => {
  it('percentiles are nearest-rank; histograms cover the values', () => {
    expect(percentile([], 0.5)).toBeNull();
    expect(percentile([1, 2, 3, 4], 0.5)).toBe(2);
    expect(percentile([1, 2, 3, 4], 0.95)).toBe(4);
    const d = distribution([0, 3, 3, 40, 1500]);
    expect(d).toMatchObject({ count: 5, p50: 3, p95: 1500, max: 1500 });
    expect(d.histogram.reduce((n, h) => n + h.count, 0)).toBe(5);
    expect(d.histogram[0]).toMatchObject({ from: 0, to: 1, label: '0 ms', count: 1 });
  });

  it('integrates a waiter step function by time', () => {
    // 0 until 10, 2 until 20, 1 until 40 (end): 2·10 + 1·20 = 40 waiter·ms.
    const r = integrateWaiters(0, [{ at: 10, waiters: 2 }, { at: 20, waiters: 1 }], 0, 40, [0, 20], 20);
    expect(r.total).toBe(40);
    expect(r.avg).toEqual([1, 1]);
    expect(r.max).toEqual([2, 1]);
    expect(r.overallMax).toBe(2);
  });

  it('counts one lock over a window, writes waiter samples only on change, and trims', () => {
    const db = openConsoleDb(join(dir, 'a'));
    const s = new ContentionStore(db, { retentionMs: 60_000, maxRows: 1000 });
    const t0 = 1_000_000;
    s.recordChange('b', change({ at: t0, waitedMs: 0 }), 'watch', null);
    s.recordChange('b', change({ type: 'released', at: t0 + 100, heldMs: 100 }), 'watch', null);
    s.recordChange('b', change({ at: t0 + 100, waitedMs: 90 }), 'watch', null);
    // A foreign lock seen by the reconcile: hold from acquiredAt, wait unknown.
    s.recordChange('b', change({ type: 'forced', at: t0 + 400, lock: { acquiredAt: t0 + 100 } as LockChange['lock'] }), 'reconcile', null);
    s.recordChange('b', change({ type: 'changed', at: t0 + 450 }), 'watch', null);
    for (const [at, n] of [[t0, 1], [t0 + 10, 1], [t0 + 100, 0], [t0 + 200, 0]] as const) s.sampleWaiters('b', 'k', n, at);
    expect(db.prepare('SELECT count(*) AS n FROM waiter_samples').get()).toEqual({ n: 2 });
    const st = s.lockStats('b', 'k', '15m', t0 + 1000);
    expect(st).toMatchObject({ acquisitions: 2, released: 1, forced: 1, expired: 0, contendedAcquisitions: 1, totalWaitMs: 90, observedByReconcile: 1 });
    expect(st.hold).toMatchObject({ count: 2, max: 300 });
    expect(st.waiterMs).toBe(100);
    expect(st.contentionMs).toBe(100);
    const rank = s.ranking({ window: '15m', limit: 10, now: t0 + 1000 });
    expect(rank.locks[0]).toMatchObject({ key: 'k', acquisitions: 2, contentionMs: 100, maxWaiters: 1, waitP95: 90 });
    // Age bound: everything is older than the retention at t0 + 2 min.
    s.trim(t0 + 120_000);
    expect(db.prepare('SELECT count(*) AS n FROM lock_activity').get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT count(*) AS n FROM waiter_samples').get()).toEqual({ n: 0 });
    db.close();
  });
});
