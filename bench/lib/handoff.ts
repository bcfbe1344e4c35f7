/**
 * Cross-process handoff harness, store-agnostic: two workers play ping-pong on one lock name.
 * The holder holds; the other worker calls acquire() and blocks; once `confirmBlocked` says the
 * waiter really waits, the holder sleeps a random pause and releases. One sample is
 * t1 (waiter's acquire resolved) − t0 (holder about to call release()), both CLOCK_MONOTONIC.
 * Then the roles swap, so both processes are measured as waiter equally often.
 */
import type { LockBackend } from '../../lib/locks/types';
import { atLeast, type Row } from './report';
import type { BenchWorker } from './workers';
import { median, uniform } from './stats';

export interface HandoffSample {
  ms: number;
  pauseMs: number;
  /** The waiter's fence (lockdeck only): must increase strictly. */
  fence: string | null;
  /** Holder: t0 → its release command handed to the socket (library + client JS). */
  holderMs: number | null;
  /** Release command sent → grant message parsed in the waiter (wire, server, wake-ups). */
  transitMs: number | null;
  /** Waiter: grant message → acquire() resolved (library JS). */
  waiterMs: number | null;
}

export interface HandoffOptions {
  name: string;
  ttlMs: number;
  autoRenew?: boolean;
  /** Waiter's waitMs: long enough never to time out in a healthy run. */
  waitMs: number;
  warmup: number;
  samples: number;
  /** Holder's pause after the waiter is confirmed blocked, uniform in [lo, hi) ms. */
  pauseMs: [number, number] | ((i: number) => number);
  /** Resolves once `waiter` is known to be blocked in acquire request `id`. */
  confirmBlocked: (waiter: BenchWorker, id: number) => Promise<void>;
  /** Redlock needs the event from the worker; lockdeck uses the inspector. */
  notifyBlocked?: boolean;
  /** Stops early (fewer samples) past this. */
  budgetMs: number;
  /** Per-request timeout. */
  timeoutMs?: number;
}

/**
 * Plays `warmup + samples` handoffs starting with `pair[0]` holding the lock (the caller makes it
 * hold first). Returns the timed samples and which worker holds at the end.
 */
export async function pingPong(
  pair: [BenchWorker, BenchWorker],
  o: HandoffOptions,
): Promise<{ samples: HandoffSample[]; holder: BenchWorker; handoffs: number }> {
  let [holder, waiter] = pair;
  const out: HandoffSample[] = [];
  const stopAt = performance.now() + o.budgetMs;
  const timeout = o.timeoutMs ?? 10_000;
  const total = o.warmup + o.samples;
  let done = 0;
  for (let i = 0; i < total; i++) {
    if (i >= o.warmup && performance.now() > stopAt) break;
    const acq = waiter.request(
      { op: 'acquire', name: o.name, ttlMs: o.ttlMs, waitMs: o.waitMs, autoRenew: o.autoRenew, notifyBlocked: o.notifyBlocked },
      timeout,
    );
    // Surface an acquire that fails while we are still confirming (instead of an unhandled rejection).
    let failed: unknown;
    acq.reply.catch((err: unknown) => (failed = err));
    await o.confirmBlocked(waiter, acq.id);
    if (failed) throw failed;
    const pauseMs = typeof o.pauseMs === 'function' ? o.pauseMs(i) : uniform(o.pauseMs[0], o.pauseMs[1]);
    const rel = holder.call({ op: 'release', pauseMs }, timeout + pauseMs);
    const [r, a] = await Promise.all([rel, acq.reply]);
    done++;
    if (i >= o.warmup) {
      if (r.t0 === undefined || a.t1 === undefined) throw new Error('worker reply without timestamps');
      const sent = r.sentAt;
      const msg = a.msgAt;
      out.push({
        ms: a.t1 - r.t0,
        pauseMs,
        fence: a.fence ?? null,
        holderMs: sent === undefined ? null : sent - r.t0,
        transitMs: sent === undefined || msg === undefined ? null : msg - sent,
        waiterMs: msg === undefined ? null : a.t1 - msg,
      });
    }
    [holder, waiter] = [waiter, holder];
  }
  return { samples: out, holder, handoffs: done };
}

/** Checks that fences increase strictly along the samples (lockdeck's handoff grants new ones). */
export function fencesIncrease(samples: readonly HandoffSample[]): boolean {
  let prev: bigint | undefined;
  for (const s of samples) {
    if (s.fence === null) continue;
    const f = BigInt(s.fence);
    if (prev !== undefined && f <= prev) return false;
    prev = f;
  }
  return true;
}

/** p50 of each part of the handoff's critical path (null parts skipped). */
export function breakdown(samples: readonly HandoffSample[]): { holderMs: number; transitMs: number; waiterMs: number; n: number } {
  const pick = (f: (s: HandoffSample) => number | null) => samples.map(f).filter((x): x is number => x !== null);
  const p50 = (xs: number[]) => (xs.length ? median(xs) : Number.NaN);
  return {
    holderMs: p50(pick((s) => s.holderMs)),
    transitMs: p50(pick((s) => s.transitMs)),
    waiterMs: p50(pick((s) => s.waiterMs)),
    n: pick((s) => s.transitMs).length,
  };
}

/** Polls the inspector until `name` shows at least `want` waiters (bounded by count and time). */
export async function waitForWaiters(inspector: LockBackend, name: string, want: number, timeoutMs = 5000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (let polls = 1; polls <= 20_000; polls++) {
    const info = await inspector.get(name);
    if (info && info.waiters.length >= want) return;
    if (performance.now() > deadline) break;
  }
  throw new Error(`inspector never showed ${want} waiter(s) on "${name}" within ${timeoutMs} ms`);
}

/** One contended-throughput run (see {@link contendedThroughput}). */
export interface ThroughputResult {
  contenders: number;
  perSec: number;
  acquisitions: number;
  /** Holds whose [acquired, releasing] interval began before the previous one ended: must be 0. */
  overlaps: number;
  fencesIncrease: boolean;
}

/**
 * Throughput on one contended lock: each seat (a worker and a holding slot in it) loops
 * acquire → release with a zero critical section for `durationMs`. Every hold's interval is
 * checked against the one before it in time (one monotonic clock on this host), so throughput
 * can never come from overlapping holds, and fences must increase along the holds.
 */
export async function contendedThroughput(
  seats: ReadonlyArray<{ w: BenchWorker; slot: number }>,
  o: { name: string; ttlMs: number; durationMs: number },
): Promise<ThroughputResult> {
  const t0 = performance.now();
  const replies = await Promise.all(
    seats.map((s) =>
      s.w.call({ op: 'contend', name: o.name, ttlMs: o.ttlMs, durationMs: o.durationMs, slot: s.slot } as unknown as Parameters<BenchWorker['request']>[0], o.durationMs + 30_000),
    ),
  );
  const elapsed = performance.now() - t0;
  const spans = replies.flatMap((r) => (r as unknown as { spans: [string | null, number, number][] }).spans).sort((a, b) => a[1] - b[1]);
  let overlaps = 0;
  let increasing = true;
  for (let i = 1; i < spans.length; i++) {
    if (spans[i]![1] < spans[i - 1]![2]) overlaps++;
    if (BigInt(spans[i]![0] ?? '0') <= BigInt(spans[i - 1]![0] ?? '0')) increasing = false;
  }
  return { contenders: seats.length, perSec: (spans.length / elapsed) * 1000, acquisitions: spans.length, overlaps, fencesIncrease: increasing };
}

/** The report row of a throughput run against 1 / handoff p50 (target ≥ 0.8×; any overlap fails). */
export function throughputRow(section: string, t: ThroughputResult, handoffP50Ms: number, extraNote = ''): Row {
  const perHandoff = 1000 / handoffP50Ms;
  const ratio = t.perSec / perHandoff;
  return {
    section, figure: `throughput, 1 lock, ${t.contenders} contenders`, value: t.perSec, unit: '/s', baseline: `1/handoff p50 ${perHandoff.toFixed(0)}/s`,
    ratio, target: '≥ 0.8×', verdict: t.overlaps > 0 || !t.fencesIncrease ? 'FAIL' : atLeast(ratio, 0.8),
    note: `critical section 0, ${t.acquisitions} acquisitions; overlapping holds: ${t.overlaps}; fences strictly increasing: ${t.fencesIncrease}${extraNote}`,
  };
}
