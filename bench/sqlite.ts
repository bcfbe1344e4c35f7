/**
 * SQLite section: baseline `SELECT 1` (better-sqlite3) on the lock database file, our
 * uncontended acquire+release, and a cross-process handoff (two worker processes on one file).
 * Skipped, with a printed note, until lib/backends/sqlite/index.ts exports createSqliteBackend().
 * No targets are set for this store yet: figures are reported as info.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import Database from 'better-sqlite3';

import type { LockBackend } from '../lib/locks/types';
import { loadFactory } from './lib/backends';
import { packageVersion, scaled, type BenchContext } from './lib/context';
import { contendedThroughput, fencesIncrease, pingPong, throughputRow, type ThroughputResult } from './lib/handoff';
import type { WorkerSpec } from './lib/protocol';
import { ms } from './lib/report';
import { measure, pairedRatio, median, sleep, summarize } from './lib/stats';
import { BenchWorker } from './lib/workers';

const TTL_MS = 30_000;

export async function sqliteSection(ctx: BenchContext): Promise<void> {
  const S = 'sqlite';
  const loaded = await loadFactory('sqlite');
  if ('reason' in loaded) {
    ctx.log(`sqlite: skipped: ${loaded.reason}`);
    ctx.rows.push({
      section: S, figure: 'section', value: null, unit: '', baseline: '—', ratio: null, target: '—', verdict: 'skip',
      note: `skipped: ${loaded.reason}`,
    });
    ctx.details.sqlite = { skipped: loaded.reason };
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'lockdeck-bench-sqlite-'));
  ctx.defer(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'locks.db');
  const config = { id: 'bench-sqlite', type: 'sqlite', path };
  ctx.versions['better-sqlite3'] = packageVersion('better-sqlite3');

  const backend: LockBackend = loaded.factory({ ...config });
  ctx.defer(() => backend.close());
  const inspector: LockBackend = loaded.factory({ ...config, id: 'bench-sqlite-inspector' });
  ctx.defer(() => inspector.close());
  // Make sure the backend created its file before the baseline connection opens it.
  const h0 = await backend.tryAcquire('bench:init', { ttlMs: TTL_MS, autoRenew: false });
  await h0?.release();
  const db = new Database(path);
  ctx.defer(() => db.close());
  ctx.versions.sqlite = String((db.prepare('select sqlite_version() as v').get() as { v: string }).v);
  const select1 = db.prepare('SELECT 1');

  const ROUNDS = 5;
  const base: number[][] = [];
  const cycles: number[][] = [];
  for (let r = 0; r < ROUNDS; r++) {
    base.push(await measure(async () => select1.get(), { warmup: r === 0 ? 500 : 50, samples: scaled(ctx, 400, 50), maxMs: 3000 }));
    cycles.push(
      await measure(
        async () => {
          const h = await backend.tryAcquire('bench:cycle', { ttlMs: TTL_MS, autoRenew: false });
          if (!h) throw new Error('bench:cycle unexpectedly held');
          await h.release();
        },
        { warmup: r === 0 ? 100 : 10, samples: scaled(ctx, 200, 30), maxMs: 5000 },
      ),
    );
  }
  const baseAll = summarize(base.flat());
  const cycAll = summarize(cycles.flat());
  const cycRatio = pairedRatio(cycles.map(median), base.map(median));
  const baseLabel = `SELECT 1 p50 ${ms(baseAll.p50)}`;

  // Cross-process handoff.
  const spec: WorkerSpec = { kind: 'lockdeck', backend: 'sqlite', config: { ...config } };
  const [wa, wb] = await Promise.all([
    BenchWorker.start('sqlite-a', spec, { cpu: ctx.pin?.clients }),
    BenchWorker.start('sqlite-b', spec, { cpu: ctx.pin?.clients }),
  ]);
  ctx.defer(() => wa.stop());
  ctx.defer(() => wb.stop());
  const NAME = 'bench:handoff';
  const got = await wa.call({ op: 'tryAcquire', name: NAME, ttlMs: TTL_MS });
  if (!got.got) throw new Error(`${NAME} unexpectedly held`);
  const seesWaiters = backend.capabilities.waiters;
  const ho = await pingPong([wa, wb], {
    name: NAME,
    ttlMs: TTL_MS,
    waitMs: 10_000,
    warmup: 5,
    samples: scaled(ctx, 100, 20),
    pauseMs: [1, 10],
    confirmBlocked: async () => {
      if (!seesWaiters) return sleep(20); // no waiter records: give the waiter time to block
      const deadline = performance.now() + 5000;
      for (let i = 0; i < 20_000 && performance.now() < deadline; i++) {
        const info = await inspector.get(NAME);
        if (info && info.waiters.length >= 1) return;
      }
      throw new Error('sqlite inspector never showed the waiter');
    },
    budgetMs: 20_000,
  });
  await ho.holder.call({ op: 'release', pauseMs: 0 });
  const hoAll = summarize(ho.samples.map((s) => s.ms));
  // Throughput on one contended lock: 2 contenders (one per process) and 16 (eight per process).
  const throughput: ThroughputResult[] = [];
  for (const c of [2, 16]) {
    const t = await contendedThroughput(
      Array.from({ length: c }, (_, k) => ({ w: [wa, wb][k % 2]!, slot: 100 + c + Math.floor(k / 2) })),
      { name: 'bench:throughput', ttlMs: TTL_MS, durationMs: scaled(ctx, 3000, 1000) },
    );
    throughput.push(t);
    ctx.log(`sqlite: throughput, ${c} contenders: ${t.perSec.toFixed(0)}/s (${t.acquisitions}), overlaps ${t.overlaps}, fences increasing ${t.fencesIncrease}`);
  }
  await Promise.all([wa.stop(), wb.stop()]);
  ctx.log(`sqlite: SELECT 1 p50 ${ms(baseAll.p50)}, acquire+release p50 ${ms(cycAll.p50)}, handoff p50 ${ms(hoAll.p50)}`);

  ctx.rows.push(
    { section: S, figure: 'SELECT 1 p50', value: baseAll.p50, unit: 'ms', baseline: '—', ratio: null, target: '—', verdict: 'baseline' },
    {
      section: S, figure: 'acquire+release p50', value: cycAll.p50, unit: 'ms', baseline: baseLabel,
      ratio: cycRatio.median, ratioSpread: [cycRatio.min, cycRatio.max], target: '—', verdict: 'info',
    },
    {
      section: S, figure: 'handoff p50', value: hoAll.p50, unit: 'ms', baseline: baseLabel, ratio: hoAll.p50 / baseAll.p50,
      target: '—', verdict: 'info',
      note: `cross-process, n=${hoAll.n}, p99 ${ms(hoAll.p99)}; waiter confirmed ${seesWaiters ? 'via inspector waiters' : 'by a 20 ms wait (no waiter records)'}; fences increasing: ${fencesIncrease(ho.samples)}`,
    },
  );
  ctx.rows.push(...throughput.map((t) => throughputRow(S, t, hoAll.p50, ' (two processes)')));
  ctx.details.sqlite = { path, baseline: baseAll, acquireRelease: cycAll, ratio: cycRatio, handoff: hoAll, throughput };
}
