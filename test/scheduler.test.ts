/**
 * Several scheduler instances in separate processes, on each backend: every occurrence runs
 * exactly once (counted by an independent log the handlers append to), skips are recorded, a
 * killed instance's occurrence runs again after lockAtMostForMs, and lockAtLeastForMs holds.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, inject, it } from 'vitest';

import { createBackend, type BackendConfig } from '../lib/backends';
import type { RunRecord } from '../lib/locks';
import { randomId } from '../lib/locks/util';
import { Scheduler } from '../lib/scheduler';
import { eventually } from './contract';

const FIXTURE = join(__dirname, 'fixtures', 'scheduler-instance.ts');
const dir = mkdtempSync(join(tmpdir(), 'lockdeck-scheduler-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function startInstance(args: object): Promise<ChildProcess> {
  const child = fork(FIXTURE, [JSON.stringify(args)], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', () => resolve(child));
    child.once('exit', (code) => reject(new Error(`instance exited early with ${code}`)));
  });
}

function stopInstance(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

function readLog(path: string): { occurrence: number; instance: string; fence: string }[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [occurrence, instance, fence] = l.split(' ');
      return { occurrence: Number(occurrence), instance: instance!, fence: fence! };
    });
}

/**
 * Timing of the killed-instance test. On ZooKeeper a lock is bound to its holder's session, not to
 * a lease in the store: a SIGKILLed holder's node stays until the server expires its session (the
 * backend asks for 10 s), so the occurrence runs again after lockAtMostForMs *or the session
 * timeout, whichever is later*, and only if one of the scheduler's three re-checks (every
 * lockAtMostForMs) falls after that. So there lockAtMostForMs is 4.5 s (re-checks at ~4.5, 9 and
 * 13.5 s) and the re-run is awaited for 18 s.
 */
interface CrashTiming {
  lockAtMostForMs: number;
  rerunWithinMs: number;
}
const LEASE_TIMING: CrashTiming = { lockAtMostForMs: 700, rerunWithinMs: 5000 };
const SESSION_TIMING: CrashTiming = { lockAtMostForMs: 4500, rerunWithinMs: 18_000 };

const backends: [string, () => BackendConfig, CrashTiming][] = [
  ['sqlite', () => ({ id: 'sched', type: 'sqlite', path: join(dir, `locks-${randomId(4)}.db`) }), LEASE_TIMING],
  ['redis', () => ({ id: 'sched', type: 'redis', url: inject('redisUrl'), prefix: `sched${randomId(4).replace(/[^A-Za-z0-9]/g, '')}` }), LEASE_TIMING],
  ['zookeeper', () => ({ id: 'sched', type: 'zookeeper', connect: inject('zookeeperConnect'), roots: [`/sched-${randomId(4).replace(/[^A-Za-z0-9]/g, '')}`] }), SESSION_TIMING],
];

describe.each(backends)('scheduler on %s', { timeout: 60_000 }, (_name, makeConfig, crash) => {
  it('runs every occurrence exactly once across three instances and records the skips', async () => {
    const backend = makeConfig();
    const log = join(dir, `log-${randomId(4)}`);
    writeFileSync(log, '');
    const job = { name: 'report', everyMs: 250, lockAtMostForMs: 2000, workMs: 20 };
    const instances = await Promise.all(['a', 'b', 'c'].map((instance) => startInstance({ backend, instance, log, job })));
    const allRunning = Date.now();
    await new Promise((r) => setTimeout(r, 3000));
    await Promise.all(instances.map(stopInstance));

    const runs = readLog(log);
    const occurrences = runs.map((r) => r.occurrence);
    expect(new Set(occurrences).size).toBe(occurrences.length); // no occurrence ran twice
    expect(runs.length).toBeGreaterThanOrEqual(8);
    // No gaps between the first and last occurrence that ran.
    const sorted = [...occurrences].sort((x, y) => x - y);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]! - sorted[i - 1]!).toBe(job.everyMs);

    const b = createBackend(backend);
    try {
      const records = await b.runStore!().recent({ job: 'report', limit: 1000 });
      const ran = records.filter((r) => r.outcome === 'ran');
      expect(ran.map((r) => r.occurrence).sort()).toEqual([...occurrences].sort());
      // Every occurrence that ran was skipped by the two other instances (whichever got there).
      const skipped = records.filter((r) => r.outcome === 'skipped');
      expect(skipped.length).toBeGreaterThanOrEqual(ran.length);
      // Every occurrence that all three were scheduling (not one before the last started, nor the
      // last one, while they were stopping) was skipped by another instance.
      const last = Math.max(...occurrences);
      for (const r of ran.filter((x) => x.occurrence > allRunning && x.occurrence !== last)) {
        expect(records.filter((s) => s.occurrence === r.occurrence && s.outcome === 'skipped').length).toBeGreaterThanOrEqual(1);
      }
    } finally {
      await b.close();
    }
  });

  it("runs a killed instance's occurrence again after lockAtMostForMs", async () => {
    const backend = makeConfig();
    const log = join(dir, `log-${randomId(4)}`);
    writeFileSync(log, '');
    const base = { name: 'crashy', everyMs: 1500, lockAtMostForMs: crash.lockAtMostForMs };
    const [hanging, healthy] = await Promise.all([
      startInstance({ backend, instance: 'doomed', log, job: { ...base, hang: true } }),
      startInstance({ backend, instance: 'healthy', log, job: base }),
    ]);
    const bothRunning = Date.now();
    try {
      // Wait until the hanging instance wins an occurrence both were scheduling, then kill it mid-run.
      let victim: number | undefined;
      await eventually(() => {
        victim = readLog(log).find((r) => r.instance === 'doomed' && r.occurrence > bothRunning)?.occurrence;
        return victim !== undefined;
      }, 30_000, 'the doomed instance to win an occurrence');
      hanging.kill('SIGKILL');
      await eventually(() => readLog(log).some((r) => r.occurrence === victim && r.instance === 'healthy'), crash.rerunWithinMs, 'the occurrence to run again');
      const b = createBackend(backend);
      try {
        let records: RunRecord[] = [];
        await eventually(async () => {
          records = await b.runStore!().occurrence('crashy', victim!);
          return records.some((r) => r.instance === 'healthy' && r.outcome === 'ran');
        }, 3000, 'the re-run to be recorded');
        const rerun = records.find((r) => r.instance === 'healthy' && r.outcome === 'ran')!;
        expect(rerun.startedAt! - victim!).toBeGreaterThanOrEqual(base.lockAtMostForMs);
        expect(records.find((r) => r.instance === 'doomed')?.outcome).toBe('running');
      } finally {
        await b.close();
      }
    } finally {
      hanging.kill('SIGKILL');
      await stopInstance(healthy);
    }
  });

  it('keeps the occurrence lock for lockAtLeastForMs after a fast run', async () => {
    const config = makeConfig();
    const backend = createBackend(config);
    const probe = createBackend(config);
    const fast = new Scheduler(backend, { instance: 'solo' });
    let ranAt: { occurrence: Date; at: number } | undefined;
    fast.add({
      name: 'cooldown',
      everyMs: 400,
      lockAtMostForMs: 5000,
      lockAtLeastForMs: 800,
      handler: ({ occurrence }) => void (ranAt ??= { occurrence, at: Date.now() }),
    });
    fast.start();
    try {
      await eventually(() => ranAt !== undefined, 3000, 'a run');
      const name = `job/cooldown/${ranAt!.occurrence.toISOString()}`;
      await new Promise((r) => setTimeout(r, 300));
      expect(await probe.tryAcquire(name, { ttlMs: 1000 })).toBeNull(); // still held ~300 ms after a ~0 ms run
      await eventually(async () => {
        const h = await probe.tryAcquire(name, { ttlMs: 1000 });
        await h?.release();
        return h !== null;
      }, 3000, 'the lock to be released');
      expect(Date.now() - ranAt!.at).toBeGreaterThanOrEqual(750);
    } finally {
      await fast.stop();
      await backend.close();
      await probe.close();
    }
  });
});

describe('scheduler configuration', () => {
  it('refuses bad job specs with the field named', async () => {
    const backend = createBackend({ id: 's', type: 'sqlite', path: join(dir, 'spec.db') });
    const s = new Scheduler(backend);
    const handler = () => undefined;
    expect(() => s.add({ name: 'x', lockAtMostForMs: 1000, handler })).toThrow(/exactly one of cron or everyMs/);
    expect(() => s.add({ name: 'x', cron: 'not a cron', lockAtMostForMs: 1000, handler })).toThrow(/cron/);
    expect(() => s.add({ name: 'x', everyMs: 1000, lockAtMostForMs: 1000, lockAtLeastForMs: 2000, handler })).toThrow(/lockAtLeastForMs/);
    expect(() => s.add({ name: 'a/b', everyMs: 1000, lockAtMostForMs: 1000, handler })).toThrow(/job name/);
    s.add({ name: 'nightly', cron: '0 3 * * *', lockAtMostForMs: 60_000, handler });
    expect(new Date(s.nextOccurrence('nightly', Date.UTC(2026, 0, 1, 12))).toISOString()).toBe('2026-01-02T03:00:00.000Z');
    await backend.close();
  });
});
