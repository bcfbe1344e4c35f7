/**
 * Timing and statistics helpers shared by every bench section.
 *
 * All times are milliseconds as floating-point numbers, taken with `process.hrtime.bigint()`
 * (CLOCK_MONOTONIC on Linux: system-wide, so stamps from two processes on one host compare).
 */

/** Now, in ms, on the monotonic clock shared by every process of this host. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Sorts a copy ascending. */
export function sorted(xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

/**
 * The p-th percentile (0..100) by linear interpolation between closest ranks (R-7, as numpy's
 * default). Pass a sorted array, or set `isSorted` false to sort a copy first. NaN when empty.
 */
export function percentile(xs: readonly number[], p: number, isSorted = false): number {
  if (xs.length === 0) return Number.NaN;
  const s = isSorted ? xs : sorted(xs);
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = s[lo]!;
  const b = s[hi]!;
  return a + (b - a) * (rank - lo);
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(xs: readonly number[]): Summary {
  const s = sorted(xs);
  return {
    n: s.length,
    min: s[0] ?? Number.NaN,
    p50: percentile(s, 50, true),
    p90: percentile(s, 90, true),
    p99: percentile(s, 99, true),
    max: s[s.length - 1] ?? Number.NaN,
    mean: mean(s),
  };
}

export interface MeasureOptions {
  /** Untimed iterations first (JIT, connection set-up, script cache...). */
  warmup: number;
  /** Timed iterations wanted. */
  samples: number;
  /** Hard budget for the timed part: stops early (with fewer samples) rather than run over. */
  maxMs?: number;
}

/**
 * Times `fn` sequentially: `warmup` untimed calls, then up to `samples` timed ones, each one
 * awaited before the next starts. Every loop is bounded by count and by `maxMs`.
 */
export async function measure(fn: () => Promise<unknown>, opts: MeasureOptions): Promise<number[]> {
  for (let i = 0; i < opts.warmup; i++) await fn();
  const out: number[] = [];
  const stopAt = opts.maxMs === undefined ? Infinity : nowMs() + opts.maxMs;
  for (let i = 0; i < opts.samples; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    const t1 = process.hrtime.bigint();
    out.push(Number(t1 - t0) / 1e6);
    if (nowMs() > stopAt) break;
  }
  return out;
}

/** Median of the ratios a[i]/b[i] and their spread, for interleaved A/B repetitions. */
export function pairedRatio(a: readonly number[], b: readonly number[]): { median: number; min: number; max: number } {
  const r = a.map((x, i) => x / b[i]!);
  return { median: median(r), min: Math.min(...r), max: Math.max(...r) };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Uniform in [lo, hi). */
export function uniform(lo: number, hi: number): number {
  return lo + Math.random() * (hi - lo);
}

/** Rejects after `ms` with a message naming what was awaited, so no wait is unbounded. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
