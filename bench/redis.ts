/**
 * Redis section, all on one throwaway redis-server started here (scripts/servers.ts startRedis()):
 *
 *  - baselines: PING (ioredis, sequential, hot loop) — the baseline the targets are written
 *    against —, PING after 1-10 ms idle, a minimal lock cycle (SET NX PX + Lua compare-DEL), a
 *    minimal fenced cycle (one script: fence counter + SET PX; the same compare-DEL), and
 *    the push floor (one PUBLISH reaching a subscriber in another process, same harness as ours);
 *  - ours: uncontended acquire+release, cross-process handoff (with a breakdown of its critical
 *    path), server requests per handoff, waiters woken per release, server-side Lua time per script;
 *  - node-redlock's polling handoff with its defaults, same harness;
 *  - redis-py's `redis.lock.Lock` handoff between two Python processes (bench/redis-py-handoff.py),
 *    when /usr/bin/python3 can import redis: redis-py's defaults (sleep 0.1 s between SET NX PX
 *    attempts), t1 in the waiter − t0 in the holder (both CLOCK_MONOTONIC), the waiter confirmed
 *    blocked by its own report of a failed first attempt, holder pause 0-300 ms like redlock's, in
 *    rounds interleaved with our handoff at the same pauses.
 *
 * Method (perf-reliability-anchors.md §5, §6): baselines and candidates run in R interleaved
 * rounds; p50 ratios are the median of per-round ratios, shown with their spread; p99 ratios use
 * the pooled samples. Every block is warmed up; every loop is bounded by count and time.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';

import { Redis } from 'ioredis';

import { createRedisBackend } from '../lib/backends/redis/index';
import * as luaScripts from '../lib/backends/redis/scripts';
import { startRedis } from '../scripts/servers';
import { packageVersion, scaled, type BenchContext } from './lib/context';
import { breakdown, contendedThroughput, fencesIncrease, pingPong, throughputRow, type HandoffOptions, type HandoffSample, type ThroughputResult, waitForWaiters } from './lib/handoff';
import { pin } from './lib/machine';
import { PYTHON, PythonPeer } from './lib/python-peer';
import type { WorkerSpec } from './lib/protocol';
import { atMost, ms, type Row } from './lib/report';
import { measure, median, pairedRatio, percentile, sleep, summarize, uniform, type Summary } from './lib/stats';
import { BenchWorker, sumCounters } from './lib/workers';

const TTL_MS = 30_000;
/** Top-level commands a lock client sends; Lua-internal calls and the inspector's reads have other names. */
// Not evalsha_ro/eval_ro: the lock clients' scripts all write; the read-only form is the
// inspector's (lib/backends/redis/read-own.ts), which confirms waiters between handoffs.
const TOP_LEVEL = ['evalsha', 'eval', 'fcall', 'subscribe', 'unsubscribe', 'psubscribe', 'punsubscribe', 'ssubscribe', 'sunsubscribe'];
const COMPARE_DEL = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
/**
 * The least a *fenced* lock can do: one script that takes the lock and draws a fence from a
 * counter that never expires (it must outlive every holder, so it cannot be the lock key), the
 * fence kept in the value; released by the same compare-DEL. No queue, index, owner or events.
 */
const FENCED_ACQUIRE =
  "if redis.call('EXISTS', KEYS[1]) == 1 then return false end local f = redis.call('INCR', KEYS[2]) " +
  "redis.call('SET', KEYS[1], ARGV[1] .. ':' .. f, 'PX', ARGV[2]) return f";

const REDIS_PY_PEER = fileURLToPath(new URL('./redis-py-handoff.py', import.meta.url));

type CmdStats = Map<string, number>;

function redisPyVersion(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import redis; print(redis.__version__)'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout.trim() || '?' : null;
}


/**
 * Ping-pong between two redis-py processes (peers[0] holds at the start). The waiter counts as
 * blocked once it reports its first failed SET NX PX: from then on it only sleeps and re-polls, as
 * a lockdeck waiter only waits for its grant once the inspector shows it queued.
 */
async function redisPyPingPong(
  peers: [PythonPeer, PythonPeer],
  o: { warmup: number; samples: number; pauseMs: [number, number]; budgetMs: number },
): Promise<{ samples: number[]; holder: PythonPeer; handoffs: number }> {
  let [holder, waiter] = peers;
  const out: number[] = [];
  const stopAt = performance.now() + o.budgetMs;
  let done = 0;
  for (let i = 0; i < o.warmup + o.samples; i++) {
    if (i >= o.warmup && performance.now() > stopAt) break;
    waiter.send('acquire');
    await waiter.expect('contending');
    await waiter.expect('blocked', 5000);
    const pauseMs = uniform(o.pauseMs[0], o.pauseMs[1]);
    holder.send(`release ${pauseMs.toFixed(3)}`);
    const [t0, t1] = await Promise.all([holder.expect('released', 10_000 + pauseMs), waiter.expect('acquired', 10_000 + pauseMs)]);
    done++;
    if (i >= o.warmup) out.push(Number(BigInt(t1) - BigInt(t0)) / 1e6);
    [holder, waiter] = [waiter, holder];
  }
  return { samples: out, holder, handoffs: done };
}

async function commandStats(c: Redis): Promise<CmdStats> {
  const text = await c.info('commandstats');
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const x = /^cmdstat_([^:]+):calls=(\d+)/.exec(line.trim());
    if (x) m.set(x[1]!, Number(x[2]));
  }
  return m;
}

function diffStats(a: CmdStats, b: CmdStats): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of b) {
    const d = v - (a.get(k) ?? 0);
    if (d > 0 && k !== 'info') out[k] = d;
  }
  return out;
}

function addInto(acc: Record<string, number>, d: Record<string, number>): void {
  for (const [k, v] of Object.entries(d)) acc[k] = (acc[k] ?? 0) + v;
}

function topLevel(d: Record<string, number>): number {
  return TOP_LEVEL.reduce((a, k) => a + (d[k] ?? 0), 0);
}


/**
 * Server-side duration (µs, SLOWLOG with threshold 0) of every script call made while `fn` runs,
 * by script name (sha1 of each string exported by scripts.ts) and call shape.
 */
async function scriptTimes(raw: Redis, fn: () => Promise<void>): Promise<Record<string, { n: number; p50: number }>> {
  const bySha = new Map<string, string>();
  for (const [name, v] of Object.entries(luaScripts)) {
    if (typeof v === 'string') bySha.set(createHash('sha1').update(v).digest('hex'), name);
  }
  await raw.config('SET', 'slowlog-max-len', '100000');
  await raw.slowlog('RESET');
  await raw.config('SET', 'slowlog-log-slower-than', '0');
  try {
    await fn();
  } finally {
    await raw.config('SET', 'slowlog-log-slower-than', '10000');
  }
  const log = (await raw.slowlog('GET', 100_000)) as [number, number, number, string[]][];
  await raw.slowlog('RESET');
  const acc: Record<string, number[]> = {};
  for (const [, , us, args] of log) {
    const cmd = String(args[0]).toLowerCase();
    const key = cmd === 'evalsha' ? (bySha.get(String(args[1])) ?? 'other script') : cmd === 'ping' ? 'PING' : null;
    if (key) (acc[key] ??= []).push(us);
  }
  return Object.fromEntries(Object.entries(acc).map(([k, v]) => [k, { n: v.length, p50: median(v) }]));
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const round = (s: Summary): Summary => Object.fromEntries(Object.entries(s).map(([k, v]) => [k, k === 'n' ? v : r3(v)])) as unknown as Summary;
const msOf = (xs: HandoffSample[]) => xs.map((s) => s.ms);

export async function redisSection(ctx: BenchContext): Promise<void> {
  const S = 'redis';
  const server = await startRedis();
  ctx.defer(() => server.stop());
  if (ctx.pin && server.process.pid) pin(server.process.pid, ctx.pin.server);
  ctx.log(`redis-server on ${server.url} (pid ${server.process.pid})`);

  const raw = new Redis(server.url, { maxRetriesPerRequest: 1 }); // ioredis defaults (noDelay: true)
  raw.on('error', () => undefined);
  ctx.defer(() => raw.disconnect());
  raw.defineCommand('benchCompareDel', { numberOfKeys: 1, lua: COMPARE_DEL });
  raw.defineCommand('benchFencedAcquire', { numberOfKeys: 2, lua: FENCED_ACQUIRE });
  const compareDel = (raw as unknown as { benchCompareDel(k: string, v: string): Promise<number> }).benchCompareDel.bind(raw);
  const fencedAcquire = (raw as unknown as { benchFencedAcquire(k: string, f: string, t: string, px: number): Promise<number | null> }).benchFencedAcquire.bind(raw);
  ctx.versions.redis = /redis_version:(\S+)/.exec(await raw.info('server'))?.[1] ?? '?';
  ctx.versions.ioredis = packageVersion('ioredis');
  ctx.versions.redlock = packageVersion('redlock');

  const config = { id: 'bench', type: 'redis' as const, url: server.url };
  const backend = createRedisBackend(config); // acquire+release, in this process like PING
  const inspector = createRedisBackend({ ...config, id: 'bench-inspector' });
  ctx.defer(() => backend.close());
  ctx.defer(() => inspector.close());

  const cpu = ctx.pin?.clients;
  const spec: WorkerSpec = { kind: 'lockdeck', backend: 'redis', config: { ...config } };
  const floorSpec: WorkerSpec = { kind: 'raw-pubsub', url: server.url, via: 'publish' };
  const [wa, wb, fa, fb] = await Promise.all([
    BenchWorker.start('lockdeck-a', spec, { cpu }),
    BenchWorker.start('lockdeck-b', spec, { cpu }),
    BenchWorker.start('floor-a', floorSpec, { cpu }),
    BenchWorker.start('floor-b', floorSpec, { cpu }),
  ]);
  for (const w of [wa, wb, fa, fb]) ctx.defer(() => w.stop());

  const HO = 'bench:handoff';
  const FLOOR = 'bench:floor';
  const CYCLE = 'bench:cycle';
  if (!(await wa.call({ op: 'tryAcquire', name: HO, ttlMs: TTL_MS })).got) throw new Error(`${HO} is held by someone else`);
  await fa.call({ op: 'tryAcquire', name: FLOOR, ttlMs: TTL_MS });
  let pair: [BenchWorker, BenchWorker] = [wa, wb];
  let floorPair: [BenchWorker, BenchWorker] = [fa, fb];
  const ours = (o: Partial<HandoffOptions> & Pick<HandoffOptions, 'samples' | 'warmup' | 'pauseMs' | 'budgetMs'>): HandoffOptions => ({
    name: HO, ttlMs: TTL_MS, waitMs: 10_000, confirmBlocked: () => waitForWaiters(inspector, HO, 1), ...o,
  });
  const floor = (o: Pick<HandoffOptions, 'samples' | 'warmup' | 'pauseMs' | 'budgetMs'>): HandoffOptions => ({
    name: FLOOR, ttlMs: TTL_MS, waitMs: 10_000, notifyBlocked: true, confirmBlocked: (w, id) => w.waitEvent(id, 'blocked', 5000), ...o,
  });

  // ------------------------------------------------------------ interleaved rounds
  const ROUNDS = 5;
  const pingN = scaled(ctx, 400, 50);
  const cycleN = scaled(ctx, 400, 50);
  const coldN = scaled(ctx, 60, 10);
  const handoffN = scaled(ctx, 100, 20);
  const pings: number[][] = [];
  const colds: number[][] = [];
  const minimal: number[][] = [];
  const fenced: number[][] = [];
  const cycles: number[][] = [];
  const handoffs: HandoffSample[][] = [];
  const floors: HandoffSample[][] = [];
  const hoStats: Record<string, number> = {};
  let hoCount = 0;
  let hoClientCmds = 0;
  let tok = 0;

  // Round -1 is a full warm-up round (JIT, script caches, the workers' first handoffs, CPU placement
  // settling): measured like the others and thrown away.
  for (let r = -1; r < ROUNDS; r++) {
    const first = r === -1;
    const p = await measure(() => raw.ping(), { warmup: first ? 500 : 50, samples: pingN, maxMs: 5000 });
    const cold: number[] = [];
    for (let i = 0; i < coldN; i++) {
      await sleep(uniform(1, 10));
      const t0 = process.hrtime.bigint();
      await raw.ping();
      cold.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const m = await measure(
      async () => {
        const t = String(++tok);
        if ((await raw.set('bench:minimal', t, 'PX', TTL_MS, 'NX')) !== 'OK') throw new Error('bench:minimal unexpectedly held');
        await compareDel('bench:minimal', t);
      },
      { warmup: first ? 200 : 20, samples: cycleN, maxMs: 5000 },
    );
    const fc = await measure(
      async () => {
        const t = String(++tok);
        const f = await fencedAcquire('bench:{fenced}', 'bench:{fenced}:fence', t, TTL_MS);
        if (f === null) throw new Error('bench:{fenced} unexpectedly held');
        await compareDel('bench:{fenced}', `${t}:${f}`);
      },
      { warmup: first ? 200 : 20, samples: cycleN, maxMs: 5000 },
    );
    const c = await measure(
      async () => {
        const h = await backend.tryAcquire(CYCLE, { ttlMs: TTL_MS, autoRenew: false });
        if (!h) throw new Error(`${CYCLE} unexpectedly held`);
        await h.release();
      },
      { warmup: first ? 200 : 20, samples: cycleN, maxMs: 5000 },
    );
    const before = await commandStats(raw);
    const cBefore = sumCounters(await Promise.all(pair.map((w) => w.counters())));
    const ho = await pingPong(pair, ours({ warmup: first ? 20 : 3, samples: handoffN, pauseMs: [1, 10], budgetMs: 15_000 }));
    const cAfter = sumCounters(await Promise.all(pair.map((w) => w.counters())));
    const dStats = diffStats(before, await commandStats(raw));
    pair = ho.holder === wa ? [wa, wb] : [wb, wa];
    const fl = await pingPong(floorPair, floor({ warmup: first ? 20 : 3, samples: handoffN, pauseMs: [1, 10], budgetMs: 15_000 }));
    floorPair = fl.holder === fa ? [fa, fb] : [fb, fa];
    if (first) {
      ctx.log(`warm-up round: PING ${ms(median(p))}, acquire+release ${ms(median(c))}, handoff ${ms(median(msOf(ho.samples)))} (discarded)`);
      continue;
    }
    addInto(hoStats, dStats);
    hoCount += ho.handoffs;
    hoClientCmds += cAfter.commands - cBefore.commands;
    pings.push(p);
    colds.push(cold);
    minimal.push(m);
    fenced.push(fc);
    cycles.push(c);
    handoffs.push(ho.samples);
    floors.push(fl.samples);
    ctx.log(
      `round ${r + 1}/${ROUNDS}: PING ${ms(median(p))} (after idle ${ms(median(cold))}), minimal cycle ${ms(median(m))}, fenced ${ms(median(fc))}, ` +
        `acquire+release ${ms(median(c))}, handoff ${ms(median(msOf(ho.samples)))}, push floor ${ms(median(msOf(fl.samples)))}`,
    );
  }
  await Promise.all([fa.stop(), fb.stop()]);

  const allPing = summarize(pings.flat());
  const allCold = summarize(colds.flat());
  const allMin = summarize(minimal.flat());
  const allFenced = summarize(fenced.flat());
  const allCycle = summarize(cycles.flat());
  const allHo = summarize(msOf(handoffs.flat()));
  const allFloor = summarize(msOf(floors.flat()));
  const pingP50s = pings.map(median);
  const cycleRatio = pairedRatio(cycles.map(median), pingP50s);
  const minRatio = pairedRatio(minimal.map(median), pingP50s);
  const fencedRatio = pairedRatio(fenced.map(median), pingP50s);
  const cycleVsFenced = pairedRatio(cycles.map(median), fenced.map(median));
  const cycleVsMin = pairedRatio(cycles.map(median), minimal.map(median));
  const hoRatio = pairedRatio(handoffs.map((h) => median(msOf(h))), pingP50s);
  const floorRatio = pairedRatio(floors.map((h) => median(msOf(h))), pingP50s);
  const hoVsFloor = pairedRatio(handoffs.map((h) => median(msOf(h))), floors.map((h) => median(msOf(h))));
  const hoVsCold = pairedRatio(handoffs.map((h) => median(msOf(h))), colds.map(median));
  const hoP99Ratio = allHo.p99 / allPing.p50;
  const base = `PING p50 ${ms(allPing.p50)}`;
  const reqPerHandoff = topLevel(hoStats) / hoCount;
  const fencesOk = fencesIncrease(handoffs.flat());
  const split = breakdown(handoffs.flat());
  const floorSplit = breakdown(floors.flat());

  // ------------------------------------------------------------ server-side Lua time per script
  const cycleLua = await scriptTimes(raw, async () => {
    for (let i = 0; i < 200; i++) {
      const h = await backend.tryAcquire(CYCLE, { ttlMs: TTL_MS, autoRenew: false });
      await h?.release();
      await raw.ping();
    }
  });
  let luaHolder = pair[0];
  const handoffLua = await scriptTimes(raw, async () => {
    const x = await pingPong(pair, ours({ warmup: 0, samples: 40, pauseMs: [1, 10], budgetMs: 10_000 }));
    luaHolder = x.holder;
  });
  pair = luaHolder === wa ? [wa, wb] : [wb, wa];
  const us = (t: Record<string, { p50: number }>, k: string) => t[k]?.p50 ?? Number.NaN;
  const luaCycleUs = us(cycleLua, 'ACQUIRE') + us(cycleLua, 'RELEASE');
  ctx.log(
    `server Lua µs p50 — cycle: ACQUIRE ${us(cycleLua, 'ACQUIRE')}, RELEASE ${us(cycleLua, 'RELEASE')}, PING ${us(cycleLua, 'PING')}; ` +
      `handoff: ACQUIRE(queue) ${us(handoffLua, 'ACQUIRE')}, RELEASE(+grant) ${us(handoffLua, 'RELEASE')}, EXTEND(top-up) ${us(handoffLua, 'EXTEND')}`,
  );

  // ------------------------------------------------------------ 0-300 ms pauses: ours and redis-py's, interleaved
  // The pauses of the redlock row. A polling peer needs them: after a 1-10 ms pause the release
  // would always land just after the waiter's first failed attempt, so every redis-py sample would
  // be ≈ one full sleep (100 ms); 0-300 ms spreads the release over its poll phase, as for users.
  const rpv = redisPyVersion();
  let rpPeers: [PythonPeer, PythonPeer] | null = null;
  const RP = 'bench:redis-py';
  if (rpv) {
    ctx.versions['redis-py'] = rpv;
    const [pa, pb] = await Promise.all([
      PythonPeer.start('redis-py-a', REDIS_PY_PEER, [server.url, RP, String(TTL_MS / 1000)], cpu),
      PythonPeer.start('redis-py-b', REDIS_PY_PEER, [server.url, RP, String(TTL_MS / 1000)], cpu),
    ]);
    ctx.defer(() => pa.stop());
    ctx.defer(() => pb.stop());
    pa.send('acquire');
    await pa.expect('contending');
    await pa.expect('acquired', 10_000);
    rpPeers = [pa, pb];
  } else {
    ctx.log(`redis-py: ${PYTHON} cannot import redis, its handoff is skipped`);
  }
  const SLOW_ROUNDS = 3;
  const slowN = scaled(ctx, 15, 6); // per round and per peer: a polling peer's p50 needs a few samples
  const slowRounds: HandoffSample[][] = [];
  const rpRounds: number[][] = [];
  const rpStats: Record<string, number> = {};
  let rpHandoffs = 0;
  for (let r = -1; r < SLOW_ROUNDS; r++) {
    const first = r === -1;
    const runOurs = async () => {
      const x = await pingPong(pair, ours({ warmup: first ? 2 : 0, samples: first ? 0 : slowN, pauseMs: [0, 300], budgetMs: 20_000 }));
      pair = x.holder === wa ? [wa, wb] : [wb, wa];
      return x.samples;
    };
    const runRp = async () => {
      if (!rpPeers) return [];
      const before = await commandStats(raw);
      const x = await redisPyPingPong(rpPeers, { warmup: first ? 2 : 0, samples: first ? 0 : slowN, pauseMs: [0, 300], budgetMs: 20_000 });
      const d = diffStats(before, await commandStats(raw));
      rpPeers = x.holder === rpPeers[0] ? rpPeers : [rpPeers[1], rpPeers[0]];
      if (!first) {
        addInto(rpStats, d);
        rpHandoffs += x.handoffs;
      }
      return x.samples;
    };
    // Alternate which goes first, so neither always follows the other.
    let o: HandoffSample[];
    let p: number[];
    if (r % 2 === 0) {
      o = await runOurs();
      p = await runRp();
    } else {
      p = await runRp();
      o = await runOurs();
    }
    if (first) continue;
    slowRounds.push(o);
    if (rpPeers) rpRounds.push(p);
    ctx.log(`0-300 ms pause round ${r + 1}/${SLOW_ROUNDS}: ours ${ms(median(msOf(o)))}` + (rpPeers ? `, redis-py ${ms(median(p))}` : ''));
  }
  if (rpPeers) {
    rpPeers[0].send('release 0');
    await rpPeers[0].expect('released');
    await Promise.all(rpPeers.map((x) => x.stop()));
  }
  const slowHo = summarize(msOf(slowRounds.flat()));
  ctx.log(`handoff after 0-300 ms pauses: p50 ${ms(slowHo.p50)} p99 ${ms(slowHo.p99)} (n=${slowHo.n})`);
  const rpHo = rpPeers ? summarize(rpRounds.flat()) : null;
  const oursVsRp = rpPeers ? pairedRatio(slowRounds.map((h) => median(msOf(h))), rpRounds.map(median)) : null;
  // Per handoff: the waiter's SET NX PX attempts (redis-py's only use of SET here; lockdeck sends
  // scripts only), plus the holder's one release (EVALSHA of LUA_RELEASE_SCRIPT) — counted as 1
  // rather than from the EVALSHA delta, which a lockdeck worker's renewal could land in.
  const rpSetsPerHandoff = rpHandoffs ? (rpStats.set ?? 0) / rpHandoffs : Number.NaN;
  if (rpHo) ctx.log(`redis-py handoff: p50 ${ms(rpHo.p50)} p99 ${ms(rpHo.p99)} (n=${rpHo.n}), ${rpSetsPerHandoff.toFixed(2)} SET attempts/handoff`);

  // ------------------------------------------------------------ N waiters: requests per handoff, who wakes
  // N = 2, 16, 128 waiters spread over 4 processes (slots within a process), queued in a known
  // order (each confirmed by the inspector), then released one by one with a 1-10 ms pause.
  // After each release, 30 ms of quiet: every pub/sub message a worker process receives is a
  // waiter woken (the single-server grant goes to one process channel, one waiter); every command
  // other than the release is a re-check. Server requests per handoff come from commandstats over
  // the whole round, queue joins included.
  const [wc, wd] = await Promise.all([BenchWorker.start('lockdeck-c', spec, { cpu }), BenchWorker.start('lockdeck-d', spec, { cpu })]);
  ctx.defer(() => wc.stop());
  ctx.defer(() => wd.stop());
  const all = [wa, wb, wc, wd];
  type Seat = { w: BenchWorker; slot: number };
  // The ping-pong holder holds with slot 0; waiters use slots 1.. in every process.
  let holder: Seat = { w: pair[0], slot: 0 };
  let fifoViolations = 0;
  const avg = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : Number.NaN);
  const multi: {
    n: number; releases: number; woken: number[]; rechecks: number[]; requestsPerHandoff: number; workerCommandsPerHandoff: number;
    handoffMs: Summary; commandstatsDelta: Record<string, number>;
  }[] = [];
  let nextSlot = 1;
  for (const n of [2, 16, 128]) {
    const rounds = n === 128 ? 1 : n === 16 ? scaled(ctx, 2, 1) : scaled(ctx, 12, 3);
    const woken: number[] = [];
    const rechecks: number[] = [];
    const handoffMs: number[] = [];
    const stats: Record<string, number> = {};
    let serverReqs = 0;
    let clientCmds = 0;
    let handoffsCounted = 0;
    // Round 0 warms up (new slots, first SUBSCRIBEs) and is not counted.
    for (let rnd = 0; rnd <= rounds; rnd++) {
      const counted = rnd > 0;
      const seats: Seat[] = Array.from({ length: n }, (_, k) => ({ w: all[k % all.length]!, slot: nextSlot + Math.floor(k / all.length) }));
      nextSlot += Math.ceil(n / all.length);
      const roundBefore = sumCounters(await Promise.all(all.map((w) => w.counters())));
      const roundStats = await commandStats(raw);
      const pending = new Map<Seat, ReturnType<BenchWorker['request']>>();
      for (let k = 0; k < seats.length; k++) {
        const s = seats[k]!;
        const req = s.w.request({ op: 'acquire', name: HO, ttlMs: TTL_MS, waitMs: 60_000, slot: s.slot } as Parameters<BenchWorker['request']>[0], 65_000);
        req.reply.catch(() => undefined); // awaited below
        pending.set(s, req);
        await waitForWaiters(inspector, HO, k + 1, 10_000); // queue order = request order
      }
      while (pending.size > 0) {
        await sleep(uniform(1, 10));
        const before = await Promise.all(all.map((w) => w.counters()));
        const rel = await holder.w.call({ op: 'release', pauseMs: 0, slot: holder.slot } as Parameters<BenchWorker['request']>[0]);
        const entries = [...pending.entries()];
        const winner = await Promise.race(entries.map(([s, req]) => req.reply.then((rep) => ({ s, rep }))));
        await sleep(30); // time for any other (wrongly) woken waiter to act
        const after = await Promise.all(all.map((w) => w.counters()));
        if (counted) {
          if (winner.s !== entries[0]![0]) fifoViolations++; // FIFO: the oldest waiter gets it
          let msgs = 0;
          let cmds = -1; // the release itself
          all.forEach((_, i) => {
            msgs += after[i]!.messages - before[i]!.messages;
            cmds += after[i]!.commands - before[i]!.commands;
          });
          woken.push(msgs);
          rechecks.push(cmds);
          if (rel.t0 !== undefined && winner.rep.t1 !== undefined) handoffMs.push(winner.rep.t1 - rel.t0);
        }
        pending.delete(winner.s);
        holder = winner.s;
      }
      const roundAfter = sumCounters(await Promise.all(all.map((w) => w.counters())));
      const d = diffStats(roundStats, await commandStats(raw));
      if (!counted) continue;
      addInto(stats, d);
      serverReqs += topLevel(d);
      clientCmds += roundAfter.commands - roundBefore.commands;
      handoffsCounted += n;
    }
    multi.push({
      n, releases: woken.length, woken, rechecks, requestsPerHandoff: serverReqs / handoffsCounted,
      workerCommandsPerHandoff: clientCmds / handoffsCounted, handoffMs: round(summarize(handoffMs)), commandstatsDelta: stats,
    });
    ctx.log(
      `${n} waiters: woken per release mean ${avg(woken).toFixed(2)} max ${Math.max(...woken)}, re-checks per release ${avg(rechecks).toFixed(2)}; ` +
        `requests/handoff ${(serverReqs / handoffsCounted).toFixed(2)}; handoff p50 ${ms(median(handoffMs))}`,
    );
  }
  await holder.w.call({ op: 'release', pauseMs: 0, slot: holder.slot } as Parameters<BenchWorker['request']>[0]); // leave the lock free

  // ------------------------------------------------------------ throughput on one contended lock
  // 2 contenders (one per process) and 16 (four per process); see contendedThroughput.
  const TP = 'bench:throughput';
  const tpMs = scaled(ctx, 3000, 1000);
  const throughput: (ThroughputResult & { requestsPerAcquisition: number })[] = [];
  for (const c of [2, 16]) {
    const seats: Seat[] = Array.from({ length: c }, (_, k) => ({ w: (c === 2 ? [wa, wb] : all)[k % (c === 2 ? 2 : all.length)]!, slot: nextSlot + Math.floor(k / all.length) }));
    nextSlot += Math.ceil(c / all.length);
    const statsBefore = await commandStats(raw);
    const t = await contendedThroughput(seats, { name: TP, ttlMs: TTL_MS, durationMs: tpMs });
    const dStats = diffStats(statsBefore, await commandStats(raw));
    throughput.push({ ...t, requestsPerAcquisition: topLevel(dStats) / t.acquisitions });
    ctx.log(`throughput, ${c} contenders: ${t.perSec.toFixed(0)}/s (${t.acquisitions}), overlaps ${t.overlaps}, fences increasing ${t.fencesIncrease}`);
  }
  await Promise.all(all.map((w) => w.stop()));

  // ------------------------------------------------------------ renewal batching
  // One process holds L locks with a short TTL and lets the library renew them for a few TTL/3
  // periods. Server side: EXTEND calls (commandstats) and read events (INFO stats
  // total_reads_processed — one per batch of commands the server reads from a socket, so one per
  // pipeline that fits its 16 KiB read buffer).
  const L = scaled(ctx, 200, 50);
  const RTTL = 900;
  const renewer = createRedisBackend({ ...config, id: 'bench-renew' });
  ctx.defer(() => renewer.close());
  const handles = await Promise.all(Array.from({ length: L }, (_, i) => renewer.acquire(`bench:renew:${i}`, { ttlMs: RTTL })));
  await sleep(RTTL); // past everyone's first (possibly early) renewal
  const readsOf = async () => Number(/total_reads_processed:(\d+)/.exec(await raw.info('stats'))?.[1] ?? Number.NaN);
  const rs0 = await commandStats(raw);
  const reads0 = await readsOf();
  const renewWindowMs = 3 * RTTL;
  await sleep(renewWindowMs);
  const reads1 = await readsOf();
  const rsD = diffStats(rs0, await commandStats(raw));
  const renewalsMade = (rsD.evalsha ?? 0) + (rsD.eval ?? 0);
  const renewReads = reads1 - reads0 - 2; // minus the INFO commands' own reads (commandstats + stats)
  const allHeld = handles.every((h) => h.held);
  await Promise.all(handles.map((h) => h.release()));
  const perLockPerThird = renewalsMade / L / (renewWindowMs / (RTTL / 3));
  const locksPerRead = renewalsMade / Math.max(1, renewReads);
  ctx.log(`renewals: ${L} locks, TTL ${RTTL} ms, ${renewalsMade} EXTENDs in ${renewWindowMs} ms over ${renewReads} server reads (${locksPerRead.toFixed(1)} per read); all still held: ${allHeld}`);

  // ------------------------------------------------------------ node-redlock, defaults
  const rlSpec: WorkerSpec = { kind: 'redlock', url: server.url };
  const [ra, rb] = await Promise.all([BenchWorker.start('redlock-a', rlSpec, { cpu }), BenchWorker.start('redlock-b', rlSpec, { cpu })]);
  ctx.defer(() => ra.stop());
  ctx.defer(() => rb.stop());
  const RL = 'bench:redlock';
  if (!(await ra.call({ op: 'tryAcquire', name: RL, ttlMs: TTL_MS })).got) throw new Error(`${RL} is held by someone else`);
  const rlOpts = (samples: number, warmup: number): HandoffOptions => ({
    name: RL, ttlMs: TTL_MS, waitMs: 10_000, warmup, samples, pauseMs: [0, 300], budgetMs: 25_000,
    notifyBlocked: true, confirmBlocked: (w, id) => w.waitEvent(id, 'blocked', 5000),
  });
  const rlWarm = await pingPong([ra, rb], rlOpts(0, 2));
  const rlBefore = await commandStats(raw);
  const rl = await pingPong(rlWarm.holder === ra ? [ra, rb] : [rb, ra], rlOpts(scaled(ctx, 35, 8), 0));
  const rlStats = diffStats(rlBefore, await commandStats(raw));
  await rl.holder.call({ op: 'release', pauseMs: 0 });
  await Promise.all([ra.stop(), rb.stop()]);
  const rlHo = summarize(msOf(rl.samples));
  const rlReq = topLevel(rlStats) / rl.handoffs;
  ctx.log(`redlock handoff: p50 ${ms(rlHo.p50)} mean ${ms(rlHo.mean)} (n=${rlHo.n})`);

  // ------------------------------------------------------------ rows
  const spread = (x: { min: number; max: number }): [number, number] => [x.min, x.max];
  const rows: Row[] = [
    { section: S, figure: 'PING p50', value: allPing.p50, unit: 'ms', baseline: '—', ratio: null, target: '—', verdict: 'baseline', note: `ioredis, sequential, ${allPing.n} samples in ${ROUNDS} rounds` },
    { section: S, figure: 'PING p99', value: allPing.p99, unit: 'ms', baseline: base, ratio: allPing.p99 / allPing.p50, target: '—', verdict: 'baseline' },
    {
      section: S, figure: 'PING after 1-10 ms idle p50', value: allCold.p50, unit: 'ms', baseline: base, ratio: allCold.p50 / allPing.p50,
      target: '—', verdict: 'baseline', note: 'same client, one PING after a random idle pause: the cost of waking idle processes on this box',
    },
    {
      section: S, figure: 'minimal lock cycle p50', value: allMin.p50, unit: 'ms', baseline: base, ratio: minRatio.median, ratioSpread: spread(minRatio),
      target: '—', verdict: 'baseline', note: 'SET NX PX + Lua compare-DEL (no fencing, queue, index or events); anchor: redis-py 2.8× PING',
    },
    {
      section: S, figure: 'minimal fenced lock cycle p50', value: allFenced.p50, unit: 'ms', baseline: base, ratio: fencedRatio.median, ratioSpread: spread(fencedRatio),
      target: '—', verdict: 'baseline',
      note: `one Lua script: EXISTS, INCR of a counter that never expires, SET PX with the fence in the value; released by the same compare-DEL (no queue, index, owner or events); acquire+release is ${cycleVsFenced.median.toFixed(2)}× it`,
    },
    {
      section: S, figure: 'acquire+release p50', value: allCycle.p50, unit: 'ms', baseline: base, ratio: cycleRatio.median, ratioSpread: spread(cycleRatio),
      target: '≤ 2.4×', verdict: atMost(cycleRatio.median, 2.4),
      note: `${cycleVsMin.median.toFixed(2)}× the minimal lock cycle; server Lua ${luaCycleUs.toFixed(0)} µs of it (ACQUIRE ${us(cycleLua, 'ACQUIRE')} + RELEASE ${us(cycleLua, 'RELEASE')} µs p50, PING ${us(cycleLua, 'PING')} µs)`,
    },
    { section: S, figure: 'acquire+release p99', value: allCycle.p99, unit: 'ms', baseline: base, ratio: allCycle.p99 / allPing.p50, target: '—', verdict: 'info' },
    {
      section: S, figure: 'handoff p50', value: allHo.p50, unit: 'ms', baseline: base, ratio: hoRatio.median, ratioSpread: spread(hoRatio),
      target: '≤ 3×', verdict: atMost(hoRatio.median, 3),
      note:
        `${allHo.n} cross-process handoffs, holder pause 1-10 ms after the inspector shows the waiter; fences strictly increasing: ${fencesOk}. ` +
        `Critical path p50: holder t0→release sent ${ms(split.holderMs)}, sent→grant parsed in waiter ${ms(split.transitMs)} ` +
        `(server RELEASE+grant Lua ${us(handoffLua, 'RELEASE')} µs), grant→acquire resolved ${ms(split.waiterMs)}`,
    },
    { section: S, figure: 'handoff p99', value: allHo.p99, unit: 'ms', baseline: base, ratio: hoP99Ratio, target: '≤ 10×', verdict: atMost(hoP99Ratio, 10) },
    {
      section: S, figure: 'push floor p50 (PUBLISH→other process)', value: allFloor.p50, unit: 'ms', baseline: base, ratio: floorRatio.median,
      ratioSpread: spread(floorRatio), target: '—', verdict: 'baseline',
      note: `no lock: one PUBLISH from the "holder" reaching a subscriber in the other process, same harness and pauses; p99 ${ms(allFloor.p99)}; critical path p50: holder ${ms(floorSplit.holderMs)}, sent→received ${ms(floorSplit.transitMs)}, waiter ${ms(floorSplit.waiterMs)}`,
    },
    {
      section: S, figure: 'handoff p50 vs push floor', value: hoVsFloor.median, unit: '×', baseline: `floor p50 ${ms(allFloor.p50)}`,
      ratio: hoVsFloor.median, ratioSpread: spread(hoVsFloor), target: '—', verdict: 'info',
      note: `vs PING after idle: ${hoVsCold.median.toFixed(2)}× [${hoVsCold.min.toFixed(2)}–${hoVsCold.max.toFixed(2)}]`,
    },
    {
      section: S, figure: 'handoff p50, 0-300 ms pause', value: slowHo.p50, unit: 'ms', baseline: base, ratio: slowHo.p50 / allPing.p50,
      target: '(≤ 3×)', verdict: 'info', note: `same pauses as the redlock and redis-py rows (n=${slowHo.n} in ${SLOW_ROUNDS} rounds, interleaved with redis-py's); p99 ${ms(slowHo.p99)}`,
    },
    {
      section: S, figure: 'server requests / handoff', value: reqPerHandoff, unit: 'req', baseline: '—', ratio: null, target: '≤ 3',
      verdict: atMost(reqPerHandoff, 3),
      note: `INFO commandstats Δ of top-level lock commands (EVALSHA/EVAL/SUBSCRIBE...) over ${hoCount} handoffs; the workers' own count: ${(hoClientCmds / hoCount).toFixed(2)}`,
    },
    ...multi.flatMap((m): Row[] => [
      {
        section: S, figure: `requests / handoff, ${m.n} waiters`, value: m.requestsPerHandoff, unit: 'req', baseline: '—', ratio: null, target: '≤ 3',
        verdict: atMost(m.requestsPerHandoff, 3),
        note: `commandstats Δ over ${m.releases} releases (queue joins and re-checks included); workers' own count ${m.workerCommandsPerHandoff.toFixed(2)}; re-checks per release ${avg(m.rechecks).toFixed(2)}; handoff p50 ${ms(m.handoffMs.p50)}`,
      },
      {
        section: S, figure: `waiters woken / release (${m.n} waiting)`, value: avg(m.woken), unit: '', baseline: '—', ratio: null, target: '≤ 1',
        verdict: m.woken.length > 0 && m.woken.every((x) => x <= 1) ? 'pass' : 'FAIL',
        note: `pub/sub messages reaching any waiter process within 30 ms of a release; max ${Math.max(...m.woken)} over ${m.releases} releases; FIFO violations (all N): ${fifoViolations}`,
      },
    ]),
    ...throughput.map((t) => throughputRow(S, t, allHo.p50, `; ${t.requestsPerAcquisition.toFixed(2)} requests/acquisition`)),
    {
      section: S, figure: 'renewal: locks per server read', value: locksPerRead, unit: 'locks', baseline: '—', ratio: null, target: '≥ 50 (batched)',
      verdict: locksPerRead >= 50 && allHeld ? 'pass' : 'FAIL',
      note: `${L} locks held by one process, TTL ${RTTL} ms, ${renewWindowMs} ms: ${renewalsMade} EXTENDs over ${renewReads} server read events (INFO total_reads_processed); ${perLockPerThird.toFixed(2)} renewals per lock per TTL/3 (target ≤ 1); all still held: ${allHeld}`,
    },
    {
      section: S, figure: 'redlock handoff p50', value: rlHo.p50, unit: 'ms', baseline: base, ratio: rlHo.p50 / allPing.p50,
      target: 'anchor ~1,400×', verdict: 'info',
      note: `node-redlock ${ctx.versions.redlock} defaults (retry 200±100 ms), holder pause 0-300 ms; mean ${ms(rlHo.mean)} (anchor ~106 ms), p99 ${ms(rlHo.p99)}, n=${rlHo.n}, ${rlReq.toFixed(1)} requests/handoff`,
    },
    {
      section: S, figure: 'ours/redlock handoff p50', value: slowHo.p50 / rlHo.p50, unit: '×', baseline: `redlock p50 ${ms(rlHo.p50)}`,
      ratio: slowHo.p50 / rlHo.p50, target: '—', verdict: 'info',
      note: `same pauses both sides (0-300 ms): ours ${ms(slowHo.p50)} vs ${ms(rlHo.p50)} = ${(rlHo.p50 / slowHo.p50).toFixed(0)}× faster; with 1-10 ms pauses ${(rlHo.p50 / allHo.p50).toFixed(0)}×`,
    },
    ...(rpHo && oursVsRp
      ? [
          {
            section: S, figure: 'redis-py Lock handoff p50', value: rpHo.p50, unit: 'ms', baseline: base, ratio: rpHo.p50 / allPing.p50,
            target: '—', verdict: 'baseline',
            note:
              `redis-py ${rpv} redis.lock.Lock with its defaults (sleep 0.1 s between SET NX PX attempts; timeout ${TTL_MS / 1000} s, blocking_timeout 60 s), ` +
              `2 Python processes, holder pause 0-300 ms after the waiter's first failed attempt, n=${rpHo.n} in ${SLOW_ROUNDS} rounds interleaved with ours; ` +
              `mean ${ms(rpHo.mean)}; ${(rpSetsPerHandoff + 1).toFixed(1)} requests/handoff (${rpSetsPerHandoff.toFixed(2)} SET NX PX attempts + 1 release)`,
          },
          { section: S, figure: 'redis-py Lock handoff p99', value: rpHo.p99, unit: 'ms', baseline: base, ratio: rpHo.p99 / allPing.p50, target: '—', verdict: 'baseline' },
          {
            section: S, figure: 'lockdeck vs redis-py handoff', value: slowHo.p50, unit: 'ms', baseline: `redis-py p50 ${ms(rpHo.p50)}`,
            ratio: oursVsRp.median, ratioSpread: spread(oursVsRp), target: '—', verdict: 'info',
            note: `same pauses (0-300 ms), same rounds; median of per-round p50 ratios; p99 ours ${ms(slowHo.p99)} vs ${ms(rpHo.p99)}`,
          },
        ] satisfies Row[]
      : [{ section: S, figure: 'redis-py Lock handoff', value: null, unit: '', baseline: '—', ratio: null, target: '—', verdict: 'skip', note: `${PYTHON} cannot import redis` } satisfies Row]),
  ];
  ctx.rows.push(...rows);

  const perRound = (xs: number[][]) => xs.map((x) => r3(median(x)));
  ctx.details.redis = {
    server: { url: server.url, version: ctx.versions.redis },
    rounds: ROUNDS,
    ping: { pooled: round(allPing), perRoundP50: perRound(pings) },
    pingAfterIdle: { pooled: round(allCold), perRoundP50: perRound(colds) },
    minimalCycle: { pooled: round(allMin), perRoundP50: perRound(minimal), ratio: minRatio },
    fencedCycle: { pooled: round(allFenced), perRoundP50: perRound(fenced), ratio: fencedRatio },
    acquireRelease: { pooled: round(allCycle), perRoundP50: perRound(cycles), ratio: cycleRatio, vsMinimal: cycleVsMin },
    handoff: {
      pooled: round(allHo),
      perRoundP50: handoffs.map((h) => r3(median(msOf(h)))),
      perRoundP99: handoffs.map((h) => r3(percentile(msOf(h), 99))),
      ratioP50: hoRatio,
      ratioP99Pooled: hoP99Ratio,
      criticalPathP50: split,
      fencesIncrease: fencesOk,
      commandstatsDelta: hoStats,
      handoffsCounted: hoCount,
      requestsPerHandoff: reqPerHandoff,
      workerCommandsPerHandoff: hoClientCmds / hoCount,
    },
    pushFloor: { pooled: round(allFloor), perRoundP50: floors.map((h) => r3(median(msOf(h)))), criticalPathP50: floorSplit, vsPing: floorRatio },
    handoffVsFloor: hoVsFloor,
    handoffVsPingAfterIdle: hoVsCold,
    serverLuaMicros: { cycle: cycleLua, handoff: handoffLua },
    handoffSlowPause: { pooled: round(slowHo), perRoundP50: slowRounds.map((h) => r3(median(msOf(h)))) },
    redisPy: rpHo
      ? { version: rpv, pooled: round(rpHo), perRoundP50: perRound(rpRounds), oursVsRedisPy: oursVsRp, setAttemptsPerHandoff: rpSetsPerHandoff, commandstatsDelta: rpStats, handoffs: rpHandoffs }
      : null,
    multiWaiter: { fifoViolations, byWaiters: multi },
    throughput,
    renewal: { locks: L, ttlMs: RTTL, windowMs: renewWindowMs, extends: renewalsMade, serverReads: renewReads, locksPerRead, renewalsPerLockPerThird: perLockPerThird, allHeld },
    redlock: { pooled: round(rlHo), requestsPerHandoff: rlReq, commandstatsDelta: rlStats, handoffs: rl.handoffs },
  };
}
