/**
 * The contention and scheduler views against a real console (`next start`) with a SQLite and a
 * Redis backend: a known workload is driven through lib/ (clients that queue, forced releases, an
 * expiry; two Scheduler instances running a fast job, one occurrence held by the test), and the
 * numbers the console reports must equal the test's own count of what it did.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { createBackend, type BackendConfig } from '../../lib/backends';
import type { LockBackend, LockHandle, RunStoreProvider } from '../../lib/locks/types';
import { Scheduler } from '../../lib/scheduler';
import type { ContentionRanking, LockContention } from '../../lib/console/contention';
import type { SchedulerOverview } from '../../lib/console/scheduler';
import { eventually, openEvents, startConsole, type ConsoleServer } from './harness';

const VW = `vw-${randomBytes(12).toString('hex')}`;
const OP = `op-${randomBytes(12).toString('hex')}`;
const RUN = randomBytes(3).toString('hex');
const PREFIX = `ct${RUN}`;

let server: ConsoleServer;
let dir: string;
const configs: Record<'local' | 'cache', () => BackendConfig> = {
  local: () => ({ id: 'local', type: 'sqlite', path: join(dir, 'locks.db') }),
  cache: () => ({ id: 'cache', type: 'redis', url: inject('redisUrl'), prefix: PREFIX }),
};
const opened: LockBackend[] = [];

function open(id: 'local' | 'cache'): LockBackend & Partial<RunStoreProvider> {
  const b = createBackend(configs[id]());
  opened.push(b);
  return b;
}

async function get<T>(path: string, token = VW): Promise<{ status: number; body: T }> {
  const res = await server.fetch(path, { token });
  return { status: res.status, body: (await res.json()) as T };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Nearest-rank percentile, as the console computes it. */
function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'lockdeck-contention-test-'));
  server = await startConsole({
    config: { backends: [configs.local(), { ...configs.cache(), match: [`${PREFIX}-foreign:*`] }] },
    env: { LOCKDECK_OPERATOR_TOKEN: OP, LOCKDECK_VIEWER_TOKEN: VW, LOCKDECK_RECONCILE_INTERVAL_MS: '500', LOCKDECK_HEARTBEAT_MS: '300' },
  });
}, 600_000);

afterAll(async () => {
  await Promise.allSettled(opened.map((b) => b.close()));
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('event stream', () => {
  it('sends a ping with the server clock every heartbeat', async () => {
    const sse = await openEvents(server, { token: VW });
    try {
      const before = Date.now();
      const ping = await sse.waitFor((e) => e.event === 'ping', 3000);
      const data = ping.data as { now: number; heartbeatMs: number };
      expect(data.heartbeatMs).toBe(300);
      expect(Math.abs(data.now - before)).toBeLessThan(2000);
      const snapshot = await sse.waitFor((e) => e.event === 'snapshot');
      expect((snapshot.data as { heartbeatMs: number }).heartbeatMs).toBe(300);
    } finally {
      sse.close();
    }
  });
});

describe.each(['local', 'cache'] as const)('contention numbers on %s', { timeout: 60_000 }, (id) => {
  it('match the count the test made: acquisitions, waits, forced releases, expiries, attempts, lost holders, wait and hold percentiles', async () => {
    const [a, b, c] = [open(id), open(id), open(id)];
    const inspector = open(id);
    const key = `${PREFIX}-orders/${id}`;
    const waits: number[] = [];
    const holds: number[] = [];
    let acquisitions = 0;
    let contended = 0;
    let released = 0;
    // Client telemetry: tries that found the lock held (a queued acquire counts once, a refused
    // tryAcquire once), and every handle the test took, to count those that were told they lost it.
    let attempts = 0;
    const handles: LockHandle[] = [];

    const take = async (client: LockBackend, opts: { ttlMs?: number; autoRenew?: boolean } = {}) => {
      const t0 = performance.now();
      const h = await client.acquire(key, { ttlMs: opts.ttlMs ?? 10_000, waitMs: 10_000, autoRenew: opts.autoRenew ?? true });
      const waited = performance.now() - t0;
      waits.push(waited);
      acquisitions++;
      handles.push(h);
      return { h, at: performance.now(), waited };
    };
    const hold = async (held: { h: LockHandle; at: number }, ms: number) => {
      await sleep(ms);
      await held.h.release();
      holds.push(performance.now() - held.at);
      released++;
    };

    // Three rounds: A takes it, B and C queue behind; A holds 300 ms, B 200 ms, C 150 ms.
    for (let round = 0; round < 3; round++) {
      const first = await take(a);
      const second = take(b);
      await sleep(40);
      const third = take(c);
      await hold(first, 300);
      const s = await second;
      await hold(s, 200);
      const t = await third;
      await hold(t, 150);
      contended += 2;
      attempts += 2; // B and C both found A holding it and queued
      expect(s.waited).toBeGreaterThan(200);
      expect(t.waited).toBeGreaterThan(350);
    }
    // Two forced releases of a holder that held for 400 ms.
    for (let i = 0; i < 2; i++) {
      const held = await take(a);
      if (i === 0) {
        // A refused try: one more attempt, no acquisition.
        expect(await c.tryAcquire(key, { ttlMs: 1000 })).toBeNull();
        attempts++;
      }
      await sleep(400);
      const r = await inspector.forceRelease(key, { fence: held.h.fence });
      expect(r.status).toBe('released');
      holds.push(performance.now() - held.at);
    }
    // One expiry: a 600 ms lease nobody renews.
    const doomed = await take(a, { ttlMs: 600, autoRenew: false });
    const expiredAt = doomed.at + 600;
    // The two forced holders and the expired one learn that they lost it (each publishes `lost`).
    await eventually(async () => handles.filter((x) => x.signal.aborted).length === 3 || null, 10_000, 'the holders to learn they lost it');
    const lost = handles.filter((x) => x.signal.aborted).length;

    const url = `/api/contention/lock?backend=${id}&key=${encodeURIComponent(key)}&window=15m`;
    let seen: unknown = null;
    const stats = await eventually(
      async () => {
        const r = await get<LockContention>(url);
        seen = r.body;
        return r.status === 200 && r.body.acquisitions === acquisitions && r.body.expired === 1 && r.body.released === released && r.body.attempts === attempts && r.body.lost === lost
          ? r.body
          : null;
      },
      15_000,
      'the console to count the workload',
    ).catch((err: unknown) => {
      // Say which count was off (the figures the console had last), not only that one was.
      const s = seen as Partial<LockContention> | null;
      throw new Error(`${String(err)}; expected acquisitions ${acquisitions}, released ${released}, expired 1, attempts ${attempts}, lost ${lost}; the console had ${JSON.stringify(s && { acquisitions: s.acquisitions, released: s.released, expired: s.expired, attempts: s.attempts, lost: s.lost, forced: s.forced })}`);
    });
    // The expired lease's hold, as the test saw it: from acquisition to the end of the lease.
    holds.push(expiredAt - doomed.at);

    expect(stats).toMatchObject({ backend: id, key, window: '15m', acquisitions: 12, released: 9, forced: 2, expired: 1, attempts: 7, lost: 3 });
    expect({ attempts, lost }).toEqual({ attempts: 7, lost: 3 });
    // The six waits behind another holder count as contended; an uncontended acquisition only
    // could, if its own round trip took the 5 ms threshold (the test saw at least that much then).
    const slowUncontended = waits.filter((w) => w >= 5 && w < 100).length;
    expect(stats.contendedAcquisitions).toBeGreaterThanOrEqual(contended);
    expect(stats.contendedAcquisitions).toBeLessThanOrEqual(contended + slowUncontended);
    expect(acquisitions).toBe(12);
    expect(stats.wait.count).toBe(12); // every taker was a lockdeck client: all reported their wait
    expect(stats.hold.count).toBe(12);
    // Percentiles agree with the test's own measurements (clock reads on both sides differ a little).
    const tol = (mine: number) => Math.max(80, mine * 0.25);
    for (const [name, p] of [['p50', 0.5], ['p95', 0.95]] as const) {
      expect(Math.abs(stats.wait[name]! - pct(waits, p)), `wait ${name}: console ${stats.wait[name]} vs test ${pct(waits, p)}`).toBeLessThan(tol(pct(waits, p)));
    }
    expect(Math.abs(stats.wait.max! - Math.max(...waits))).toBeLessThan(tol(Math.max(...waits)));
    expect(Math.abs(stats.hold.p50! - pct(holds, 0.5)), `hold p50: console ${stats.hold.p50} vs test ${pct(holds, 0.5)}`).toBeLessThan(tol(pct(holds, 0.5)));
    // The expiry is seen when the store sweeps it, a little after the lease ended.
    expect(stats.hold.max!).toBeGreaterThanOrEqual(590);
    expect(stats.hold.max!).toBeLessThan(3000);
    // Two clients queued at once behind A.
    expect(stats.waiters.max).toBe(2);
    expect(stats.series.reduce((n, p) => n + p.acquisitions, 0)).toBe(12);
    expect(stats.series.reduce((n, p) => n + p.forced, 0)).toBe(2);
    expect(stats.series.some((p) => p.waitersMax === 2)).toBe(true);
    expect(stats.wait.histogram.reduce((n, h) => n + h.count, 0)).toBe(12);
    expect(stats.totalWaitMs).toBeGreaterThan(6 * 200);
    expect(stats.contentionMs).toBeGreaterThanOrEqual(stats.totalWaitMs);

    // The ranking: this lock is the most contended one on its backend, with the same counts.
    const calm = `${PREFIX}-calm/${id}`;
    const h = await a.acquire(calm, { ttlMs: 5000, waitMs: 0 });
    await h.release();
    const ranking = await eventually(async () => {
      const r = await get<ContentionRanking>(`/api/contention?window=15m&backend=${id}`);
      // Redis reports the acquisition after reading the lock back, so its release may come first.
      return r.body.locks?.some((l) => l.key === calm && l.acquisitions === 1) ? r.body : null;
    });
    expect(ranking.locks[0]).toMatchObject({ backend: id, key, acquisitions: 12, forced: 2, expired: 1, attempts, lost, contendedAcquisitions: stats.contendedAcquisitions, maxWaiters: 2 });
    expect(ranking.locks.find((l) => l.key === calm)).toMatchObject({ acquisitions: 1, contentionMs: 0, contendedAcquisitions: 0, attempts: 0, lost: 0 });
    expect(ranking.contended).toBeGreaterThanOrEqual(1);
    expect(ranking.locks.every((l) => l.backend === id)).toBe(true);
  });
});

describe('contention API', () => {
  it('validates its parameters (400 in the error shape) and needs credentials', async () => {
    const bad = [
      '/api/contention?window=2h',
      '/api/contention?limit=0',
      '/api/contention?limit=abc',
      '/api/contention?backend=NOPE!',
      '/api/contention?backend=nope',
      '/api/contention?window=1h&window=6h',
      '/api/contention/lock?backend=local',
      '/api/contention/lock?key=x',
      `/api/contention/lock?backend=local&key=${'k'.repeat(513)}`,
      '/api/contention/lock?backend=local&key=a%01b',
      '/api/scheduler?backend=nope',
    ];
    for (const path of bad) {
      const r = await get<{ error: { code: string; message: string } }>(path);
      expect({ path, status: r.status }).toEqual({ path, status: 400 });
      expect(Object.keys(r.body.error).sort()).toEqual(['code', 'message']);
    }
    expect((await get<{ error: { message: string } }>('/api/contention?window=2h')).body.error.message).toMatch(/^window: /);
    for (const path of ['/api/contention', '/api/contention/lock?backend=local&key=x', '/api/scheduler']) {
      expect((await server.fetch(path)).status).toBe(401);
    }
    const quiet = await get<LockContention>(`/api/contention/lock?backend=local&key=${PREFIX}-never-used`);
    expect(quiet.status).toBe(200);
    expect(quiet.body).toMatchObject({ acquisitions: 0, window: '1h', bucketMs: 30_000, wait: { count: 0, p50: null }, waiters: { max: 0 } });
    expect(quiet.body.series.length).toBeGreaterThanOrEqual(120);
  });
});

describe.each(['local', 'cache'] as const)('scheduler view on %s', { timeout: 60_000 }, (id) => {
  it('shows occurrences, who ran and who skipped each, the next occurrence, and a stuck job', async () => {
    const fast = `fast-${RUN}`;
    const held = `held-${RUN}`;
    const log: Array<{ occurrence: number; instance: string }> = [];
    const errors: unknown[] = [];
    const make = (instance: string) =>
      new Scheduler(open(id), { instance, heartbeatMs: 500, onError: (e) => errors.push(e) })
        .add({
          name: fast,
          everyMs: 1000,
          lockAtMostForMs: 800,
          handler: async ({ occurrence }) => {
            log.push({ occurrence: occurrence.getTime(), instance });
            await sleep(30);
          },
        })
        .add({ name: held, everyMs: 1000, lockAtMostForMs: 900, handler: () => undefined });
    const schedulers = [make(`s-a-${id}`), make(`s-b-${id}`)];
    // The test holds one future occurrence lock of `held`: both instances will skip it.
    const blocked = Math.ceil((Date.now() + 1500) / 1000) * 1000;
    const holder = open(id);
    const blocker = await holder.tryAcquire(`job/${held}/${new Date(blocked).toISOString()}`, { ttlMs: 30_000, owner: 'test-holder' });
    expect(blocker).not.toBeNull();
    for (const s of schedulers) s.start();
    // Past the blocked occurrence's window (graceMs = min(900, 1000)), with several fast runs.
    await sleep(Math.max(0, blocked + 900 + 1200 - Date.now()));
    await Promise.all(schedulers.map((s) => s.stop({ timeoutMs: 2000 })));
    expect(errors).toEqual([]);

    const r = await get<SchedulerOverview>(`/api/scheduler?backend=${id}`);
    expect(r.status).toBe(200);
    const view = r.body.backends.find((b) => b.backend === id)!;
    expect(view.registration).toBe(true);
    const job = view.jobs.find((j) => j.name === fast)!;
    expect(job).toMatchObject({ registered: true, schedule: { everyMs: 1000 }, scheduleText: 'every second', lockAtMostForMs: 800, graceMs: 800 });
    // Next occurrence by the server's clock.
    expect(job.next).toBe((Math.floor(r.body.now / 1000) + 1) * 1000);
    // Both instances registered, seen just now.
    expect(job.instances.map((i) => i.instance).sort()).toEqual([`s-a-${id}`, `s-b-${id}`]);
    expect(job.instances.every((i) => i.seenAt !== null && i.alive === true)).toBe(true);
    // Every occurrence the test logged is shown as ran by the instance that logged it, and the
    // other instance's record of it is a skip; no occurrence ran that the test did not log.
    expect(log.length).toBeGreaterThanOrEqual(3);
    const ranBy = new Map(log.map((l) => [l.occurrence, l.instance]));
    expect(ranBy.size).toBe(log.length); // never twice
    const shown = job.occurrences.filter((o) => o.state === 'ran');
    expect(shown.map((o) => o.at).sort()).toEqual([...ranBy.keys()].sort());
    for (const o of job.occurrences) {
      expect(o.ranBy).toBe(ranBy.get(o.at));
      for (const run of o.runs) expect(run.outcome).toBe(run.instance === o.ranBy ? 'ran' : 'skipped');
    }
    const count = (inst: string) => log.filter((l) => l.instance === inst).length;
    for (const i of job.instances) {
      expect(i.ran).toBe(count(i.instance));
      expect(i.skipped).toBe(job.occurrences.filter((o) => o.runs.some((x) => x.instance === i.instance && x.outcome === 'skipped')).length);
    }
    expect(job.lastRun?.at).toBe(Math.max(...ranBy.keys()));
    expect(job.failures).toMatchObject({ recent: 0, consecutive: 0 });
    expect(job.stuck).toEqual([]);

    // The held occurrence: skipped by both, past its window, its lock held by the test: stuck.
    const stuckJob = view.jobs.find((j) => j.name === held)!;
    const blockedOcc = stuckJob.occurrences.find((o) => o.at === blocked)!;
    expect(blockedOcc.state).toBe('skipped');
    expect(blockedOcc.runs.map((x) => [x.instance, x.outcome]).sort()).toEqual([[`s-a-${id}`, 'skipped'], [`s-b-${id}`, 'skipped']]);
    expect(stuckJob.stuck).toEqual([expect.objectContaining({ kind: 'lock-held', occurrence: blocked, holder: 'test-holder', fence: blocker!.fence })]);

    // Released: the occurrence is no longer held, so the job is not stuck any more.
    await blocker!.release();
    const after = await get<SchedulerOverview>(`/api/scheduler?backend=${id}`);
    expect(after.body.backends[0]!.jobs.find((j) => j.name === held)!.stuck).toEqual([]);
  });
});
