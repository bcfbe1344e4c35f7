/**
 * Scale section (issue 10: "10,000 locks per backend: /api/locks answers ... the server's memory
 * stays bounded"), for the backends bench/console-scale.ts does not drive through the console:
 * ZooKeeper, etcd and DynamoDB (dynalite). One backend at a time, each on a throwaway server
 * started here and pinned like the other sections' servers:
 *
 *  - 10,000 locks taken (64 tryAcquire in flight, ttl 600 s, autoRenew false) by a seeding backend
 *    instance and held until the end (released by that instance's close(), which releases every
 *    held handle); a second instance, with a session of its own, lists them;
 *  - ours: `list({ limit: N + 1 })` of everything (one more than seeded, so a listing that returned
 *    extra entries, warnings say, would show);
 *  - baseline: the same data read raw with the same client library, on a connection of its own,
 *    doing the least a listing of that layout needs:
 *      ZooKeeper  node-zookeeper-client: getChildren of the parent dir, then for every lock dir a
 *                 getChildren and a getData of its lowest-sequence child (the holder), pipelined
 *                 in chunks of 256 (as list() reads its directories in waves of 256);
 *      etcd       etcd3 `getAll().prefix(p)`: one Range over the prefix, keys and values;
 *      etcd, a lease per lock  (a fifth as many locks, written as the etcd3 npm Lock does: an
 *                 empty value on a lease of its own) one Range + a LeaseTimeToLive per lease;
 *      DynamoDB   @aws-sdk/client-dynamodb: a paged consistent Scan of the whole table, until
 *                 LastEvaluatedKey is undefined (list() scans consistently too);
 *    both sides in R interleaved rounds (order alternating per round, one untimed warm-up round
 *    first); the ratio is the median of per-round ratios, with their spread;
 *  - the count found, every round, on both sides: anything but N distinct seeded keys is a FAIL row;
 *  - the console (viaConsole): the same locks through `/api/locks` of a `next start` configured
 *    with that backend alone, against list() in this process (≤ 2×, complete, no errors), and the
 *    console's memory over the calls (bounded), and the locks page in Chromium (first rows,
 *    whole list, scrolling), as console-scale.ts measures Redis and SQLite;
 *  - heap: this process's V8 heap after a forced GC, after the warm-up listing (which builds any
 *    per-lock state a backend keeps, e.g. DynamoDB's sightings) and again after the R timed
 *    listings. "Bounded" = repeated listings leave nothing behind (ratio ≈ 1). The seeded handles
 *    live in this heap too, so the absolute figure is not the inspector's alone; RSS is in the note
 *    (it only ever grows in steps, so it says less).
 *
 * The listing figures are info: the issue sets no target for them. perf-reliability-anchors D3
 * asks ZooKeeper for ≤ 1.2× raw getChildren; list() is ~1.5× the raw reads here because it reads
 * each child's stat (getData) before descending into it — one request per lock parent more than a
 * reader that already knows every child is a Curator lock parent. That read is how list() tells a
 * lock parent from a plain ephemeral lock, and its child count is the guard that keeps a directory
 * over `maxChildren` from being read at all; reading children with getChildren2 instead would
 * save the request for Curator layouts, cost one for plain ephemeral locks and drop the guard.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { ScanCommand } from '@aws-sdk/client-dynamodb';
import { Etcd3 } from 'etcd3';
import zookeeper from 'node-zookeeper-client';

import { createDynamoDbBackend, createLockTable, makeDynamoDbClient } from '../lib/backends/dynamodb/index';
import { createEtcdBackend } from '../lib/backends/etcd/index';
import { createZooKeeperBackend } from '../lib/backends/zookeeper/index';
import type { BackendConfig } from '../lib/backends/config';
import type { LockBackend, LockHandle } from '../lib/locks/types';
import { startDynalite } from '../scripts/dynalite-server';
import { startEtcd } from '../scripts/etcd-server';
import { startZooKeeper, type RunningServer } from '../scripts/servers';
import { consoleContext, launchBrowser, measureLoads, scrollWithFloor, type PageLoad, type ScrollFigures } from './lib/browser';
import { startBenchConsole, type BenchConsole } from './lib/console';
import { packageVersion, scaled, type BenchContext } from './lib/context';
import { pin, treeRssMiB } from './lib/machine';
import { atMost, ms, type Row, type Verdict } from './lib/report';
import { nowMs, pairedRatio, summarize, withTimeout } from './lib/stats';

const S = 'scale';
const TTL_MS = 600_000;
const SEED_PARALLEL = 64;
/** BENCH_SCALE_CONSOLE=0 skips the console part (viaConsole). */
const CONSOLE = process.env.BENCH_SCALE_CONSOLE !== '0';
/** Console RSS readings per backend (viaConsole): the timed listings' and then untimed ones. */
const RSS_READINGS = Number(process.env.BENCH_SCALE_RSS_READINGS ?? 36);
/** BENCH_SCALE_BROWSER=0 leaves the browser figures out of the console part (browserFigures). */
const BROWSER = process.env.BENCH_SCALE_BROWSER !== '0';
/** Requests a raw baseline keeps in flight (ZooKeeper's list() reads directories in waves of 256, etcd's describes 256 leases at a time). */
const IN_FLIGHT = 256;
const REGION = 'us-east-1';
const TABLE = 'scale-locks';

/** What one backend's run needs: the two backend instances, the raw read, and how to stop. */
interface Setup {
  name: string;
  lister: LockBackend;
  /** Takes the N locks with tryAcquire and holds them (released by its close()); or `seed`. */
  seeder?: LockBackend;
  /** Writes the N locks itself, in a foreign client's layout, instead of a seeder. */
  seed?(n: number): Promise<void>;
  /** How many locks this backend is listed with (default: the section's N). */
  locks?(n: number): number;
  /** Lock name of seed `i`. */
  lockName(i: number): string;
  /** The raw read of everything; returns the seeded keys it found. */
  raw(): Promise<string[]>;
  rawLabel: string;
  rounds: number;
  target: { text: string; limit: number } | null;
  /** The lister's config, for the console part (the console connects its own backend from it). */
  config: BackendConfig;
  /** etcd only: perf-reliability-anchors D4, a first page against a single-key Range (firstPage()). */
  firstPage?: FirstPage;
  /** Closes the raw client and stops the server (after both backends are closed). */
  stop(): Promise<void>;
}

/** Heap after a full GC, or null where no GC can be forced. */
function gcFn(): (() => void) | null {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return g;
  try {
    // The bench runs without --expose-gc; the flag set at run time exposes gc to new contexts.
    setFlagsFromString('--expose-gc');
    const fn: unknown = runInNewContext('gc');
    return typeof fn === 'function' ? (fn as () => void) : null;
  } catch {
    return null;
  }
}

const MiB = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;

const shard = (i: number) => `shard-${String(i).padStart(5, '0')}`;
/** The seeded shard names among `keys` (distinct), whatever prefix a backend puts before them. */
function seededFound(keys: readonly string[]): number {
  const set = new Set<string>();
  for (const k of keys) {
    const m = /shard-\d{5}$/.exec(k);
    if (m) set.add(m[0]);
  }
  return set.size;
}

export async function scaleSection(ctx: BenchContext): Promise<void> {
  const N = scaled(ctx, 10_000, 500);
  const gc = gcFn();
  const details: Record<string, unknown> = { locks: N, gcForced: gc !== null };
  ctx.details.scale = details;
  for (const start of [zookeeperSetup, etcdSetup, etcdOwnLeasesSetup, dynamodbSetup]) {
    const setup = await start(ctx);
    try {
      details[setup.name] = await runOne(ctx, setup, setup.locks?.(N) ?? N, gc);
    } finally {
      await Promise.allSettled([setup.lister.close(), setup.seeder?.close()]);
      await setup.stop();
    }
  }
}

async function runOne(ctx: BenchContext, b: Setup, N: number, gc: (() => void) | null): Promise<Record<string, unknown>> {
  const B = b.name;
  // ---------------------------------------------------------------- seed N held locks
  const t0 = nowMs();
  const handles: LockHandle[] = [];
  let next = 0;
  const seeder = b.seeder;
  if (b.seed) await withTimeout(b.seed(N), 180_000, `${B}: seeding ${N} locks`);
  else if (seeder) await withTimeout(
    Promise.all(
      Array.from({ length: SEED_PARALLEL }, async () => {
        while (next < N) {
          const name = b.lockName(next++);
          const h = await seeder.tryAcquire(name, { ttlMs: TTL_MS, autoRenew: false });
          if (!h) throw new Error(`${B}: ${name} unexpectedly held while seeding`);
          handles.push(h);
        }
      }),
    ),
    180_000,
    `${B}: seeding ${N} locks`,
  );
  const seedMs = nowMs() - t0;
  ctx.log(`scale/${B}: seeded ${N} held locks in ${(seedMs / 1000).toFixed(1)} s`);

  // ---------------------------------------------------------------- list() vs raw read, in rounds
  const heap = () => {
    gc?.();
    return process.memoryUsage();
  };
  let rssPeak = process.memoryUsage().rss;
  const ours: number[] = [];
  const raws: number[] = [];
  const oursFound: number[] = [];
  const oursLen: number[] = [];
  const rawFound: number[] = [];
  const timeList = async () => {
    const a = nowMs();
    const l = await b.lister.list({ limit: N + 1 });
    const t = nowMs() - a;
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    return { t, len: l.length, found: seededFound(l.map((x) => x.key)) };
  };
  const timeRaw = async () => {
    const a = nowMs();
    const keys = await b.raw();
    const t = nowMs() - a;
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    return { t, found: seededFound(keys) };
  };
  const memSeeded = heap();
  let memWarm = memSeeded;
  for (let r = -1; r < b.rounds; r++) {
    // Alternate who goes first, so a drift in the box's load falls on both sides alike.
    let l: Awaited<ReturnType<typeof timeList>>;
    let w: Awaited<ReturnType<typeof timeRaw>>;
    if (r % 2 === 0) {
      l = await timeList();
      w = await timeRaw();
    } else {
      w = await timeRaw();
      l = await timeList();
    }
    oursLen.push(l.len);
    oursFound.push(l.found);
    rawFound.push(w.found);
    if (r === -1) {
      memWarm = heap();
      continue;
    }
    ours.push(l.t);
    raws.push(w.t);
    ctx.log(`scale/${B}: round ${r + 1}/${b.rounds}: list() ${ms(l.t)} (${l.len}), raw ${ms(w.t)} (${w.found})`);
  }
  const memAfter = heap();

  const o = summarize(ours);
  const w = summarize(raws);
  const ratio = pairedRatio(ours, raws);
  const complete = oursFound.every((x) => x === N) && oursLen.every((x) => x === N) && rawFound.every((x) => x === N);
  const nFmt = N.toLocaleString('en-US');
  const rawLbl = `${b.rawLabel} p50 ${ms(w.p50)}`;
  const verdict: Verdict = !complete ? 'FAIL' : b.target ? atMost(ratio.median, b.target.limit) : 'info';
  const heapRatio = memAfter.heapUsed / memWarm.heapUsed;
  const rows: Row[] = [
    {
      section: S, figure: `${B}: list() of ${nFmt} held locks p50`, value: o.p50, unit: 'ms', baseline: rawLbl,
      ratio: ratio.median, ratioSpread: [ratio.min, ratio.max], target: b.target?.text ?? '—', verdict,
      note: `${b.rounds} interleaved rounds after 1 warm-up; list() min ${ms(o.min)}, max ${ms(o.max)}; raw min ${ms(w.min)}, max ${ms(w.max)}` +
        (complete ? '' : '; INCOMPLETE listing, see the next row'),
    },
    {
      section: S, figure: `${B}: locks found by list() (of ${nFmt} held)`, value: Math.min(...oursFound), unit: 'locks',
      baseline: `raw read found ${Math.min(...rawFound)}`, ratio: null, target: `= ${nFmt}`, verdict: complete ? 'pass' : 'FAIL',
      note: `every round, warm-up included: list() entries ${[...new Set(oursLen)].join('/')}, seeded keys in them ${[...new Set(oursFound)].join('/')}; raw ${[...new Set(rawFound)].join('/')}`,
    },
    {
      section: S, figure: `${B}: heap after ${b.rounds} more listings`, value: MiB(memAfter.heapUsed), unit: 'MiB',
      baseline: `after the 1st listing ${MiB(memWarm.heapUsed)} MiB`, ratio: gc ? heapRatio : null, target: '—', verdict: gc ? 'info' : 'skip',
      note: gc
        ? `V8 heapUsed after a forced GC, bench process (holds the ${nFmt} seeded handles too); after seeding ${MiB(memSeeded.heapUsed)} MiB, ` +
          `so the first listing kept ${(MiB(memWarm.heapUsed) - MiB(memSeeded.heapUsed)).toFixed(1)} MiB; RSS ${MiB(memSeeded.rss)} → ${MiB(memAfter.rss)} MiB, peak ${MiB(Math.max(rssPeak, memAfter.rss))} MiB`
        : 'skipped: no GC could be forced (heap readings without one swing by a listing or two)',
    },
  ];
  ctx.rows.push(...rows);
  const firstPageFigures = b.firstPage ? await firstPage(ctx, b.name, b.firstPage, N) : null;
  const consoleFigures = CONSOLE ? await viaConsole(ctx, b, N) : null;

  // ---------------------------------------------------------------- release everything
  const c0 = nowMs();
  if (seeder) await withTimeout(seeder.close(), 120_000, `${B}: closing the seeding backend (releases ${N} locks)`);
  ctx.log(`scale/${B}: list() p50 ${ms(o.p50)} vs raw ${ms(w.p50)} (${ratio.median.toFixed(2)}×); released ${N} locks by close() in ${((nowMs() - c0) / 1000).toFixed(1)} s`);
  return {
    seedMs, list: o, raw: w, ratio, perRoundList: ours, perRoundRaw: raws, found: { list: oursFound, listEntries: oursLen, raw: rawFound },
    heapMiB: { afterSeeding: MiB(memSeeded.heapUsed), afterFirstListing: MiB(memWarm.heapUsed), afterRounds: MiB(memAfter.heapUsed) },
    rssMiB: { afterSeeding: MiB(memSeeded.rss), afterRounds: MiB(memAfter.rss), peak: MiB(Math.max(rssPeak, memAfter.rss)) },
    firstPage: firstPageFigures,
    console: consoleFigures,
  };
}

interface FirstPage {
  /** list({ limit: size }). */
  ours(): Promise<unknown>;
  /** A linearizable Range of one key (the lock keys' read consistency). */
  single(): Promise<unknown>;
  /** A linearizable Range over the prefix with limit = size, keys and values: the least a first page reads. */
  rawPage(): Promise<unknown>;
  /** countKeys(): a count_only Range over the prefix. */
  count(): Promise<unknown>;
  size: number;
}

/**
 * perf-reliability-anchors D4: "etcd: first page (100) ≤ 2× a single-key Range; counts via
 * count_only", over the N held locks. Each of the four calls 40 times per round (after a warm-up
 * round), rounds interleaved; ratios are medians of per-round p50 ratios. The raw Range of the
 * first 100 keys is printed beside it: on etcd 3.4 a Range with a limit still walks the whole
 * prefix to fill in its `count`, so a first page cannot cost less than that here.
 */
async function firstPage(ctx: BenchContext, B: string, f: FirstPage, N: number): Promise<Record<string, unknown>> {
  const ROUNDS = ctx.scale < 1 ? 3 : 7;
  const PER = 40;
  const calls = { ours: f.ours, single: f.single, rawPage: f.rawPage, count: f.count };
  const perRound: Record<keyof typeof calls, number[]> = { ours: [], single: [], rawPage: [], count: [] };
  const all: Record<keyof typeof calls, number[]> = { ours: [], single: [], rawPage: [], count: [] };
  for (let r = -1; r < ROUNDS; r++) {
    for (const k of Object.keys(calls) as (keyof typeof calls)[]) {
      const xs: number[] = [];
      for (let i = 0; i < PER; i++) {
        const a = nowMs();
        await calls[k]();
        xs.push(nowMs() - a);
      }
      if (r < 0) continue;
      perRound[k].push(summarize(xs).p50);
      all[k].push(...xs);
    }
  }
  const s = Object.fromEntries(Object.entries(all).map(([k, v]) => [k, summarize(v)])) as Record<keyof typeof calls, ReturnType<typeof summarize>>;
  const vsSingle = pairedRatio(perRound.ours, perRound.single);
  const vsPage = pairedRatio(perRound.ours, perRound.rawPage);
  const pageVsSingle = pairedRatio(perRound.rawPage, perRound.single);
  const countVsSingle = pairedRatio(perRound.count, perRound.single);
  const nFmt = N.toLocaleString('en-US');
  const single = `single-key Range p50 ${ms(s.single.p50)}`;
  ctx.rows.push(
    {
      section: S, figure: `${B}: first page (${f.size} of ${nFmt} locks) p50`, value: s.ours.p50, unit: 'ms', baseline: single,
      ratio: vsSingle.median, ratioSpread: [vsSingle.min, vsSingle.max], target: '(D4: ≤ 2×)', verdict: 'info',
      note: `list({ limit: ${f.size} }): one Range of ${f.size + 17} keys, one count_only Txn beside the holder-lease lookup; ${ROUNDS} rounds × ${PER}; p99 ${ms(s.ours.p99)}; ` +
        `the raw Range of the first ${f.size} keys is ${pageVsSingle.median.toFixed(2)}× the single-key Range (etcd 3.4 counts the whole prefix for a limited Range), so D4 cannot be met on this etcd`,
    },
    {
      section: S, figure: `${B}: first page vs the raw Range of its ${f.size} keys`, value: vsPage.median, unit: '×', baseline: `Range limit ${f.size} p50 ${ms(s.rawPage.p50)}`,
      ratio: vsPage.median, ratioSpread: [vsPage.min, vsPage.max], target: '—', verdict: 'info',
      note: 'the floor for any first page with owners: keys and values of the first locks, one request',
    },
    {
      section: S, figure: `${B}: countKeys() (count_only over ${nFmt} locks) p50`, value: s.count.p50, unit: 'ms', baseline: single,
      ratio: countVsSingle.median, ratioSpread: [countVsSingle.min, countVsSingle.max], target: '—', verdict: 'info',
      note: 'one count_only Range per prefix: etcd walks its index, sends no keys',
    },
  );
  ctx.log(`scale/${B}: first page p50 ${ms(s.ours.p50)} (${vsSingle.median.toFixed(2)}× a single-key Range ${ms(s.single.p50)}, ${vsPage.median.toFixed(2)}× the raw Range of ${f.size}); count ${ms(s.count.p50)}`);
  return { summary: s, perRound, vsSingle, vsPage, pageVsSingle, countVsSingle };
}

/**
 * The same N held locks through the console: a `next start` (test/console/harness.ts) configured
 * with this backend alone, `/api/locks?backend=<id>&limit=N` (whole body read) against the same
 * backend's list() in this process, interleaved, as bench/console-scale.ts does for Redis and
 * SQLite (target ≤ 2×, no errors, every seeded lock in the answer); and the console's memory:
 * its JS heap after a forced GC (bench/lib/console.ts) after the first listing and again after
 * every 6 of the untimed listings that follow the timed ones, up to 36 listings in all (bounded:
 * the last ≤ 1.25× the first), with the RSS of its process tree after every listing beside it
 * (info: a sawtooth, see below); then the locks page in Chromium (browserFigures). The console
 * runs as shipped: its event hub watches the backend and re-lists it every 5 s while the timed
 * calls run. BENCH_SCALE_CONSOLE=0 skips this part.
 */
async function viaConsole(ctx: BenchContext, b: Setup, N: number): Promise<Record<string, unknown>> {
  const B = b.name;
  const id = b.config.id;
  const bc = await startBenchConsole(ctx, [b.config]);
  const { server, operator: OP, upMs } = bc;
  try {
    const pid = server.process.pid!;
    ctx.versions.next = packageVersion('next');
    const path = `/api/locks?backend=${encodeURIComponent(id)}&limit=${N}`;
    const errors: string[] = [];
    const found: number[] = [];
    const api = async () => {
      const a = nowMs();
      const r = await server.fetch(path, { token: OP });
      const body = await r.text();
      const t = nowMs() - a;
      if (!r.ok) {
        errors.push(`HTTP ${r.status} after ${ms(t)}: ${body.slice(0, 200)}`);
        ctx.log(`scale/${B}: console: ${errors.at(-1)}`);
        return NaN;
      }
      const j = JSON.parse(body) as { locks?: { key: string }[] };
      found.push(seededFound((j.locks ?? []).map((l) => l.key)));
      return t;
    };
    const lib = async () => {
      const a = nowMs();
      await b.lister.list({ limit: N + 1 });
      return nowMs() - a;
    };
    const rssIdle = treeRssMiB(pid);
    await api(); // warm-up: the first call connects the console's backend and starts its hub
    await lib();
    const rssFirst = treeRssMiB(pid);
    const heapFirst = await bc.heapAfterGc();
    const ROUNDS = ctx.scale < 1 ? 2 : 4;
    const PER = ctx.scale < 1 ? 2 : 3;
    const apiT: number[] = [];
    const libT: number[] = [];
    const rss: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const a: number[] = [];
      const l: number[] = [];
      for (let i = 0; i < PER; i++) {
        if ((r + i) % 2 === 0) {
          a.push(await api());
          l.push(await lib());
        } else {
          l.push(await lib());
          a.push(await api());
        }
        // After every listing, not once a round: RSS is a sawtooth (the heap grows until V8
        // collects), and one reading a round caught a single peak in one half only.
        rss.push(treeRssMiB(pid));
      }
      apiT.push(...a);
      libT.push(...l);
      ctx.log(`scale/${B}: console round ${r + 1}/${ROUNDS}: /api/locks ${a.map(ms).join(', ')}; list() ${l.map(ms).join(', ')}; RSS ${rss.at(-1)} MiB`);
    }
    // Memory, untimed: listings up to RSS_READINGS in all (60 s at most), the heap after a forced
    // GC after every 6th. RSS alone cannot say "bounded": it is a sawtooth (V8 lets the heap grow
    // for 5–8 listings of 10,000 locks before it collects, and raises its limit as it goes), so
    // one half of a short series can hold a tooth's peak the other misses (etcd, 18:12 run: 1.28×
    // over 12 readings), and its troughs creep up over 150 listings while the heap after GC stays
    // flat (etcd: 58.3–60.1 MiB over 150 listings, BENCHMARKS.md). Completeness and errors are
    // checked on these listings too.
    const heap: number[] = [];
    const heapAt: number[] = [];
    const memUntil = nowMs() + 60_000 * Math.max(1, RSS_READINGS / 36);
    while (rss.length < RSS_READINGS && nowMs() < memUntil) {
      await api();
      rss.push(treeRssMiB(pid));
      if (rss.length % 6 === 0) {
        heap.push((await bc.heapAfterGc()) ?? NaN);
        heapAt.push(rss.length);
      }
    }
    const heapLast = heap.at(-1) ?? NaN;
    const inBrowser = BROWSER ? await browserFigures(ctx, bc, N) : null;
    const ok = apiT.filter((x) => !Number.isNaN(x));
    const A = summarize(ok.length ? ok : [NaN]);
    const L = summarize(libT);
    const pr = pairedRatio(apiT.map((x) => (Number.isNaN(x) ? Infinity : x)), libT);
    const complete = found.length > 0 && found.every((x) => x === N);
    const half = Math.ceil(rss.length / 2);
    const rssWarm = Math.max(rssFirst, ...rss.slice(0, half));
    const rssLast = Math.max(...rss.slice(half));
    const nFmt = N.toLocaleString('en-US');
    ctx.rows.push(
      {
        section: S, figure: `${B}: /api/locks p50 (${nFmt} locks)`, value: A.p50, unit: 'ms', baseline: `list() in-process p50 ${ms(L.p50)}`,
        ratio: pr.median, ratioSpread: [pr.min, pr.max], target: '≤ 2×, no errors, complete',
        verdict: errors.length === 0 && complete ? atMost(pr.median, 2) : 'FAIL',
        note: `next start with this backend alone, ${ROUNDS}×${PER} calls interleaved with list() after 1 warm-up; p99 ${ms(A.p99)}; ` +
          `seeded locks in every answer: ${[...new Set(found)].join('/')} of ${nFmt}; failed calls ${errors.length}${errors.length ? ` (${errors[0]})` : ''} (these two over the ${rss.length - apiT.length} untimed listings for memory too); console up after ${ms(upMs)}`,
      },
      heapFirst === null
        ? {
            section: S, figure: `${B}: console heap after GC`, value: null, unit: 'MiB', baseline: '—', ratio: null, target: '≤ 1.25× (bounded)', verdict: 'skip',
            note: 'no WebSocket client in this Node (run through npm run bench, which passes --experimental-websocket on Node 20)',
          }
        : {
            section: S, figure: `${B}: console heap after GC, after ${rss.length} listings`, value: heapLast, unit: 'MiB', baseline: `after the 1st listing ${heapFirst} MiB`,
            ratio: heapLast / heapFirst, target: '≤ 1.25× (bounded)', verdict: Number.isFinite(heapLast) ? atMost(heapLast / heapFirst, 1.25) : 'FAIL',
            note: `next start's JS heap after a forced full GC (inspector), after listings ${heapAt.join(', ')}: ${heap.join(', ')} MiB`,
          },
      {
        section: S, figure: `${B}: console RSS peak, 2nd half of ${rss.length} listings`, value: rssLast, unit: 'MiB', baseline: `1st half peak ${rssWarm} MiB`,
        ratio: rssLast / rssWarm, target: '—', verdict: 'info',
        note: `console process tree, read after every listing (a sawtooth; the heap row above is the bound); idle ${rssIdle} MiB, after the first listing ${rssFirst} MiB; then ${rss.join(', ')} MiB`,
      },
    );
    if (inBrowser) {
      const { loads, scroll, floor } = inBrowser;
      const firstRows = summarize(loads.map((l) => l.firstRows));
      const fcp = summarize(loads.map((l) => l.fcp ?? NaN).filter(Number.isFinite));
      const whole = summarize(loads.map((l) => l.completeAt));
      const frameOk = atMost(scroll.frames.p50 / floor.frames.p50, 1.25) === 'pass' && atMost(scroll.frames.p50 / scroll.idle.p50, 1.25) === 'pass';
      ctx.rows.push(
        {
          section: S, figure: `${B}: browser: first rows visible after navigation p50`, value: firstRows.p50, unit: 'ms', baseline: `first contentful paint p50 ${ms(fcp.p50)}`,
          ratio: firstRows.p50 / fcp.p50, target: '≤ 2,500 ms (LCP "good")', verdict: atMost(firstRows.p50, 2500),
          note: `${loads.length} loads of /locks?sort=key: first rows ${loads.map((l) => l.firstRows.toFixed(0)).join(', ')} ms; whole list (${[...new Set(loads.map((l) => l.completeN))].join('/')} locks counted) ${loads.map((l) => l.completeAt.toFixed(0)).join(', ')} ms, p50 ${ms(whole.p50)}; page says "${loads[0]?.countText}"`,
        },
        {
          section: S, figure: `${B}: browser: scroll frame time p50 (12 rows/frame)`, value: scroll.frames.p50, unit: 'ms', baseline: `static page p50 ${ms(floor.frames.p50)}`,
          ratio: scroll.frames.p50 / floor.frames.p50, target: '≤ 1.25× floor, ≤ 1.25 display intervals', verdict: frameOk ? 'pass' : 'FAIL',
          note: `idle frame ${ms(scroll.idle.p50)}; p95 ${ms(scroll.p95)} (static page ${ms(floor.p95)}); ${scroll.frames.n} frames, ${scroll.scrolledRows} rows scrolled`,
        },
        {
          section: S, figure: `${B}: browser: dropped frames while scrolling`, value: scroll.droppedPct, unit: '%', baseline: `static page ${floor.droppedPct.toFixed(1)} %`,
          ratio: null, target: '≤ 10 %', verdict: atMost(scroll.droppedPct, 10), note: `${scroll.dropped} of ${scroll.frames.n + scroll.dropped} display intervals`,
        },
      );
    }
    return {
      api: A, list: L, ratio: pr, errors, found, heap: { afterFirst: heapFirst, series: heap }, rss: { idle: rssIdle, afterFirst: rssFirst, rounds: rss },
      ...(inBrowser ? { browser: inBrowser } : {}),
    };
  } finally {
    await bc.stop();
  }
}

/**
 * The locks page over this backend's N locks in Debian's Chromium (bench/lib/browser.ts, as the
 * console section measures Redis and SQLite): first rows and the whole list over 2 fresh loads,
 * then the scroll (12 rows a frame) against the same scroll over a static page of plain rows.
 * After the timed and memory parts, so neither sees the browser. BENCH_SCALE_BROWSER=0 skips it.
 */
async function browserFigures(ctx: BenchContext, bc: BenchConsole, N: number): Promise<{ loads: PageLoad[]; scroll: ScrollFigures; floor: ScrollFigures }> {
  const browser = await launchBrowser(ctx);
  try {
    const context = await consoleContext(browser, bc.server, bc.operator);
    const { loads, page } = await measureLoads(context, bc.server, scaled(ctx, 2, 1), N);
    const { scroll, floor } = await scrollWithFloor(ctx, context, page);
    await context.close();
    return { loads, scroll, floor };
  } finally {
    await browser.close();
  }
}

// ------------------------------------------------------------------ ZooKeeper

function cb<T>(fn: (done: (err: unknown, v?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(v as T))));
}

async function zookeeperSetup(ctx: BenchContext): Promise<Setup> {
  const server = await serverFor(ctx, 'zookeeper', startZooKeeper);
  const connect = `${server.host}:${server.port}`;
  ctx.versions['node-zookeeper-client'] = packageVersion('node-zookeeper-client');
  const root = '/lockdeck';
  const config = { id: 'scale-zk', type: 'zookeeper' as const, connect, roots: [root] };
  const lister = createZooKeeperBackend(config);
  const seeder = createZooKeeperBackend({ ...config, id: 'scale-zk-seed' });
  // The baseline's own session: node-zookeeper-client as an application would use it.
  const bare = zookeeper.createClient(connect, { sessionTimeout: 30_000, spinDelay: 200, retries: 0 });
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('node-zookeeper-client did not connect within 10 s')), 10_000);
      bare.once('connected', () => (clearTimeout(t), resolve()));
      bare.connect();
    });
  } catch (err) {
    bare.close();
    await Promise.allSettled([lister.close(), seeder.close()]);
    await server.stop();
    throw err;
  }
  const parent = `${root}/jobs`;
  return {
    name: 'zookeeper',
    lister,
    seeder,
    config,
    lockName: (i) => `jobs/${shard(i)}`,
    rounds: 5,
    rawLabel: 'raw getChildren+getData',
    target: null,
    async raw() {
      const dirs = await cb<string[]>((d) => bare.getChildren(parent, d));
      const found: string[] = [];
      for (let i = 0; i < dirs.length; i += IN_FLIGHT) {
        const chunk = dirs.slice(i, i + IN_FLIGHT);
        const got = await Promise.all(
          chunk.map(async (dir) => {
            const path = `${parent}/${dir}`;
            const children = await cb<string[]>((d) => bare.getChildren(path, d));
            // The holder: the lowest sequence number (Curator's 10-digit suffix).
            let first: string | undefined;
            for (const c of children) if (first === undefined || c.slice(-10) < first.slice(-10)) first = c;
            if (first === undefined) return null;
            await cb<Buffer>((d) => bare.getData(`${path}/${first}`, d));
            return path;
          }),
        );
        for (const p of got) if (p) found.push(p);
      }
      return found;
    },
    async stop() {
      bare.close();
      await server.stop();
    },
  };
}

/**
 * Starts one backend's server, pinned like the other sections' servers and stopped at the end
 * even on error (ctx.defer also runs on SIGINT; stop() is safe to call twice).
 */
async function serverFor<T extends RunningServer>(ctx: BenchContext, name: string, start: () => Promise<T>): Promise<T> {
  const server = await start();
  ctx.defer(() => server.stop());
  if (ctx.pin && server.process.pid) pin(server.process.pid, ctx.pin.server);
  ctx.log(`scale: ${name} on ${server.url} (pid ${server.process.pid})`);
  return server;
}

// ------------------------------------------------------------------ etcd

async function etcdSetup(ctx: BenchContext): Promise<Setup> {
  const server = await serverFor(ctx, 'etcd', startEtcd);
  ctx.versions.etcd3 = packageVersion('etcd3');
  // Lock names lie under the configured prefix (etcd keys are the names themselves).
  const prefix = '/lockdeck/';
  const config = { id: 'scale-etcd', type: 'etcd' as const, endpoints: server.endpoints, prefixes: [prefix] };
  const lister = createEtcdBackend(config);
  const seeder = createEtcdBackend({ ...config, id: 'scale-etcd-seed' });
  const client = new Etcd3({ hosts: server.endpoints });
  let heldKey: string | undefined;
  return {
    name: 'etcd',
    lister,
    seeder,
    config,
    firstPage: {
      size: 100,
      ours: () => lister.list({ limit: 100 }),
      // A key that exists: the holder key of the first lock (`<name>/<lease hex>`).
      single: async () => client.get((heldKey ??= (await client.getAll().prefix(`${prefix}jobs/${shard(0)}/`).limit(1).keys())[0]!)).buffer(),
      rawPage: () => client.getAll().prefix(prefix).limit(100).exec(),
      count: () => lister.countKeys(),
    },
    lockName: (i) => `${prefix}jobs/${shard(i)}`,
    rounds: 9,
    rawLabel: 'one Range over the prefix',
    target: null,
    async raw() {
      // Keys are `<name>/<lease hex>` (Go's concurrency.Mutex layout): the name is the key less its last segment.
      const r = await client.getAll().prefix(prefix).exec();
      return r.kvs.map((kv) => {
        const k = kv.key.toString('utf8');
        return k.slice(0, k.lastIndexOf('/'));
      });
    },
    async stop() {
      client.close();
      await server.stop();
    },
  };
}

/**
 * etcd locks that each have a lease of their own, as the microsoft/etcd3 npm `Lock` leaves them
 * (an empty value on a fresh lease; python-etcd3 and `etcdctl lock` from many processes also give
 * every lock its own lease): the inspector must look up every holder lease for its TTL. A fifth of
 * N (granting leases is the slow part of seeding). Baseline: one Range, then a LeaseTimeToLive per
 * lease, 256 in flight — what any reader that shows TTLs must do.
 */
async function etcdOwnLeasesSetup(ctx: BenchContext): Promise<Setup> {
  const server = await serverFor(ctx, 'etcd (a lease per lock)', startEtcd);
  const prefix = '/foreign/';
  const config = { id: 'scale-etcd-leases', type: 'etcd' as const, endpoints: server.endpoints, prefixes: [prefix] };
  const lister = createEtcdBackend(config);
  const client = new Etcd3({ hosts: server.endpoints });
  return {
    name: 'etcd, a lease per lock',
    lister,
    config,
    locks: (n) => Math.max(100, Math.round(n / 5)),
    lockName: (i) => `${prefix}jobs/${shard(i)}`,
    async seed(n) {
      for (let i = 0; i < n; i += SEED_PARALLEL) {
        await Promise.all(
          Array.from({ length: Math.min(SEED_PARALLEL, n - i) }, (_, j) => client.lease(TTL_MS / 1000, { autoKeepAlive: false }).put(`${prefix}jobs/${shard(i + j)}`).value('')),
        );
      }
    },
    rounds: 9,
    rawLabel: 'one Range + a LeaseTimeToLive per lease',
    target: null,
    async raw() {
      const r = await client.getAll().prefix(prefix).exec();
      const leases = [...new Set(r.kvs.map((kv) => kv.lease))];
      for (let i = 0; i < leases.length; i += IN_FLIGHT) {
        await Promise.all(leases.slice(i, i + IN_FLIGHT).map((ID) => client.leaseClient.leaseTimeToLive({ ID, keys: false })));
      }
      return r.kvs.map((kv) => kv.key.toString('utf8'));
    },
    async stop() {
      client.close();
      await server.stop();
    },
  };
}

// ------------------------------------------------------------------ DynamoDB (dynalite)

async function dynamodbSetup(ctx: BenchContext): Promise<Setup> {
  const server = await serverFor(ctx, 'dynalite', () => startDynalite());
  ctx.versions.dynalite = packageVersion('dynalite');
  ctx.versions['@aws-sdk/client-dynamodb'] = packageVersion('@aws-sdk/client-dynamodb');
  const endpoint = server.url;
  const raw = makeDynamoDbClient({ endpoint, region: REGION });
  try {
    await createLockTable(raw, TABLE);
  } catch (err) {
    raw.destroy();
    await server.stop();
    throw err;
  }
  const config = { id: 'scale-ddb', type: 'dynamodb' as const, endpoint, region: REGION, tables: [TABLE] };
  const lister = createDynamoDbBackend(config);
  const seeder = createDynamoDbBackend({ ...config, id: 'scale-ddb-seed' });
  return {
    name: 'dynamodb',
    lister,
    seeder,
    config,
    lockName: (i) => `jobs/${shard(i)}`,
    rounds: 9,
    rawLabel: 'paged consistent Scan',
    target: null,
    async raw() {
      const keys: string[] = [];
      let start: Record<string, unknown> | undefined;
      for (let page = 0; page < 10_000; page++) {
        const r = await raw.send(new ScanCommand({ TableName: TABLE, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start as never } : {}) }));
        for (const item of r.Items ?? []) keys.push(item.key?.S ?? '');
        start = r.LastEvaluatedKey;
        if (!start) break;
      }
      return keys;
    },
    async stop() {
      raw.destroy();
      await server.stop();
    },
  };
}
