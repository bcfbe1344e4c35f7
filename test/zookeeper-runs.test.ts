/**
 * The ZooKeeper run store (lib/backends/zookeeper/runs.ts): records, retention, job registration,
 * concurrent writers, and the inspector never showing run records as locks.
 */
import zookeeper from 'node-zookeeper-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { createBackend } from '../lib/backends';
import { createZooKeeperBackend } from '../lib/backends/zookeeper';
import { runsPathOf } from '../lib/backends/zookeeper/runs';
import { InvalidArgumentError, type JobRegistration, type LockBackend, type LockChange, type RunRecord, type RunStoreProvider } from '../lib/locks';
import { randomId } from '../lib/locks/util';
import { eventually } from './contract';
import { connectRaw, rawCall } from './support/zk-raw';

const uid = () => randomId(4).replace(/[^A-Za-z0-9]/g, 'x');

const rec = (job: string, occurrence: number, instance: string, outcome: RunRecord['outcome'] = 'ran'): RunRecord => ({
  job,
  occurrence,
  instance,
  outcome,
  startedAt: occurrence + 1,
  finishedAt: outcome === 'running' || outcome === 'skipped' ? null : occurrence + 2,
  fence: outcome === 'skipped' ? null : '7',
});

const reg = (name: string, instance: string, seenAt: number, lockAtMostForMs = 1000): JobRegistration => ({
  name,
  schedule: { everyMs: 1000 },
  lockAtMostForMs,
  lockAtLeastForMs: 0,
  graceMs: 1000,
  missed: 'run-latest',
  instance,
  seenAt,
  heartbeatMs: 60_000,
});

describe('ZooKeeper run store', { timeout: 60_000 }, () => {
  const top = `/zkruns-${uid()}`;
  const root = `${top}/locks`;
  let connect: string;
  let zk: LockBackend & RunStoreProvider;
  let raw: zookeeper.Client;

  const children = (path: string) => rawCall<string[]>((cb) => raw.getChildren(path, cb));

  beforeAll(async () => {
    connect = inject('zookeeperConnect');
    zk = createZooKeeperBackend({ id: 'zk-runs', type: 'zookeeper', connect, roots: [root] });
    raw = await connectRaw(connect);
  });

  afterAll(async () => {
    await zk?.close();
    raw?.close();
  });

  it('lives beside the first root, never under it', () => {
    expect(runsPathOf('/locks')).toBe('/lockdeck-runs/locks');
    expect(runsPathOf('/app/locks')).toBe('/app/lockdeck-runs/locks');
    expect(runsPathOf('/')).toBe('/lockdeck-runs/%2F');
    expect(runsPathOf('/a.b')).toBe('/lockdeck-runs/a%2Eb');
  });

  it('writes, replaces and reads records; lists jobs; names of any kind', async () => {
    const runs = zk.runStore();
    const job = 'odd/name: v1.0 ..';
    await runs.put(rec(job, 1_700_000_000_000, 'host:1', 'running'));
    await runs.put(rec(job, 1_700_000_000_000, 'host:2', 'skipped'));
    await runs.put(rec(job, 1_700_000_000_000, 'host:1', 'ran')); // replaces
    await runs.put(rec(job, 1_700_000_001_000, 'host:2', 'ran'));
    await runs.put(rec('other', 1_700_000_000_500, '..', 'failed'));

    expect(await runs.occurrence(job, 1_700_000_000_000)).toEqual([rec(job, 1_700_000_000_000, 'host:1', 'ran'), rec(job, 1_700_000_000_000, 'host:2', 'skipped')]);
    expect(await runs.occurrence(job, 1_600_000_000_000)).toEqual([]);
    expect(await runs.occurrence('nobody', 1)).toEqual([]);
    expect(await runs.jobs()).toEqual(['odd/name: v1.0 ..', 'other']);
    const recent = await runs.recent();
    expect(recent.map((r) => [r.job, r.occurrence, r.instance])).toEqual([
      [job, 1_700_000_001_000, 'host:2'],
      ['other', 1_700_000_000_500, '..'],
      [job, 1_700_000_000_000, 'host:1'],
      [job, 1_700_000_000_000, 'host:2'],
    ]);
    expect((await runs.recent({ job, limit: 1 })).map((r) => r.occurrence)).toEqual([1_700_000_001_000]);
    // Occurrence nodes are zero-padded epoch ms under the job's node.
    const jobs = await children(runsPathOf(root));
    expect(jobs.sort()).toEqual(['odd%2Fname%3A%20v1%2E0%20%2E%2E', 'other']);
    expect((await children(`${runsPathOf(root)}/other`))).toEqual(['0001700000000500']);
  });

  it('keeps the newest `retain` occurrences per job and deletes the older subtrees', async () => {
    const runs = zk.runStore({ retain: 3 });
    const job = `ret-${uid()}`;
    for (let i = 1; i <= 6; i++) {
      await runs.put(rec(job, i * 1000, 'a'));
      await runs.put(rec(job, i * 1000, 'b', 'skipped'));
    }
    expect([...new Set((await runs.recent({ job, limit: 100 })).map((r) => r.occurrence))]).toEqual([6000, 5000, 4000]);
    expect((await children(`${runsPathOf(root)}/${job}`)).sort()).toEqual(['0000000000004000', '0000000000005000', '0000000000006000']);
    expect(await runs.occurrence(job, 1000)).toEqual([]);
    expect(() => zk.runStore({ retain: 0 })).toThrow(InvalidArgumentError);
  });

  it("deletes a pruned occurrence's empty lock parent (persistent nodes would pile up), never a held one", async () => {
    const runs = zk.runStore({ retain: 2 });
    const job = `occ-${uid()}`;
    const lockOf = (t: number) => `job/${job}/${new Date(t).toISOString()}`;
    // Occurrence 1000's lock was taken and released (empty parent); 2000's is still held.
    await (await zk.acquire(lockOf(1000)))!.release();
    const held = await zk.acquire(lockOf(2000));
    for (const t of [1000, 2000, 3000, 4000]) await runs.put(rec(job, t, 'a'));
    const parents = await children(`${root}/job/${job}`);
    expect(parents).not.toContain(new Date(1000).toISOString());
    expect(parents).toContain(new Date(2000).toISOString());
    await held.release();
  });

  it('survives concurrent writers and pruners on one job (separate sessions)', async () => {
    const other = createZooKeeperBackend({ id: 'zk-runs-2', type: 'zookeeper', connect, roots: [root] });
    try {
      const job = `race-${uid()}`;
      const stores = [zk.runStore({ retain: 4 }), other.runStore({ retain: 4 })];
      const writes: Promise<void>[] = [];
      for (let occ = 1; occ <= 12; occ++) {
        for (const inst of ['a', 'b', 'c']) writes.push(stores[(occ + inst.charCodeAt(0)) % 2]!.put(rec(job, occ * 100, inst, inst === 'a' ? 'ran' : 'skipped')));
      }
      await Promise.all(writes);
      // One more write settles the retention after the racing prunes.
      await stores[0]!.put(rec(job, 1300, 'a'));
      const occs = [...new Set((await stores[1]!.recent({ job, limit: 100 })).map((r) => r.occurrence))];
      expect(occs).toEqual([1300, 1200, 1100, 1000]);
      expect((await stores[1]!.occurrence(job, 1200)).map((r) => r.instance)).toEqual(['a', 'b', 'c']);
      // Concurrent announcements of one job by many instances all land (version-checked writes).
      await Promise.all(['i1', 'i2', 'i3', 'i4', 'i5', 'i6'].map((i, n) => stores[n % 2]!.putJob!(reg(job, i, 10_000 + n))));
      const info = (await stores[0]!.listJobs!()).find((j) => j.name === job)!;
      expect(info.instances.map((i) => i.instance)).toEqual(['i6', 'i5', 'i4', 'i3', 'i2', 'i1']);
    } finally {
      await other.close();
    }
  });

  it('registers jobs: newest definition wins, seenAt only grows, week-old instances are dropped', async () => {
    const runs = zk.runStore();
    const name = `reg-${uid()}`;
    const week = 7 * 24 * 3600_000;
    const t = 1_800_000_000_000;
    await runs.putJob!(reg(name, 'old', t - week - 1));
    await runs.putJob!(reg(name, 'a', t, 1000));
    await runs.putJob!(reg(name, 'b', t + 10, 2000));
    await runs.putJob!(reg(name, 'a', t - 5, 3000)); // a late, older announcement
    let info = (await runs.listJobs!()).find((j) => j.name === name)!;
    expect(info).toEqual({
      name,
      schedule: { everyMs: 1000 },
      lockAtMostForMs: 2000,
      lockAtLeastForMs: 0,
      graceMs: 1000,
      missed: 'run-latest',
      heartbeatMs: 60_000,
      updatedAt: t + 10,
      instances: [
        { instance: 'b', seenAt: t + 10 },
        { instance: 'a', seenAt: t },
      ],
    });
    // A job with a registration but no records is not among jobs(); one with records and no
    // registration is not among listJobs().
    expect(await runs.jobs()).not.toContain(name);
    await runs.put(rec(`norec-${name}`, 5, 'x'));
    expect((await runs.listJobs!()).map((j) => j.name)).not.toContain(`norec-${name}`);
    await runs.putJob!(reg(name, 'c', t + week + 5));
    info = (await runs.listJobs!()).find((j) => j.name === name)!;
    expect(info.instances.map((i) => i.instance)).toEqual(['c', 'b']);
    expect((await runs.listJobs!()).map((j) => j.name)).toEqual([...(await runs.listJobs!()).map((j) => j.name)].sort());
  });

  it('the inspector never lists, watches or touches run records, even under a root', async () => {
    // The store of `root` is `<top>/lockdeck-runs/locks`; a backend whose roots include `<top>`
    // walks over it. Names that read as lock contenders must still not show up as locks.
    const job = 'report-lock-0000000001';
    const runs = zk.runStore();
    const inspector = createBackend({ id: 'zk-runs-inspect', type: 'zookeeper', connect, roots: [top] });
    const lock = `${root}/job/report/1970-01-01T00:00:01.000Z`;
    const events: LockChange[] = [];
    const stop = inspector.watch((c) => events.push(c));
    try {
      // The watch reads the tree in the background and reports nothing it finds on that first
      // read: a lock taken before it got there would be part of it, not a change (this raced
      // once in a fresh-clone CI run under the full suite's load). So first take and give back
      // a probe lock until the watch reports it.
      await eventually(
        async () => {
          await (await zk.acquire('job/probe', { ttlMs: 5000 })).release();
          await new Promise((r) => setTimeout(r, 100));
          return events.some((e) => e.key.endsWith('/job/probe'));
        },
        15_000,
        'the inspector watch live',
      );
      await eventually(async () => events.some((e) => e.type === 'released' && e.key.endsWith('/job/probe')), 5000, 'the probe released');
      events.length = 0;
      await runs.put(rec(job, 1000, 'i-lock-0000000002', 'running'));
      await runs.putJob!(reg(job, 'i-lock-0000000002', 1000));
      const h = await zk.acquire('job/report/1970-01-01T00:00:01.000Z', { ttlMs: 5000 });
      try {
        // Present in the store...
        expect(await children(`${top}/lockdeck-runs/locks/${job}`)).toEqual(['0000000000001000']);
        const locks = await inspector.list();
        expect(locks.map((l) => l.key)).toEqual([lock]);
        expect(await inspector.list({ q: 'lockdeck-runs' })).toEqual([]);
        await new Promise((r) => setTimeout(r, 500));
        await runs.put(rec(job, 1000, 'i-lock-0000000002', 'ran'));
        await runs.put(rec(job, 2000, 'i-lock-0000000003', 'running'));
        await new Promise((r) => setTimeout(r, 500));
        expect(events.filter((e) => e.key.includes('lockdeck-runs'))).toEqual([]);
        expect(events.map((e) => [e.type, e.key])).toEqual([['acquired', lock]]);
      } finally {
        await h.release();
      }
      // ...and out of reach of the lock paths.
      await expect(inspector.get(`${top}/lockdeck-runs/locks/${job}/0000000000001000`)).rejects.toThrow(InvalidArgumentError);
      await expect(inspector.forceRelease(`${top}/lockdeck-runs/locks/${job}`)).rejects.toThrow(InvalidArgumentError);
      await expect(zk.tryAcquire('lockdeck-runs/x', { ttlMs: 1000 })).rejects.toThrow(InvalidArgumentError);
      expect((await runs.occurrence(job, 1000)).map((r) => r.outcome)).toEqual(['ran']);
    } finally {
      stop();
      await inspector.close();
    }
  });

  it('refuses bad occurrences and fails with BackendUnavailableError once closed', async () => {
    const b = createZooKeeperBackend({ id: 'zk-runs-closed', type: 'zookeeper', connect, roots: [root] });
    const runs = b.runStore();
    await b.ping(); // (closing a client still in its handshake upsets node-zookeeper-client)
    await expect(runs.put(rec('x', -1, 'a'))).rejects.toThrow(InvalidArgumentError);
    await expect(runs.put(rec('x', 1.5, 'a'))).rejects.toThrow(InvalidArgumentError);
    await b.close();
    await expect(runs.recent()).rejects.toThrow(/closed/);
  });
});
