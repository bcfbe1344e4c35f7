/**
 * The torture checker must be able to fail: each anomaly it reports is planted in a hand-made
 * history here. Then a short form of the torture run (a few seconds per backend, SIGSTOP and
 * SIGKILL of lock holders, real servers and worker processes) must show zero lost updates and zero
 * fence regressions with fencing. The full matrix is `npm run torture` (RELIABILITY.md).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { check } from '../torture/checker';
import type { HistoryEvent } from '../torture/history';
import { Register } from '../torture/register';
import { runCell, type CellResult } from '../torture/run';

/** A tiny DSL: events at monotonic milliseconds (µs in the history), wall clock = mono. */
type Ev = Record<string, unknown> & { t: HistoryEvent['t'] };
function h(...evs: Array<[number, string, Ev]>): HistoryEvent[] {
  return evs.map(([ms, w, e]) => ({ mono: ms * 1000, wall: 1_700_000_000_000 + ms, w, ...e }) as unknown as HistoryEvent);
}
const params = (extra: Record<string, unknown> = {}): Ev => ({
  t: 'params', backend: 'test', ttlMs: 300, rttMs: 1, livenessBoundMs: 500, faults: [], seconds: 1, workers: 2, locks: ['L'], ...extra,
});
/** One clean critical section of worker w on lock L: acquire, read v, write v+1, end. */
function cs(w: string, at: number, fence: string, v: number, plain = v, ok = true): Array<[number, string, Ev]> {
  return [
    [at, w, { t: 'acquire-start', lock: 'L' }],
    [at + 1, w, { t: 'acquired', lock: 'L', fence }],
    [at + 2, w, { t: 'read', lock: 'L', fence, ok, value: v, plain, aborted: false }],
    [at + 8, w, { t: 'write', lock: 'L', fence, ok, value: v + 1, plain: plain + 1, aborted: false }],
    [at + 9, w, { t: 'cs-end', lock: 'L', fence }],
    [at + 10, w, { t: 'released', lock: 'L', fence }],
  ];
}

/** A short torture cell's verdict: enough critical sections, none unsafe with fencing. */
function expectSafe(x: CellResult['report']): void {
  expect(x.acquisitions).toBeGreaterThan(10);
  expect(x.failures).toEqual([]);
  expect(x.lostUpdates.fenced).toBe(0);
  expect(x.lostUpdates.fencedRegister).toBe(0);
  expect(x.fenceRegressions.count).toBe(0);
  expect(x.fenceOrderViolations.count).toBe(0);
}

describe('torture checker on hand-made histories', () => {
  it('passes a clean history', () => {
    const r = check(h([0, 'runner', params()], ...cs('a', 10, '1', 0), ...cs('b', 30, '2', 1), ...cs('a', 50, '3', 2)));
    expect(r.ok).toBe(true);
    expect(r.acquisitions).toBe(3);
    expect(r.overlaps.pairs).toBe(0);
    expect(r.lostUpdates).toMatchObject({ fenced: 0, unfenced: 0, acceptedWrites: 3 });
    expect(r.fenceRegressions.count).toBe(0);
    expect(r.fenceOrderViolations.count).toBe(0);
  });

  it('finds overlapping critical sections and an unfenced lost update', () => {
    // b acquires while a (paused) still holds; both read plain 0 and write plain 1; a's fenced
    // write is refused.
    const r = check(
      h(
        [0, 'runner', params()],
        [10, 'a', { t: 'acquire-start', lock: 'L' }],
        [11, 'a', { t: 'acquired', lock: 'L', fence: '1' }],
        [12, 'a', { t: 'read', lock: 'L', fence: '1', ok: true, value: 0, plain: 0, aborted: false }],
        [20, 'runner', { t: 'fault', kind: 'pause', phase: 'begin', target: 'a' }],
        ...cs('b', 400, '2', 0, 0),
        [700, 'runner', { t: 'fault', kind: 'pause', phase: 'end', target: 'a' }],
        [701, 'a', { t: 'write', lock: 'L', fence: '1', ok: false, value: 1, plain: 1, aborted: false }],
        [702, 'a', { t: 'lost', lock: 'L', fence: '1', reason: 'expired' }],
        [703, 'a', { t: 'cs-end', lock: 'L', fence: '1' }],
      ),
    );
    expect(r.overlaps.pairs).toBe(1);
    expect(r.overlaps.unawarePairs).toBe(1);
    expect(r.overlaps.sections).toBe(2);
    expect(r.overlapsWall.pairs).toBe(1);
    expect(r.lostUpdates.unfenced).toBe(1);
    expect(r.lostUpdates.fenced).toBe(0);
    expect(r.staleRejected.writes).toBe(1);
    // Learned 2 ms after it ran again (the pause does not count): within 300/3 + 1.
    expect(r.lossDetection).toMatchObject({ measured: 1, late: 0, neverLearned: 0 });
    expect(r.ok).toBe(true);
  });

  it('finds a lost update with fencing (two accepted writes of one value), in the history and in the register', () => {
    const events = h(
      [0, 'runner', params()],
      [10, 'a', { t: 'acquire-start', lock: 'L' }],
      [11, 'a', { t: 'acquired', lock: 'L', fence: '1' }],
      [12, 'a', { t: 'read', lock: 'L', fence: '1', ok: true, value: 0, plain: 0, aborted: false }],
      [13, 'b', { t: 'acquire-start', lock: 'L' }],
      [14, 'b', { t: 'acquired', lock: 'L', fence: '2' }],
      [15, 'b', { t: 'read', lock: 'L', fence: '2', ok: true, value: 0, plain: 0, aborted: false }],
      [16, 'b', { t: 'write', lock: 'L', fence: '2', ok: true, value: 1, plain: 1, aborted: false }],
      [17, 'b', { t: 'cs-end', lock: 'L', fence: '2' }],
      [18, 'a', { t: 'write', lock: 'L', fence: '1', ok: true, value: 1, plain: 1, aborted: false }],
      [19, 'a', { t: 'cs-end', lock: 'L', fence: '1' }],
      [30, 'runner', { t: 'register', cells: { L: { value: 1, maxFence: '2', acceptedWrites: 2, rejectedWrites: 0, rejectedReads: 0, plain: 1, plainWrites: 2 } } }],
    );
    const r = check(events);
    expect(r.lostUpdates.fenced).toBe(1);
    expect(r.lostUpdates.fencedRegister).toBe(1);
    expect(r.lostUpdates.unfencedRegister).toBe(1);
    expect(r.ok).toBe(false);
    expect(r.failures.join()).toMatch(/lost update/);
  });

  it('finds a resource that accepted an older fence after a newer one (fence-order violation)', () => {
    const r = check(
      h(
        [0, 'runner', params()],
        [10, 'a', { t: 'acquire-start', lock: 'L' }],
        [11, 'a', { t: 'acquired', lock: 'L', fence: '1' }],
        ...cs('b', 12, '2', 0),
        // a's write is sent after its read was logged (30), i.e. after b's write was answered (20).
        [30, 'a', { t: 'read', lock: 'L', fence: '1', ok: true, value: 1, plain: 1, aborted: false }],
        [35, 'a', { t: 'write', lock: 'L', fence: '1', ok: true, value: 2, plain: 2, aborted: false }],
        [36, 'a', { t: 'cs-end', lock: 'L', fence: '1' }],
      ),
    );
    // The read may have been sent before b's ops (right after a acquired): only the write is proven.
    expect(r.fenceOrderViolations.count).toBe(1);
    expect(r.fenceOrderViolations.examples[0]!.detail).toMatch(/write by a with fence 1/);
    expect(r.lostUpdates.fenced).toBe(0);
    expect(r.ok).toBe(false);
    expect(r.failures.join()).toMatch(/fence-order/);
  });

  it('finds fence regressions: a later grant with a lower fence, and a fence granted twice', () => {
    const lower = check(h([0, 'runner', params()], ...cs('a', 10, '5', 0), ...cs('b', 30, '4', 1)));
    expect(lower.fenceRegressions.count).toBe(1);
    expect(lower.fenceRegressions.examples[0]!.detail).toMatch(/got fence 4/);
    expect(lower.ok).toBe(false);
    const twice = check(h([0, 'runner', params()], ...cs('a', 10, '7', 0), ...cs('b', 30, '7', 1)));
    expect(twice.fenceRegressions.count).toBeGreaterThanOrEqual(1);
    expect(twice.fenceRegressions.examples[0]!.detail).toMatch(/granted twice/);
    // A store that forgot its counter hands one worker the same fence again: the resource refusing
    // it is no fence-order violation (a checker bug once keyed intervals by worker + fence).
    const again = check(h([0, 'runner', params()], ...cs('a', 10, '7', 0), ...cs('b', 30, '9', 1), ...cs('a', 50, '7', 2, 2, false)));
    expect(again.fenceRegressions.count).toBeGreaterThanOrEqual(1);
    expect(again.fenceOrderViolations.count).toBe(0);
    // Grants whose requests overlap may come back in any order: not a regression.
    const racing = check(
      h(
        [0, 'runner', params()],
        [10, 'a', { t: 'acquire-start', lock: 'L' }],
        [11, 'b', { t: 'acquire-start', lock: 'L' }],
        [12, 'b', { t: 'acquired', lock: 'L', fence: '8' }],
        [13, 'b', { t: 'cs-end', lock: 'L', fence: '8' }],
        [20, 'a', { t: 'acquired', lock: 'L', fence: '7' }],
        [21, 'a', { t: 'cs-end', lock: 'L', fence: '7' }],
      ),
    );
    expect(racing.fenceRegressions.count).toBe(0);
  });

  it('finds holders that learned of the loss late, or never', () => {
    const late = check(
      h(
        [0, 'runner', params()],
        [10, 'a', { t: 'acquire-start', lock: 'L' }],
        [11, 'a', { t: 'acquired', lock: 'L', fence: '1' }],
        ...cs('b', 400, '2', 0),
        [900, 'a', { t: 'lost', lock: 'L', fence: '1', reason: 'expired' }],
        [901, 'a', { t: 'cs-end', lock: 'L', fence: '1' }],
      ),
    );
    expect(late.lossDetection.late).toBe(1);
    expect(late.lossDetection.maxMs).toBeCloseTo(499, 0);
    const never = check(
      h([0, 'runner', params()], [10, 'a', { t: 'acquire-start', lock: 'L' }], [11, 'a', { t: 'acquired', lock: 'L', fence: '1' }], ...cs('b', 400, '2', 0), [901, 'a', { t: 'cs-end', lock: 'L', fence: '1' }]),
    );
    expect(never.lossDetection.neverLearned).toBe(1);
    // A grant that reached its holder late (fence 1 < 2, acquired after b): the stale holder is the
    // lower fence, and it learned 2 ms after it started overlapping b.
    const bornLate = check(
      h(
        [0, 'runner', params()],
        [5, 'a', { t: 'acquire-start', lock: 'L' }],
        [10, 'b', { t: 'acquire-start', lock: 'L' }],
        [11, 'b', { t: 'acquired', lock: 'L', fence: '2' }],
        [50, 'a', { t: 'acquired', lock: 'L', fence: '1' }],
        [52, 'a', { t: 'lost', lock: 'L', fence: '1', reason: 'expired' }],
        [53, 'a', { t: 'cs-end', lock: 'L', fence: '1' }],
        [90, 'b', { t: 'cs-end', lock: 'L', fence: '2' }],
      ),
    );
    expect(bornLate.overlaps).toMatchObject({ pairs: 1, unawarePairs: 1 });
    expect(bornLate.lossDetection).toMatchObject({ measured: 1, neverLearned: 0, late: 0 });
    expect(bornLate.lossDetection.maxMs).toBeCloseTo(2, 0);
    expect(bornLate.fenceRegressions.count).toBe(0);
  });

  it('measures liveness from a holder kill to the next acquisition, against the bound', () => {
    const kill = (nextAt: number) =>
      check(
        h(
          [0, 'runner', params()],
          [10, 'a', { t: 'acquire-start', lock: 'L' }],
          [11, 'a', { t: 'acquired', lock: 'L', fence: '1' }],
          [20, 'b', { t: 'acquire-start', lock: 'L' }],
          [50, 'runner', { t: 'fault', kind: 'kill', phase: 'begin', target: 'a' }],
          ...cs('b', nextAt, '2', 0).slice(1),
        ),
      );
    const fast = kill(400);
    expect(fast.liveness.samples).toHaveLength(1);
    expect(fast.liveness.samples[0]!.ms).toBeCloseTo(351, 0);
    expect(fast.liveness.exceeded).toBe(0);
    // The killed holder's interval ends at the kill: no overlap with b.
    expect(fast.overlaps.pairs).toBe(0);
    const slow = kill(2000);
    expect(slow.liveness.exceeded).toBe(1);
    // Nobody waited for the lock when its holder died: no liveness sample.
    const idle = check(
      h(
        [0, 'runner', params()],
        [10, 'a', { t: 'acquire-start', lock: 'L' }],
        [11, 'a', { t: 'acquired', lock: 'L', fence: '1' }],
        [50, 'runner', { t: 'fault', kind: 'kill', phase: 'begin', target: 'a' }],
        ...cs('b', 3000, '2', 0),
      ),
    );
    expect(idle.liveness.samples).toHaveLength(0);
  });
});

describe('the fenced register', () => {
  it('fences reads too, so a stale write after a newer read is refused', () => {
    const reg = new Register();
    expect(reg.handle({ id: 1, op: 'read', lock: 'L', fence: '5' })).toMatchObject({ ok: true, value: 0 });
    expect(reg.handle({ id: 2, op: 'read', lock: 'L', fence: '6' })).toMatchObject({ ok: true, value: 0 });
    // Holder 5 writes after holder 6 has read: refused, so 6's increment will not be overwritten.
    expect(reg.handle({ id: 3, op: 'write', lock: 'L', fence: '5', value: 1, plain: 1 })).toMatchObject({ ok: false });
    expect(reg.handle({ id: 4, op: 'write', lock: 'L', fence: '6', value: 1, plain: 1 })).toMatchObject({ ok: true });
    expect(reg.cells.get('L')).toMatchObject({ value: 1, acceptedWrites: 1, rejectedWrites: 1, plain: 1, plainWrites: 2 });
    // Fences compare as integers, not strings.
    expect(reg.handle({ id: 5, op: 'read', lock: 'L', fence: '10' })).toMatchObject({ ok: true });
    expect(reg.handle({ id: 6, op: 'read', lock: 'L', fence: '9' })).toMatchObject({ ok: false });
  });
});

describe('torture, short form: holders paused past their TTL and killed', () => {
  const out = mkdtempSync(join(tmpdir(), 'lockdeck-torture-test-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  const cell = (backend: string, seconds: number): Promise<CellResult> =>
    runCell({
      backend, faults: ['pause', 'kill'], seconds, workers: 4, locks: 2, ttlMs: 600, holdMs: 150, intervalMs: 900,
      dir: join(out, backend), say: () => undefined,
    });

  for (const [backend, seconds] of [['sqlite', 7], ['redis', 7], ['zookeeper', 9]] as const) {
    it(`${backend}: 0 lost updates and 0 fence regressions with fencing`, { timeout: 60_000 }, async () => {
      const r = await cell(backend, seconds);
      const x = r.report;
      expect(r.injected.pause ?? 0).toBeGreaterThanOrEqual(1);
      expect(r.injected.kill ?? 0).toBeGreaterThanOrEqual(1);
      expectSafe(x);
      // The register's count of accepted increments agrees with what the workers saw accepted
      // (a killed worker may not have logged its last accepted write).
      expect(x.lostUpdates.acceptedWrites).toBeLessThanOrEqual(x.acquisitions);
    });
  }
});

describe('torture, short form: one lock holder cut off by kernel packet drops (network namespaces)', () => {
  // Runs the CLI, as a user would: it re-executes itself inside a network namespace of its own,
  // puts each worker in another one and drops the current holder's packets with nft
  // (torture/netns.ts). Needs root, ip and nft (CI runs as root): where they are missing the run
  // reports the fault as not run, and this test fails with that reason.
  it('redis × net-partition: injected, 0 lost updates and 0 regressions, holders told, namespaces removed', { timeout: 120_000 }, () => {
    const out = mkdtempSync(join(tmpdir(), 'lockdeck-torture-net-'));
    try {
      const r = spawnSync(
        process.execPath,
        ['--import', 'tsx', 'torture/run.ts', '--backend', 'redis', '--faults', 'net-partition', '--seconds', '10', '--workers', '4', '--ttl', '600', '--out', out],
        { cwd: join(__dirname, '..'), encoding: 'utf8', timeout: 110_000 },
      );
      const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as { results: CellResult[]; notRun: Array<{ why: string }> };
      expect(summary.notRun.map((n) => n.why)).toEqual([]);
      expect(r.status, r.stderr).toBe(0);
      const [cell] = summary.results;
      expect(cell?.netns).toBe(true);
      const x = cell!.report;
      expect(cell!.injected['net-partition'] ?? 0).toBeGreaterThanOrEqual(1);
      expectSafe(x);
      // The cut-off holder learns from its own lease clock, before a successor can be granted.
      expect(x.lossDetection.neverLearned).toBe(0);
      // Someone else got the cut-off holder's lock after each partition.
      const taken = x.liveness.samples.filter((s) => s.kind === 'net-partition');
      expect(taken.length).toBeGreaterThanOrEqual(1);
      for (const s of taken) expect(s.ms).not.toBeNull();
      // Every namespace of the run is gone.
      const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(`ld-t${r.pid}-`));
      expect(left).toEqual([]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
