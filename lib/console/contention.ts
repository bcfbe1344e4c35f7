import 'server-only';

/**
 * Contention statistics: per lock, over a window (15 min, 1 h, 6 h, 24 h), how often it was
 * taken, how long takers waited and holders held it, how many clients queued for it, and how
 * often it ended by force or by expiry; and a ranking of the most contended locks.
 *
 * Where the numbers come from (everything the event hub sees, from server start: boot.ts starts
 * the hub):
 *  - `lock_activity` (console.db): one row per acquired / released / expired / forced change the
 *    watches pushed or the reconcile inferred. lockdeck's own clients report how long they waited
 *    (`waitedMs` on `acquired`) and held (`heldMs` on the endings) through the backend's event
 *    feed; for anyone else (foreign clients, reconcile-inferred changes, expiries some stores
 *    report without a duration) the hold is `at - acquiredAt` where the layout shows when it was
 *    taken, and the wait is unknown (not counted in the wait distribution: `wait.count` says how
 *    many acquisitions reported one).
 *  - `lock_activity` also keeps lockdeck clients' telemetry (Redis and SQLite publish it; see
 *    Capabilities.telemetry): `attempt` (a try that was refused or an acquire that had to queue,
 *    once per acquire) and `lost` (a holder learned its lock was gone). They are counted
 *    (`attempts`, `lost`), never taken as acquisitions or endings.
 *  - `waiter_samples` (console.db): a lock's waiter count as the backend shows its queue, written
 *    whenever the count changes (on every pushed change and every reconcile listing), so it is a
 *    step function; "waiters over time" is its time-weighted mean and maximum per bucket.
 *
 * An acquisition is *contended* when its taker waited at least {@link CONTENDED_MS} ms: below
 * that the reported wait is the attempt's own round trip (an uncontended `tryAcquire` on the
 * embedded store reports 0 to 2 ms), not time spent behind another holder.
 *
 * Ranking: by **contention time**, the time clients spent blocked on the lock in the window,
 * estimated two ways and taking the larger: the sum of the contended waits lockdeck clients
 * reported on acquisition (`totalWaitMs`; misses waits still going on and clients that report nothing) and
 * the integral of the visible queue length over the window (`waiterMs`, waiter·ms; misses waits
 * shorter than the gap between two observations and stores that do not show waiters). Both
 * measure the same quantity from below, so their maximum is the better lower bound. Ties (e.g.
 * no contention at all) are broken by acquisitions.
 *
 * Bounded: rows older than {@link ContentionLimits.retentionMs} (a little more than the largest
 * window) and beyond {@link ContentionLimits.maxRows} per table are deleted every 512 writes.
 */
import type Database from 'better-sqlite3';
import { z } from 'zod';

import type { LockChange, LockEventType } from '../locks/types';
import type { ChangeSource } from './history';
import { getConsoleDb } from './db';
import { singleton } from './singleton';

/** A reported wait of at least this many ms was spent behind another holder (module comment). */
export const CONTENDED_MS = 5;

export const WINDOWS = { '15m': 15 * 60_000, '1h': 3_600_000, '6h': 6 * 3_600_000, '24h': 24 * 3_600_000 } as const;
export type WindowName = keyof typeof WINDOWS;
export const DEFAULT_WINDOW: WindowName = '1h';
/** Bucket width per window: about 90 to 120 points per series. */
export const BUCKET_MS: Record<WindowName, number> = { '15m': 10_000, '1h': 30_000, '6h': 180_000, '24h': 720_000 };

export const windowSchema = z.enum(Object.keys(WINDOWS) as [WindowName, ...WindowName[]], { error: `must be one of ${Object.keys(WINDOWS).join(', ')}` });

export interface ContentionLimits {
  retentionMs: number;
  maxRows: number;
}

export const DEFAULT_CONTENTION_LIMITS: Readonly<ContentionLimits> = Object.freeze({ retentionMs: 25 * 3_600_000, maxRows: 500_000 });

/** Histogram bucket edges for durations (ms): 0, then roughly 1-2-5 steps up to an hour. */
const EDGES = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000];

function edgeLabel(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${ms / 1000} s`;
  if (ms < 3_600_000) return `${ms / 60_000} min`;
  return `${ms / 3_600_000} h`;
}

export interface HistogramBucket {
  /** Inclusive lower edge, ms. */
  from: number;
  /** Exclusive upper edge, ms; null for the last, open bucket. */
  to: number | null;
  label: string;
  count: number;
}

export interface Distribution {
  /** How many values (acquisitions that reported a wait; holds that ended with a known length). */
  count: number;
  p50: number | null;
  p95: number | null;
  max: number | null;
  mean: number | null;
  /** From the first to the last non-empty bucket ([] without values). */
  histogram: HistogramBucket[];
}

export interface SeriesPoint {
  /** Bucket start, epoch ms. */
  t: number;
  acquisitions: number;
  /** Acquisitions per minute: the bucket's count over its whole width. */
  perMinute: number;
  released: number;
  forced: number;
  expired: number;
  /** Time-weighted mean of the waiter count over the bucket. */
  waitersAvg: number;
  waitersMax: number;
}

export interface LockContention {
  now: number;
  backend: string;
  key: string;
  window: WindowName;
  from: number;
  to: number;
  bucketMs: number;
  acquisitions: number;
  /** Mean over the window. */
  acquisitionsPerMinute: number;
  /** Acquisitions whose taker reported a wait of at least {@link CONTENDED_MS}. */
  contendedAcquisitions: number;
  released: number;
  forced: number;
  expired: number;
  /** Changes found by the console's re-listing rather than pushed (foreign clients mostly). */
  observedByReconcile: number;
  /** lockdeck clients' tries that were refused or had to queue (once per acquire). */
  attempts: number;
  /** lockdeck holders that learned their lock was gone (forced, expired, renewal failed...). */
  lost: number;
  wait: Distribution;
  hold: Distribution;
  waiters: { now: number; max: number; avg: number };
  totalWaitMs: number;
  waiterMs: number;
  /** max(totalWaitMs, waiterMs): see the module comment. */
  contentionMs: number;
  series: SeriesPoint[];
}

export interface RankedLock {
  backend: string;
  key: string;
  acquisitions: number;
  acquisitionsPerMinute: number;
  contendedAcquisitions: number;
  forced: number;
  expired: number;
  /** lockdeck clients' refused or queued tries (see LockContention.attempts). */
  attempts: number;
  /** lockdeck holders that lost the lock. */
  lost: number;
  totalWaitMs: number;
  waiterMs: number;
  contentionMs: number;
  waitP50: number | null;
  waitP95: number | null;
  waitMax: number | null;
  holdP50: number | null;
  maxWaiters: number;
  avgWaiters: number;
  waitersNow: number;
  lastAt: number | null;
}

export interface ContentionRanking {
  now: number;
  window: WindowName;
  from: number;
  to: number;
  /** Locks with any activity or waiters in the window. */
  total: number;
  /** Of those, locks with contention time above zero. */
  contended: number;
  locks: RankedLock[];
}

/** Nearest-rank percentile of ascending `sorted`. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}

export function distribution(values: number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return { count: 0, p50: null, p95: null, max: null, mean: null, histogram: [] };
  const counts = new Array<number>(EDGES.length).fill(0);
  let sum = 0;
  for (const v of sorted) {
    sum += v;
    let i = EDGES.length - 1;
    while (i > 0 && v < EDGES[i]!) i--;
    counts[i]!++;
  }
  const first = counts.findIndex((c) => c > 0);
  let last = counts.length - 1;
  while (last > first && counts[last] === 0) last--;
  const histogram: HistogramBucket[] = [];
  for (let i = first; i <= last; i++) {
    const from = EDGES[i]!;
    const to = i + 1 < EDGES.length ? EDGES[i + 1]! : null;
    const label = from === 0 && to === 1 ? '0 ms' : to === null ? `≥ ${edgeLabel(from)}` : `${edgeLabel(from)}–${edgeLabel(to)}`;
    histogram.push({ from, to, label, count: counts[i]! });
  }
  return {
    count: sorted.length,
    p50: percentile(sorted, 0.5),
    p95: percentile(sorted, 0.95),
    max: sorted[sorted.length - 1]!,
    mean: Math.round((sum / sorted.length) * 10) / 10,
    histogram,
  };
}

interface Sample {
  at: number;
  waiters: number;
}

/**
 * Integrates the step function `initial` then `samples` (ascending) over [from, to): the total
 * waiter·ms, the time-weighted mean per bucket, and the maximum per bucket.
 */
export function integrateWaiters(initial: number, samples: readonly Sample[], from: number, to: number, bucketStarts: readonly number[], bucketMs: number) {
  const avg = new Array<number>(bucketStarts.length).fill(0);
  const max = new Array<number>(bucketStarts.length).fill(0);
  let total = 0;
  let overallMax = initial;
  const steps: Sample[] = [{ at: from, waiters: initial }, ...samples.filter((s) => s.at >= from && s.at < to)];
  for (let i = 0; i < steps.length; i++) {
    const start = steps[i]!.at;
    const end = i + 1 < steps.length ? steps[i + 1]!.at : to;
    const v = steps[i]!.waiters;
    overallMax = Math.max(overallMax, v);
    if (end <= start) {
      // A zero-length step still counts for the bucket's maximum.
      const b = bucketStarts.length ? Math.min(bucketStarts.length - 1, Math.max(0, Math.floor((start - bucketStarts[0]!) / bucketMs))) : -1;
      if (b >= 0) max[b] = Math.max(max[b]!, v);
      continue;
    }
    total += v * (end - start);
    if (bucketStarts.length === 0) continue;
    let b = Math.max(0, Math.floor((start - bucketStarts[0]!) / bucketMs));
    for (; b < bucketStarts.length; b++) {
      const bs = Math.max(bucketStarts[b]!, from);
      const be = Math.min(bucketStarts[b]! + bucketMs, to);
      if (bs >= end) break;
      const overlap = Math.min(be, end) - Math.max(bs, start);
      if (overlap <= 0) continue;
      avg[b]! += v * overlap;
      max[b] = Math.max(max[b]!, v);
    }
  }
  for (let b = 0; b < bucketStarts.length; b++) {
    const span = Math.min(bucketStarts[b]! + bucketMs, to) - Math.max(bucketStarts[b]!, from);
    avg[b] = span > 0 ? Math.round((avg[b]! / span) * 100) / 100 : 0;
  }
  return { total, avg, max, overallMax };
}

interface ActivityRow {
  at: number;
  type: string;
  waited_ms: number | null;
  held_ms: number | null;
  source: string;
}

const ENDINGS = new Set<LockEventType>(['released', 'expired', 'forced']);

export class ContentionStore {
  private readonly s;
  private writes = 0;
  /** Last written waiter count per `backend\nkey` (absent: 0 or never seen), and when. */
  private readonly lastWaiters = new Map<string, { waiters: number; at: number }>();

  constructor(
    db: Database.Database,
    private readonly limits: ContentionLimits = DEFAULT_CONTENTION_LIMITS,
  ) {
    this.s = {
      insertActivity: db.prepare<[number, string, string, string, number | null, number | null, string]>(
        'INSERT INTO lock_activity (at, backend, key, type, waited_ms, held_ms, source) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      insertSample: db.prepare<[number, string, string, number]>('INSERT INTO waiter_samples (at, backend, key, waiters) VALUES (?, ?, ?, ?)'),
      trimActivityAge: db.prepare<[number]>('DELETE FROM lock_activity WHERE at < ?'),
      trimActivityRows: db.prepare<[number]>('DELETE FROM lock_activity WHERE id <= (SELECT max(id) FROM lock_activity) - ?'),
      trimSamplesAge: db.prepare<[number]>('DELETE FROM waiter_samples WHERE at < ?'),
      trimSamplesRows: db.prepare<[number]>('DELETE FROM waiter_samples WHERE id <= (SELECT max(id) FROM waiter_samples) - ?'),
      activityForKey: db.prepare<[string, string, number, number], ActivityRow>(
        'SELECT at, type, waited_ms, held_ms, source FROM lock_activity WHERE backend = ? AND key = ? AND at >= ? AND at <= ? ORDER BY at',
      ),
      samplesForKey: db.prepare<[string, string, number, number], Sample>(
        'SELECT at, waiters FROM waiter_samples WHERE backend = ? AND key = ? AND at >= ? AND at <= ? ORDER BY at, id',
      ),
      sampleBefore: db.prepare<[string, string, number], Sample>(
        'SELECT at, waiters FROM waiter_samples WHERE backend = ? AND key = ? AND at < ? ORDER BY at DESC, id DESC LIMIT 1',
      ),
      aggregate: db.prepare<[number, number, string | null, string | null]>(
        `SELECT backend, key,
           SUM(type = 'acquired') AS acquisitions,
           SUM(type = 'acquired' AND waited_ms >= ${CONTENDED_MS}) AS contended,
           SUM(type = 'forced') AS forced,
           SUM(type = 'expired') AS expired,
           SUM(type = 'attempt') AS attempts,
           SUM(type = 'lost') AS lost,
           COALESCE(SUM(CASE WHEN type = 'acquired' AND waited_ms >= ${CONTENDED_MS} THEN waited_ms END), 0) AS total_wait,
           MAX(at) AS last_at
         FROM lock_activity WHERE at >= ? AND at <= ? AND (? IS NULL OR backend = ?)
         GROUP BY backend, key`,
      ),
      samplesInWindow: db.prepare<[number, number, string | null, string | null], Sample & { backend: string; key: string }>(
        'SELECT backend, key, at, waiters FROM waiter_samples WHERE at >= ? AND at <= ? AND (? IS NULL OR backend = ?) ORDER BY backend, key, at, id',
      ),
      // The value each key had when the window opened (bare column of the MAX row: SQLite's rule).
      samplesBefore: db.prepare<[number, string | null, string | null], { backend: string; key: string; waiters: number; at: number }>(
        `SELECT backend, key, waiters, MAX(at) AS at FROM waiter_samples WHERE at < ? AND (? IS NULL OR backend = ?)
         GROUP BY backend, key HAVING waiters > 0`,
      ),
      waitsForKey: db.prepare<[string, string, number, number], { waited_ms: number }>(
        "SELECT waited_ms FROM lock_activity WHERE backend = ? AND key = ? AND at >= ? AND at <= ? AND type = 'acquired' AND waited_ms IS NOT NULL",
      ),
      holdsForKey: db.prepare<[string, string, number, number], { held_ms: number }>(
        "SELECT held_ms FROM lock_activity WHERE backend = ? AND key = ? AND at >= ? AND at <= ? AND type IN ('released', 'expired', 'forced') AND held_ms IS NOT NULL",
      ),
    };
  }

  /**
   * Records the statistics side of one lock change (acquired, the endings, and the `attempt` /
   * `lost` telemetry, counted only; `changed` adds nothing).
   */
  recordChange(id: string, change: LockChange, source: ChangeSource, prevAcquiredAt: number | null): void {
    if (change.type === 'changed') return;
    let waited: number | null = null;
    let held: number | null = null;
    if (change.type === 'acquired') {
      waited = change.waitedMs !== undefined && Number.isFinite(change.waitedMs) ? Math.max(0, Math.round(change.waitedMs)) : null;
    } else if (ENDINGS.has(change.type)) {
      const acquiredAt = change.lock?.acquiredAt ?? prevAcquiredAt;
      if (change.heldMs !== undefined && Number.isFinite(change.heldMs)) held = Math.max(0, Math.round(change.heldMs));
      else if (acquiredAt !== null && acquiredAt <= change.at) held = change.at - acquiredAt;
    }
    this.s.insertActivity.run(change.at, id, change.key, change.type, waited, held, source);
    this.afterWrite(change.at);
  }

  /** Records a lock's waiter count if it differs from the last one written (or that is 10 min old). */
  sampleWaiters(id: string, key: string, waiters: number, at: number): void {
    const k = `${id}\n${key}`;
    const last = this.lastWaiters.get(k);
    const prev = last?.waiters ?? 0;
    // A key never seen with waiters is at 0 already: nothing to write. A standing queue is
    // re-written every 10 min so its value survives the age trim of older samples.
    if (prev === waiters && (waiters === 0 || (last && at - last.at < 10 * 60_000))) return;
    this.s.insertSample.run(at, id, key, waiters);
    if (waiters === 0) this.lastWaiters.delete(k);
    else this.lastWaiters.set(k, { waiters, at });
    this.afterWrite(at);
  }

  private afterWrite(at: number): void {
    if (++this.writes % 512 === 0) this.trim(at);
  }

  /** Applies the bounds now (tests; otherwise every 512 writes). */
  trim(now = Date.now()): void {
    const oldest = now - this.limits.retentionMs;
    this.s.trimActivityAge.run(oldest);
    this.s.trimActivityRows.run(this.limits.maxRows);
    this.s.trimSamplesAge.run(oldest);
    this.s.trimSamplesRows.run(this.limits.maxRows);
  }

  /** One lock's statistics over `window` ending at `now`. */
  lockStats(backend: string, key: string, window: WindowName, now = Date.now()): LockContention {
    const from = now - WINDOWS[window];
    const bucketMs = BUCKET_MS[window];
    const bucketStarts: number[] = [];
    for (let t = Math.floor(from / bucketMs) * bucketMs; t <= now; t += bucketMs) bucketStarts.push(t);
    const series: SeriesPoint[] = bucketStarts.map((t) => ({ t, acquisitions: 0, perMinute: 0, released: 0, forced: 0, expired: 0, waitersAvg: 0, waitersMax: 0 }));
    const waits: number[] = [];
    const holds: number[] = [];
    let acquisitions = 0;
    let contended = 0;
    let totalWaitMs = 0;
    let observedByReconcile = 0;
    let attempts = 0;
    let lost = 0;
    const counts = { released: 0, forced: 0, expired: 0 };
    for (const r of this.s.activityForKey.all(backend, key, from, now)) {
      if (r.type === 'attempt' || r.type === 'lost') {
        if (r.type === 'attempt') attempts++;
        else lost++;
        continue;
      }
      const b = series[Math.min(series.length - 1, Math.max(0, Math.floor((r.at - bucketStarts[0]!) / bucketMs)))]!;
      if (r.source === 'reconcile') observedByReconcile++;
      if (r.type === 'acquired') {
        acquisitions++;
        b.acquisitions++;
        if (r.waited_ms !== null) {
          waits.push(r.waited_ms);
          if (r.waited_ms >= CONTENDED_MS) {
            totalWaitMs += r.waited_ms;
            contended++;
          }
        }
      } else if (r.type === 'released' || r.type === 'forced' || r.type === 'expired') {
        counts[r.type]++;
        b[r.type]++;
        if (r.held_ms !== null) holds.push(r.held_ms);
      }
    }
    // Per whole bucket, also for the partial first and last ones: the current bucket fills up as
    // time passes rather than spiking from one acquisition in its first second.
    for (const p of series) p.perMinute = Math.round((p.acquisitions / (bucketMs / 60_000)) * 100) / 100;
    const initial = this.s.sampleBefore.get(backend, key, from)?.waiters ?? 0;
    const samples = this.s.samplesForKey.all(backend, key, from, now);
    const w = integrateWaiters(initial, samples, from, now, bucketStarts, bucketMs);
    series.forEach((p, i) => {
      p.waitersAvg = w.avg[i]!;
      p.waitersMax = w.max[i]!;
    });
    const waiterMs = Math.round(w.total);
    return {
      now,
      backend,
      key,
      window,
      from,
      to: now,
      bucketMs,
      acquisitions,
      acquisitionsPerMinute: Math.round((acquisitions / (WINDOWS[window] / 60_000)) * 100) / 100,
      contendedAcquisitions: contended,
      ...counts,
      observedByReconcile,
      attempts,
      lost,
      wait: distribution(waits),
      hold: distribution(holds),
      waiters: {
        now: samples.length ? samples[samples.length - 1]!.waiters : initial,
        max: w.overallMax,
        avg: Math.round((w.total / WINDOWS[window]) * 100) / 100,
      },
      totalWaitMs,
      waiterMs,
      contentionMs: Math.max(totalWaitMs, waiterMs),
      series,
    };
  }

  /** The most contended locks over `window` (see the module comment for the order). */
  ranking(opts: { window: WindowName; backend?: string; limit: number; now?: number }): ContentionRanking {
    const now = opts.now ?? Date.now();
    const span = WINDOWS[opts.window];
    const from = now - span;
    const b = opts.backend ?? null;
    const rows = new Map<string, RankedLock>();
    const entry = (backend: string, key: string): RankedLock => {
      const k = `${backend}\n${key}`;
      let r = rows.get(k);
      if (!r) {
        r = {
          backend, key, acquisitions: 0, acquisitionsPerMinute: 0, contendedAcquisitions: 0, forced: 0, expired: 0, attempts: 0, lost: 0, totalWaitMs: 0, waiterMs: 0,
          contentionMs: 0, waitP50: null, waitP95: null, waitMax: null, holdP50: null, maxWaiters: 0, avgWaiters: 0, waitersNow: 0, lastAt: null,
        };
        rows.set(k, r);
      }
      return r;
    };
    type Agg = { backend: string; key: string; acquisitions: number; contended: number; forced: number; expired: number; attempts: number; lost: number; total_wait: number; last_at: number };
    for (const a of this.s.aggregate.all(from, now, b, b) as Agg[]) {
      const r = entry(a.backend, a.key);
      r.acquisitions = a.acquisitions;
      r.acquisitionsPerMinute = Math.round((a.acquisitions / (span / 60_000)) * 100) / 100;
      r.contendedAcquisitions = a.contended;
      r.forced = a.forced;
      r.expired = a.expired;
      r.attempts = a.attempts;
      r.lost = a.lost;
      r.totalWaitMs = a.total_wait;
      r.lastAt = a.last_at;
    }
    // Waiter·time per key: the step function from the value at the window's start.
    const initial = new Map<string, number>();
    for (const s of this.s.samplesBefore.all(from, b, b)) initial.set(`${s.backend}\n${s.key}`, s.waiters);
    const byKey = new Map<string, Sample[]>();
    for (const s of this.s.samplesInWindow.all(from, now, b, b)) {
      const k = `${s.backend}\n${s.key}`;
      let list = byKey.get(k);
      if (!list) byKey.set(k, (list = []));
      list.push({ at: s.at, waiters: s.waiters });
    }
    for (const k of new Set([...initial.keys(), ...byKey.keys()])) {
      const [backend, ...rest] = k.split('\n');
      const samples = byKey.get(k) ?? [];
      const w = integrateWaiters(initial.get(k) ?? 0, samples, from, now, [], span);
      if (w.total === 0 && w.overallMax === 0 && !rows.has(k)) continue;
      const r = entry(backend!, rest.join('\n'));
      r.waiterMs = Math.round(w.total);
      r.maxWaiters = w.overallMax;
      r.avgWaiters = Math.round((w.total / span) * 100) / 100;
      r.waitersNow = samples.length ? samples[samples.length - 1]!.waiters : (initial.get(k) ?? 0);
    }
    const all = [...rows.values()];
    for (const r of all) r.contentionMs = Math.max(r.totalWaitMs, r.waiterMs);
    all.sort((x, y) => y.contentionMs - x.contentionMs || y.acquisitions - x.acquisitions || (x.backend + x.key < y.backend + y.key ? -1 : 1));
    const top = all.slice(0, opts.limit);
    for (const r of top) {
      const waits = this.s.waitsForKey.all(r.backend, r.key, from, now).map((x) => x.waited_ms).sort((p, q) => p - q);
      const holds = this.s.holdsForKey.all(r.backend, r.key, from, now).map((x) => x.held_ms).sort((p, q) => p - q);
      r.waitP50 = percentile(waits, 0.5);
      r.waitP95 = percentile(waits, 0.95);
      r.waitMax = waits.length ? waits[waits.length - 1]! : null;
      r.holdP50 = percentile(holds, 0.5);
    }
    return { now, window: opts.window, from, to: now, total: all.length, contended: all.filter((r) => r.contentionMs > 0).length, locks: top };
  }
}

export function getContention(): ContentionStore {
  return singleton('contention', () => new ContentionStore(getConsoleDb()));
}

// ---- request parsing (the routes stay thin) -------------------------------------------------

const backendParam = z.string({ error: 'must be a string' }).regex(/^[a-z0-9-]{1,40}$/, 'must match [a-z0-9-]{1,40}');
const keyParam = z
  .string({ error: 'is required' })
  .min(1, 'must not be empty')
  .max(512, 'must be at most 512 characters')
  // eslint-disable-next-line no-control-regex
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must not contain control characters');

export const rankingQuerySchema = z.object({
  window: windowSchema.default(DEFAULT_WINDOW),
  backend: backendParam.optional(),
  limit: z.coerce.number({ error: 'must be an integer from 1 to 200' }).int('must be an integer from 1 to 200').min(1, 'must be an integer from 1 to 200').max(200, 'must be an integer from 1 to 200').default(20),
});

export const lockQuerySchema = z.object({
  backend: backendParam,
  key: keyParam,
  window: windowSchema.default(DEFAULT_WINDOW),
});

/** The query string as an object of single values: a repeated parameter is refused (400), empty ones are absent. */
export function queryObject(url: URL): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of new Set(url.searchParams.keys())) {
    const all = url.searchParams.getAll(name);
    if (all.length > 1) throw new z.ZodError([{ code: 'custom', path: [name], message: 'give it at most once', input: all }]);
    if (all[0] !== '') out[name] = all[0]!;
  }
  return out;
}
