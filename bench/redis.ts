/**
 * Redis section, all on one throwaway redis-server started here (scripts/servers.ts startRedis()):
 *
 *  - baselines: PING (ioredis, sequential, hot loop) — the baseline the targets are written
 *    against —, PING after 1-10 ms idle, a minimal lock cycle (SET NX PX + Lua compare-DEL), and
 *    the push floor (one PUBLISH reaching a subscriber in another process, same harness as ours);
 *  - ours: uncontended acquire+release, cross-process handoff (with a breakdown of its critical
 *    path), server requests per handoff, waiters woken per release, server-side Lua time per script;
 *  - node-redlock's polling handoff with its defaults, same harness.
 *
 * Method (perf-reliability-anchors.md §5, §6): baselines and candidates run in R interleaved
 * rounds; p50 ratios are the median of per-round ratios, shown with their spread; p99 ratios use
 * the pooled samples. Every block is warmed up; every loop is bounded by count and time.
 */
import { createHash } from 'node:crypto';

import { Redis } from 'ioredis';

import { createRedisBackend } from '../lib/backends/redis/index';
import * as luaScripts from '../lib/backends/redis/scripts';
import { startRedis } from '../scripts/servers';
import { packageVersion, scaled, type BenchContext } from './lib/context';
import { breakdown, fencesIncrease, pingPong, type HandoffOptions, type HandoffSample, waitForWaiters } from './lib/handoff';
import { pin } from './lib/machine';
import type { WorkerSpec } from './lib/protocol';
import { atMost, ms, type Row } from './lib/report';
import { measure, median, pairedRatio, percentile, sleep, summarize, uniform, type Summary } from './lib/stats';
import { BenchWorker, sumCounters } from './lib/workers';

const TTL_MS = 30_000;
/** Top-level commands a lock client sends; Lua-internal calls and the inspector's reads have other names. */
const TOP_LEVEL = ['evalsha', 'eval', 'evalsha_ro', 'eval_ro', 'fcall', 'subscribe', 'unsubscribe', 'psubscribe', 'punsubscribe', 'ssubscribe', 'sunsubscribe'];
const COMPARE_DEL = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

type CmdStats = Map<string, number>;

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
  const compareDel = (raw as unknown as { benchCompareDel(k: string, v: string): Promise<number> }).benchCompareDel.bind(raw);
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
    cycles.push(c);
    handoffs.push(ho.samples);
    floors.push(fl.samples);
    ctx.log(
      `round ${r + 1}/${ROUNDS}: PING ${ms(median(p))} (after idle ${ms(median(cold))}), minimal cycle ${ms(median(m))}, ` +
        `acquire+release ${ms(median(c))}, handoff ${ms(median(msOf(ho.samples)))}, push floor ${ms(median(msOf(fl.samples)))}`,
    );
  }
  await Promise.all([fa.stop(), fb.stop()]);

  const allPing = summarize(pings.flat());
  const allCold = summarize(colds.flat());
  const allMin = summarize(minimal.flat());
  const allCycle = summarize(cycles.flat());
  const allHo = summarize(msOf(handoffs.flat()));
  const allFloor = summarize(msOf(floors.flat()));
  const pingP50s = pings.map(median);
  const cycleRatio = pairedRatio(cycles.map(median), pingP50s);
  const minRatio = pairedRatio(minimal.map(median), pingP50s);
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

  // ------------------------------------------------------------ same pauses as redlock (0-300 ms)
  const slow = await pingPong(pair, ours({ warmup: 2, samples: scaled(ctx, 40, 10), pauseMs: [0, 300], budgetMs: 20_000 }));
  pair = slow.holder === wa ? [wa, wb] : [wb, wa];
  const slowHo = summarize(msOf(slow.samples));
  ctx.log(`handoff after 0-300 ms pauses: p50 ${ms(slowHo.p50)} p99 ${ms(slowHo.p99)} (n=${slowHo.n})`);

  // ------------------------------------------------------------ several waiters: who wakes per release
  const [wc, wd] = await Promise.all([BenchWorker.start('lockdeck-c', spec, { cpu }), BenchWorker.start('lockdeck-d', spec, { cpu })]);
  ctx.defer(() => wc.stop());
  ctx.defer(() => wd.stop());
  const all = [wa, wb, wc, wd];
  const wakeRounds = scaled(ctx, 8, 2);
  const woken: number[] = [];
  const multiClient: number[] = [];
  const multiServer: number[] = [];
  const multiMs: number[] = [];
  const multiStats: Record<string, number> = {};
  let fifoViolations = 0;
  let holder = pair[0];
  // Round 0 warms the new workers up (their first SUBSCRIBE, script load) and is not counted.
  for (let rnd = 0; rnd <= wakeRounds; rnd++) {
    const counted = rnd > 0;
    const queue = all.filter((w) => w !== holder);
    const roundBefore = sumCounters(await Promise.all(all.map((w) => w.counters())));
    const roundStats = await commandStats(raw);
    const pending = new Map<BenchWorker, ReturnType<BenchWorker['request']>>();
    for (let k = 0; k < queue.length; k++) {
      const w = queue[k]!;
      const req = w.request({ op: 'acquire', name: HO, ttlMs: TTL_MS, waitMs: 10_000 }, 15_000);
      req.reply.catch(() => undefined); // awaited below
      pending.set(w, req);
      await waitForWaiters(inspector, HO, k + 1); // queue order = request order
    }
    while (pending.size > 0) {
      await sleep(uniform(1, 10));
      const before = await Promise.all(all.map((w) => w.counters()));
      const rel = await holder.call({ op: 'release', pauseMs: 0 });
      const entries = [...pending.entries()];
      const winner = await Promise.race(entries.map(([w, req]) => req.reply.then((rep) => ({ w, rep }))));
      await sleep(30); // time for any other (wrongly) woken waiter to act
      const after = await Promise.all(all.map((w) => w.counters()));
      if (counted) {
        if (winner.w !== entries[0]![0]) fifoViolations++; // FIFO: the oldest waiter gets it
        let n = 0;
        all.forEach((w, i) => {
          const moved = after[i]!.commands !== before[i]!.commands || after[i]!.messages !== before[i]!.messages;
          if (w !== holder && moved) n++;
        });
        woken.push(n);
        if (rel.t0 !== undefined && winner.rep.t1 !== undefined) multiMs.push(winner.rep.t1 - rel.t0);
      }
      pending.delete(winner.w);
      holder = winner.w;
    }
    // Requests per handoff over the whole round: queue joins, releases, top-ups, anything else.
    const roundAfter = sumCounters(await Promise.all(all.map((w) => w.counters())));
    const d = diffStats(roundStats, await commandStats(raw));
    if (!counted) continue;
    addInto(multiStats, d);
    multiClient.push((roundAfter.commands - roundBefore.commands) / queue.length);
    multiServer.push(topLevel(d) / queue.length);
  }
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const wokenMax = Math.max(...woken);
  ctx.log(`3 waiters: woken per release mean ${avg(woken).toFixed(2)} max ${wokenMax}; requests/handoff ${avg(multiServer).toFixed(2)}`);
  await holder.call({ op: 'release', pauseMs: 0 }); // leave the lock free
  await Promise.all(all.map((w) => w.stop()));

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
      target: '(≤ 3×)', verdict: 'info', note: `same pauses as the redlock row (n=${slowHo.n}); p99 ${ms(slowHo.p99)}`,
    },
    {
      section: S, figure: 'server requests / handoff', value: reqPerHandoff, unit: 'req', baseline: '—', ratio: null, target: '≤ 3',
      verdict: atMost(reqPerHandoff, 3),
      note: `INFO commandstats Δ of top-level lock commands (EVALSHA/EVAL/SUBSCRIBE...) over ${hoCount} handoffs; the workers' own count: ${(hoClientCmds / hoCount).toFixed(2)}`,
    },
    {
      section: S, figure: 'requests / handoff, 3 waiters', value: avg(multiServer), unit: 'req', baseline: '—', ratio: null, target: '≤ 3',
      verdict: atMost(avg(multiServer), 3),
      note: `commandstats Δ over ${woken.length} releases (queue joins included); workers' own count ${avg(multiClient).toFixed(2)}; FIFO violations: ${fifoViolations}`,
    },
    {
      section: S, figure: 'waiters woken / release (3 waiting)', value: avg(woken), unit: '', baseline: '—', ratio: null, target: '= 1',
      verdict: woken.length > 0 && woken.every((n) => n === 1) ? 'pass' : 'FAIL',
      note: `waiter processes that received a message or sent a request within 30 ms of a release; max ${wokenMax} over ${woken.length} releases`,
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
  ];
  ctx.rows.push(...rows);

  const perRound = (xs: number[][]) => xs.map((x) => r3(median(x)));
  ctx.details.redis = {
    server: { url: server.url, version: ctx.versions.redis },
    rounds: ROUNDS,
    ping: { pooled: round(allPing), perRoundP50: perRound(pings) },
    pingAfterIdle: { pooled: round(allCold), perRoundP50: perRound(colds) },
    minimalCycle: { pooled: round(allMin), perRoundP50: perRound(minimal), ratio: minRatio },
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
    handoffSlowPause: { pooled: round(slowHo) },
    multiWaiter: {
      waiters: 3,
      releases: woken.length,
      woken,
      requestsPerHandoff: avg(multiServer),
      workerCommandsPerHandoff: avg(multiClient),
      handoffMs: round(summarize(multiMs)),
      fifoViolations,
      commandstatsDelta: multiStats,
    },
    redlock: { pooled: round(rlHo), requestsPerHandoff: rlReq, commandstatsDelta: rlStats, handoffs: rl.handoffs },
  };
}
