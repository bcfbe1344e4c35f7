/**
 * Checks a torture history (torture/history.ts) for the violations of perf-reliability-anchors
 * §3.4 and goals R1–R4:
 *
 *  - overlapping critical sections, by the shared monotonic clock and by the wall clock
 *    (two holders acting on one lock at the same time: expected without fencing under pauses);
 *  - fence regressions: a lock granted later than another (its request started after the other
 *    was acquired) with a fence that is not higher, or two grants with one fence;
 *  - fence-order violations at the resource: an accepted operation whose request was sent after an
 *    accepted operation with a higher fence had been answered (the resource failed to fence);
 *  - lost updates: accepted increments of the fenced cell that did not survive (from the history's
 *    written values, and from the register's own counts), and the same for the unfenced cell,
 *    which is reported (not a failure: it is what fencing exists to prevent);
 *  - stale operations refused by the fence check;
 *  - holders that learned of a lost lock later than TTL/3 + one round trip after a successor got
 *    it (counted from the moment the holder could run again, for a paused one), or never;
 *  - liveness: from a holder's kill (or a server's restart) to the next acquisition of its lock.
 *
 * `ok` is false on any fence regression, fence-order violation or fenced lost update: those must
 * be zero on every backend under every fault.
 */
import type { HistoryEvent } from './history';
import type { CellState } from './register';

export interface Interval {
  w: string;
  lock: string;
  fence: string;
  /** Monotonic µs: request started, acquired, critical section over (or the holder was killed). */
  requested: number;
  start: number;
  end: number;
  wallStart: number;
  wallEnd: number;
  /** How the interval ended. */
  endedBy: 'cs-end' | 'killed' | 'open';
  /** Monotonic µs at which the holder learned it lost the lock, if it did. */
  lostAt: number | null;
}

export interface Example {
  lock: string;
  detail: string;
}

export interface CheckOptions {
  /** Added to the TTL/3 + RTT bound of loss detection (scheduling noise); default 0. */
  detectionSlackMs?: number;
}

export interface CheckReport {
  backend: string;
  ttlMs: number;
  acquisitions: number;
  acquireFailures: number;
  overlaps: {
    pairs: number;
    /** Pairs where the earlier holder had not been told (signal) by the time the later one acquired. */
    unawarePairs: number;
    sections: number;
    rate: number;
    totalMs: number;
    maxMs: number;
    examples: Example[];
  };
  overlapsWall: { pairs: number };
  fenceRegressions: { count: number; examples: Example[] };
  fenceOrderViolations: { count: number; examples: Example[] };
  lostUpdates: {
    /** Accepted fenced writes whose value was written twice (history). */
    fenced: number;
    /** Register: accepted fenced writes − fenced value; null without the register record. */
    fencedRegister: number | null;
    unfenced: number;
    unfencedRegister: number | null;
    /** Fenced writes accepted (history) and plain writes done. */
    acceptedWrites: number;
    plainWrites: number;
  };
  staleRejected: { reads: number; writes: number; registerReads: number | null; registerWrites: number | null };
  /** Operations done after the handle's signal had aborted (the holder knew, and acted anyway). */
  opsAfterAbort: number;
  lossDetection: { measured: number; late: number; neverLearned: number; boundMs: number; p50Ms: number | null; maxMs: number | null; examples: Example[] };
  liveness: { samples: { kind: string; target: string; lock: string; at: number; ms: number | null }[]; maxMs: number | null; boundMs: number; exceeded: number };
  ok: boolean;
  failures: string[];
}

const MAX_EXAMPLES = 5;

function cmpFence(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function percentile(sorted: number[], p: number): number | null {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** Critical-section intervals per worker, closed by cs-end, by the worker's kill, or left open. */
export function intervals(events: HistoryEvent[]): Interval[] {
  const out: Interval[] = [];
  const open = new Map<string, Interval>(); // worker -> its open interval
  const close = (w: string, mono: number, wall: number, endedBy: Interval['endedBy']) => {
    const iv = open.get(w);
    if (!iv) return;
    iv.end = mono;
    iv.wallEnd = wall;
    iv.endedBy = endedBy;
    open.delete(w);
  };
  const requested = new Map<string, number>(); // worker -> mono of its acquire-start
  const lastMono = events.length ? events[events.length - 1]!.mono : 0;
  const lastWall = events.length ? events[events.length - 1]!.wall : 0;
  const byFence = new Map<string, Interval>(); // `${w}\n${lock}\n${fence}`
  for (const e of events) {
    switch (e.t) {
      case 'acquire-start':
        requested.set(e.w, e.mono);
        break;
      case 'acquired': {
        const iv: Interval = {
          w: e.w, lock: e.lock, fence: e.fence, requested: requested.get(e.w) ?? e.mono, start: e.mono, end: lastMono,
          wallStart: e.wall, wallEnd: lastWall, endedBy: 'open', lostAt: null,
        };
        open.set(e.w, iv);
        byFence.set(`${e.w}\n${e.lock}\n${e.fence}`, iv);
        out.push(iv);
        break;
      }
      case 'lost': {
        // The newest interval of that worker with this lock and fence.
        const iv = byFence.get(`${e.w}\n${e.lock}\n${e.fence}`);
        if (iv && iv.lostAt === null && iv.start <= e.mono) iv.lostAt = e.mono;
        break;
      }
      case 'cs-end':
        close(e.w, e.mono, e.wall, 'cs-end');
        break;
      case 'fault':
        if (e.kind === 'kill' && e.phase === 'begin') close(e.target, e.mono, e.wall, 'killed');
        break;
      default:
        break;
    }
  }
  return out;
}

/** Pause windows [begin, end] per worker (monotonic µs). */
function pauses(events: HistoryEvent[]): Map<string, Array<[number, number]>> {
  const out = new Map<string, Array<[number, number]>>();
  const begun = new Map<string, number>();
  for (const e of events) {
    if (e.t !== 'fault' || e.kind !== 'pause') continue;
    if (e.phase === 'begin') begun.set(e.target, e.mono);
    else {
      const b = begun.get(e.target);
      if (b !== undefined) {
        const list = out.get(e.target) ?? [];
        list.push([b, e.mono]);
        out.set(e.target, list);
        begun.delete(e.target);
      }
    }
  }
  return out;
}

export function check(events: HistoryEvent[], opts: CheckOptions = {}): CheckReport {
  const params = events.find((e): e is Extract<HistoryEvent, { t: 'params' }> => e.t === 'params');
  const started = events.find((e): e is Extract<HistoryEvent, { t: 'start' }> => e.t === 'start');
  const ttlMs = params?.ttlMs ?? started?.ttlMs ?? 0;
  const rttMs = params?.rttMs ?? 0;
  const backend = params?.backend ?? started?.backend ?? 'unknown';
  const ivs = intervals(events);
  const failures: string[] = [];

  // ---- overlaps (monotonic and wall clock) -----------------------------------------------------
  const byLock = new Map<string, Interval[]>();
  for (const iv of ivs) {
    const l = byLock.get(iv.lock) ?? [];
    l.push(iv);
    byLock.set(iv.lock, l);
  }
  const overlapExamples: Example[] = [];
  let pairs = 0;
  let unaware = 0;
  let pairsWall = 0;
  let totalUs = 0;
  let maxUs = 0;
  const inOverlap = new Set<Interval>();
  /** Per stale holder: when its first overlap with a higher fence began, and with whom. */
  const firstOverlap = new Map<Interval, { at: number; other: Interval }>();
  for (const [lock, list] of byLock) {
    const sorted = [...list].sort((a, b) => a.start - b.start);
    for (let i = 0; i < sorted.length; i++) {
      const a = sorted[i]!;
      for (let j = i + 1; j < sorted.length && sorted[j]!.start < a.end; j++) {
        const b = sorted[j]!;
        const us = Math.min(a.end, b.end) - b.start;
        if (us <= 0) continue;
        pairs++;
        // The holder with the lower fence is the stale one (its grant came first), whichever
        // learned of its acquisition first; it should have been told by the time the overlap began.
        const stale = cmpFence(a.fence, b.fence) <= 0 ? a : b;
        const fresh = stale === a ? b : a;
        if (stale.lostAt === null || stale.lostAt > b.start) unaware++;
        const first = firstOverlap.get(stale);
        if (!first || b.start < first.at) firstOverlap.set(stale, { at: b.start, other: fresh });
        totalUs += us;
        maxUs = Math.max(maxUs, us);
        inOverlap.add(a).add(b);
        if (overlapExamples.length < MAX_EXAMPLES) {
          overlapExamples.push({ lock, detail: `${a.w} (fence ${a.fence}) and ${b.w} (fence ${b.fence}) both held it for ${(us / 1000).toFixed(1)} ms` });
        }
      }
    }
    const byWall = [...list].sort((a, b) => a.wallStart - b.wallStart);
    for (let i = 0; i < byWall.length; i++) {
      const a = byWall[i]!;
      for (let j = i + 1; j < byWall.length && byWall[j]!.wallStart < a.wallEnd; j++) pairsWall++;
    }
  }

  // ---- fence regressions: grant order is bracketed by [requested, acquired] --------------------
  const regressions: Example[] = [];
  let regressionCount = 0;
  for (const [lock, list] of byLock) {
    const seen = new Map<string, Interval>();
    for (const iv of list) {
      const dup = seen.get(iv.fence);
      if (dup) {
        regressionCount++;
        if (regressions.length < MAX_EXAMPLES) regressions.push({ lock, detail: `fence ${iv.fence} granted twice (${dup.w} and ${iv.w})` });
      } else seen.set(iv.fence, iv);
    }
    const byAcquired = [...list].sort((a, b) => a.start - b.start);
    const byRequested = [...list].sort((a, b) => a.requested - b.requested);
    let k = 0;
    let max: Interval | undefined;
    for (const b of byRequested) {
      while (k < byAcquired.length && byAcquired[k]!.start < b.requested) {
        const a = byAcquired[k++]!;
        if (!max || cmpFence(a.fence, max.fence) > 0) max = a;
      }
      if (max && max !== b && cmpFence(b.fence, max.fence) < 0) {
        regressionCount++;
        if (regressions.length < MAX_EXAMPLES) {
          regressions.push({ lock, detail: `${b.w} asked after ${max.w} had fence ${max.fence}, yet got fence ${b.fence}` });
        }
      }
    }
  }

  // ---- operations on the resource ---------------------------------------------------------------
  type Op = Extract<HistoryEvent, { t: 'read' | 'write' }>;
  const ops = events.filter((e): e is Op => e.t === 'read' || e.t === 'write');
  const orderViolations: Example[] = [];
  let orderCount = 0;
  // When was each op's request sent, at the earliest? After its holder's acquisition and after the
  // holder's previous op was answered (both logged before the request). Walked in event order per
  // worker, so a fence that a store handed out twice (after losing its counter) cannot confuse it.
  const sentAfter = new Map<Op, number>();
  const lastMark = new Map<string, number>();
  for (const e of events) {
    if (e.t === 'acquired') lastMark.set(e.w, e.mono);
    else if (e.t === 'read' || e.t === 'write') {
      sentAfter.set(e, lastMark.get(e.w) ?? 0);
      lastMark.set(e.w, e.mono);
    }
  }
  // An accepted op X sent after an accepted op Y with a higher fence was answered (Y logged before
  // X's earliest send time): the resource saw Y first and should have refused X.
  const acceptedByLock = new Map<string, Op[]>();
  for (const op of ops) {
    if (!op.ok) continue;
    const l = acceptedByLock.get(op.lock) ?? [];
    l.push(op);
    acceptedByLock.set(op.lock, l);
  }
  for (const [lock, list] of acceptedByLock) {
    // list is in log (answer) order; prefix maxima of the fence.
    const prefixMax: Op[] = [];
    for (const op of list) {
      const prev = prefixMax[prefixMax.length - 1];
      prefixMax.push(prev && cmpFence(prev.fence, op.fence) >= 0 ? prev : op);
    }
    for (const x of list) {
      const after = sentAfter.get(x) ?? 0;
      // Last accepted op answered before `after` (binary search on mono).
      let lo = 0;
      let hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (list[mid]!.mono < after) lo = mid + 1;
        else hi = mid;
      }
      const y = lo > 0 ? prefixMax[lo - 1]! : undefined;
      if (y && cmpFence(x.fence, y.fence) < 0) {
        orderCount++;
        if (orderViolations.length < MAX_EXAMPLES) {
          orderViolations.push({ lock, detail: `${x.t} by ${x.w} with fence ${x.fence} accepted after ${y.t} by ${y.w} with fence ${y.fence} had been` });
        }
      }
    }
  }

  // Lost updates from the history: every accepted write of the fenced cell must write a distinct
  // value; two accepted writes of one value mean one increment was lost. Same for the plain cell.
  const writes = ops.filter((o): o is Extract<Op, { t: 'write' }> => o.t === 'write');
  let acceptedWrites = 0;
  let lostFenced = 0;
  let lostPlain = 0;
  const values = new Map<string, Set<number>>();
  const plains = new Map<string, Set<number>>();
  for (const wr of writes) {
    const pv = plains.get(wr.lock) ?? new Set<number>();
    if (pv.has(wr.plain)) lostPlain++;
    pv.add(wr.plain);
    plains.set(wr.lock, pv);
    if (!wr.ok) continue;
    acceptedWrites++;
    const v = values.get(wr.lock) ?? new Set<number>();
    if (v.has(wr.value)) lostFenced++;
    v.add(wr.value);
    values.set(wr.lock, v);
  }
  const reg = [...events].reverse().find((e): e is Extract<HistoryEvent, { t: 'register' }> => e.t === 'register');
  let fencedRegister: number | null = null;
  let unfencedRegister: number | null = null;
  let registerReads: number | null = null;
  let registerWrites: number | null = null;
  if (reg) {
    const cells = Object.values(reg.cells) as CellState[];
    fencedRegister = cells.reduce((s, c) => s + (c.acceptedWrites - c.value), 0);
    unfencedRegister = cells.reduce((s, c) => s + (c.plainWrites - c.plain), 0);
    registerReads = cells.reduce((s, c) => s + c.rejectedReads, 0);
    registerWrites = cells.reduce((s, c) => s + c.rejectedWrites, 0);
  }

  // ---- loss detection ----------------------------------------------------------------------------
  const paused = pauses(events);
  const boundMs = ttlMs / 3 + rttMs + (opts.detectionSlackMs ?? 0);
  const delays: number[] = [];
  const detectExamples: Example[] = [];
  let late = 0;
  let never = 0;
  for (const [a, { at, other: b }] of firstOverlap) {
    const lock = a.lock;
    if (a.endedBy === 'killed') continue;
    // A paused holder cannot learn anything: count from when it ran again.
    let from = at;
    for (const [pb, pe] of paused.get(a.w) ?? []) if (pb <= from && from < pe) from = pe;
    if (a.lostAt === null) {
      never++;
      if (detectExamples.length < MAX_EXAMPLES) detectExamples.push({ lock, detail: `${a.w} (fence ${a.fence}) kept acting ${((a.end - at) / 1000).toFixed(1)} ms while ${b.w} (fence ${b.fence}) held it and never learned` });
      continue;
    }
    const ms = Math.max(0, (a.lostAt - from) / 1000);
    delays.push(ms);
    if (ms > boundMs) {
      late++;
      if (detectExamples.length < MAX_EXAMPLES) detectExamples.push({ lock, detail: `${a.w} (fence ${a.fence}) learned ${ms.toFixed(1)} ms after ${b.w} (fence ${b.fence}) held it too (bound ${boundMs.toFixed(1)} ms)` });
    }
  }
  delays.sort((x, y) => x - y);

  // ---- liveness ----------------------------------------------------------------------------------
  const livenessBoundMs = params?.livenessBoundMs ?? Infinity;
  const samples: CheckReport['liveness']['samples'] = [];
  // Waits per lock: [worker, acquire-start, acquired/failed (or the end of the history)].
  const waits = new Map<string, Array<[string, number, number]>>();
  {
    const open = new Map<string, [string, number, number]>();
    for (const e of events) {
      if (e.t === 'acquire-start') {
        const wt: [string, number, number] = [e.w, e.mono, Infinity];
        open.set(e.w, wt);
        const l = waits.get(e.lock) ?? [];
        l.push(wt);
        waits.set(e.lock, l);
      } else if (e.t === 'acquired' || e.t === 'acquire-failed') {
        const wt = open.get(e.w);
        if (wt) wt[2] = e.mono;
        open.delete(e.w);
      } else if (e.t === 'fault' && e.kind === 'kill' && e.phase === 'begin') {
        const wt = open.get(e.target);
        if (wt) wt[2] = e.mono;
        open.delete(e.target);
      }
    }
  }
  for (const e of events) {
    if (e.t !== 'fault') continue;
    if (e.kind === 'kill' && e.phase === 'begin') {
      // Did the victim hold a lock at that moment?
      const iv = ivs.find((x) => x.w === e.target && x.endedBy === 'killed' && x.end === e.mono);
      if (!iv) continue;
      // Only a lock someone was waiting for measures liveness (otherwise it measures how long the
      // next worker took to start and pick that lock).
      if (!(waits.get(iv.lock) ?? []).some(([w, from, to]) => w !== e.target && from < e.mono && to > e.mono)) continue;
      const next = ivs.filter((x) => x.lock === iv.lock && x.start > e.mono).sort((a, b) => a.start - b.start)[0];
      samples.push({ kind: 'kill', target: e.target, lock: iv.lock, at: e.mono, ms: next ? (next.start - e.mono) / 1000 : null });
    } else if ((e.kind === 'server-kill' || e.kind === 'member-kill' || e.kind === 'failover') && e.phase === 'end') {
      const next = ivs.filter((x) => x.start > e.mono).sort((a, b) => a.start - b.start)[0];
      samples.push({ kind: e.kind, target: e.target, lock: next?.lock ?? '', at: e.mono, ms: next ? (next.start - e.mono) / 1000 : null });
    }
  }
  const runEnd = events.length ? events[events.length - 1]!.mono : 0;
  const measured = samples.map((s) => s.ms).filter((m): m is number => m !== null);
  let exceeded = 0;
  for (const s of samples) {
    if (s.ms !== null) {
      if (s.ms > livenessBoundMs) exceeded++;
    } else if (s.kind === 'kill') {
      // Nobody took the lock again: a violation only if the run went on past the bound.
      if ((runEnd - s.at) / 1000 > livenessBoundMs) exceeded++;
    }
  }

  const acquisitions = events.filter((e) => e.t === 'acquired').length;
  const lostFencedTotal = Math.max(lostFenced, fencedRegister ?? 0);
  if (regressionCount) failures.push(`${regressionCount} fence regression(s)`);
  if (orderCount) failures.push(`${orderCount} fence-order violation(s) at the resource`);
  if (lostFencedTotal) failures.push(`${lostFencedTotal} lost update(s) with fencing`);
  return {
    backend,
    ttlMs,
    acquisitions,
    acquireFailures: events.filter((e) => e.t === 'acquire-failed').length,
    overlaps: {
      pairs,
      unawarePairs: unaware,
      sections: inOverlap.size,
      rate: ivs.length ? inOverlap.size / ivs.length : 0,
      totalMs: totalUs / 1000,
      maxMs: maxUs / 1000,
      examples: overlapExamples,
    },
    overlapsWall: { pairs: pairsWall },
    fenceRegressions: { count: regressionCount, examples: regressions },
    fenceOrderViolations: { count: orderCount, examples: orderViolations },
    lostUpdates: { fenced: lostFenced, fencedRegister, unfenced: lostPlain, unfencedRegister, acceptedWrites, plainWrites: writes.length },
    staleRejected: {
      reads: ops.filter((o) => o.t === 'read' && !o.ok).length,
      writes: writes.filter((o) => !o.ok).length,
      registerReads,
      registerWrites,
    },
    opsAfterAbort: ops.filter((o) => o.aborted).length,
    lossDetection: { measured: delays.length, late, neverLearned: never, boundMs, p50Ms: percentile(delays, 0.5), maxMs: delays.length ? delays[delays.length - 1]! : null, examples: detectExamples },
    liveness: { samples, maxMs: measured.length ? Math.max(...measured) : null, boundMs: livenessBoundMs, exceeded },
    ok: failures.length === 0,
    failures,
  };
}
