/**
 * etcd section, on one throwaway etcd member started here (scripts/etcd-server.ts startEtcd()):
 *
 *  - baselines: a serializable Range round trip, and the raw Go-mutex cycle on a pre-granted
 *    lease: the acquire Txn (put-if-absent `<name>/<lease hex>` + read of the first-created key)
 *    followed by a Delete;
 *  - ours: uncontended acquire+release (tryAcquire + release, autoRenew false), in this process;
 *  - handoff between two worker processes (bench/lib/handoff.ts), ours (watch from the Txn
 *    revision + 1) against the same library with `goStyleWatch` (watch the predecessor from the
 *    Range's header revision, as Go's key.go waitDeletes does), holds of 1-10 ms after the waiter
 *    is seen queued: the short-hold case where Go's unsynced watcher waits for etcd's 100 ms loop.
 *
 * Baselines and our cycle run in R interleaved rounds; ratios are the median of per-round ratios
 * with their spread. Both handoff variants are interleaved per round. Every loop is bounded by
 * count and time.
 */
import { Etcd3 } from 'etcd3';

import { createEtcdBackend } from '../lib/backends/etcd/index';
import { contenderKey, prefixEnd } from '../lib/backends/etcd/layout';
import { startEtcd } from '../scripts/etcd-server';
import { packageVersion, scaled, type BenchContext } from './lib/context';
import { fencesIncrease, pingPong, type HandoffSample, waitForWaiters } from './lib/handoff';
import { pin } from './lib/machine';
import type { WorkerSpec } from './lib/protocol';
import { atMost, ms, type Row } from './lib/report';
import { measure, median, pairedRatio, summarize } from './lib/stats';
import { BenchWorker } from './lib/workers';

const TTL_MS = 30_000;

export async function etcdSection(ctx: BenchContext): Promise<void> {
  const S = 'etcd';
  const server = await startEtcd();
  try {
    if (ctx.pin && server.process.pid) pin(server.process.pid, ctx.pin.server);
    ctx.log(`etcd on ${server.url} (pid ${server.process.pid})`);
    ctx.versions.etcd3 = packageVersion('etcd3');
    ctx.versions['etcd-server'] = '3.4 (Debian)';
    await runSection(ctx, S, server.endpoints);
  } finally {
    await server.stop();
  }
}

async function runSection(ctx: BenchContext, S: string, endpoints: string[]): Promise<void> {
  const root = `/bench-${Math.random().toString(36).slice(2, 10)}`;
  const config = { id: 'bench-etcd', type: 'etcd' as const, endpoints, prefixes: [root] };
  const client = new Etcd3({ hosts: endpoints });
  const cleanups: (() => unknown)[] = [() => client.close()];
  try {
    const backend = createEtcdBackend(config);
    cleanups.push(() => backend.close());
    const inspector = createEtcdBackend({ ...config, id: 'bench-etcd-inspector' });
    cleanups.push(() => inspector.close());

    const lease = await client.leaseClient.leaseGrant({ TTL: 60, ID: 0 });
    cleanups.push(() => client.leaseClient.leaseRevoke({ ID: lease.ID }).catch(() => undefined));
    const RAW = `${root}/raw`;
    const rawKey = Buffer.from(contenderKey(RAW, lease.ID));
    const rawPfx = Buffer.from(`${RAW}/`);
    const CYCLE = `${root}/cycle`;

    const range = () => client.kv.range({ key: Buffer.from(`${root}/ping`), serializable: true });
    const rawCycle = async () => {
      const r = await client.kv.txn({
        compare: [{ key: rawKey, target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [
          { request_put: { key: rawKey, value: Buffer.alloc(0), lease: lease.ID } },
          { request_range: { key: rawPfx, range_end: prefixEnd(rawPfx), sort_order: 'Ascend', sort_target: 'Create', keys_only: true, limit: 1 } },
        ],
        failure: [],
      });
      if (!r.succeeded) throw new Error('raw cycle key unexpectedly present');
      await client.kv.deleteRange({ key: rawKey });
    };
    const ourCycle = async () => {
      const h = await backend.tryAcquire(CYCLE, { ttlMs: TTL_MS, autoRenew: false });
      if (!h) throw new Error(`${CYCLE} unexpectedly held`);
      await h.release();
    };

    // ---------------------------------------------------------- interleaved rounds: baselines vs ours
    const ROUNDS = 5;
    const rangeN = scaled(ctx, 400, 50);
    const cycleN = scaled(ctx, 250, 40);
    const rng: number[][] = [];
    const raw: number[][] = [];
    const ours: number[][] = [];
    for (let r = -1; r < ROUNDS; r++) {
      const first = r === -1;
      const e = await measure(range, { warmup: first ? 500 : 50, samples: rangeN, maxMs: 3000 });
      let a: number[];
      let b: number[];
      if (r % 2 === 0) {
        a = await measure(rawCycle, { warmup: first ? 200 : 20, samples: cycleN, maxMs: 3000 });
        b = await measure(ourCycle, { warmup: first ? 200 : 20, samples: cycleN, maxMs: 3000 });
      } else {
        b = await measure(ourCycle, { warmup: first ? 200 : 20, samples: cycleN, maxMs: 3000 });
        a = await measure(rawCycle, { warmup: first ? 200 : 20, samples: cycleN, maxMs: 3000 });
      }
      if (first) {
        ctx.log(`warm-up round: range ${ms(median(e))}, raw cycle ${ms(median(a))}, acquire+release ${ms(median(b))} (discarded)`);
        continue;
      }
      rng.push(e);
      raw.push(a);
      ours.push(b);
      ctx.log(`round ${r + 1}/${ROUNDS}: range ${ms(median(e))}, raw cycle ${ms(median(a))}, acquire+release ${ms(median(b))}`);
    }
    const allRange = summarize(rng.flat());
    const allRaw = summarize(raw.flat());
    const allOurs = summarize(ours.flat());
    const oursVsRange = pairedRatio(ours.map(median), rng.map(median));
    const oursVsRaw = pairedRatio(ours.map(median), raw.map(median));
    const rawVsRange = pairedRatio(raw.map(median), rng.map(median));

    // ---------------------------------------------------------- handoffs: ours vs Go-style watch start
    const cpu = ctx.pin?.clients;
    const specOurs: WorkerSpec = { kind: 'lockdeck', backend: 'etcd', config: { ...config } };
    const specGo: WorkerSpec = { kind: 'lockdeck', backend: 'etcd', config: { ...config }, options: { goStyleWatch: true } };
    const workers = await Promise.all([
      BenchWorker.start('etcd-a', specOurs, { cpu }), BenchWorker.start('etcd-b', specOurs, { cpu }),
      BenchWorker.start('etcd-go-a', specGo, { cpu }), BenchWorker.start('etcd-go-b', specGo, { cpu }),
    ]);
    for (const w of workers) cleanups.push(() => w.stop());
    const [wa, wb, ga, gb] = workers as [BenchWorker, BenchWorker, BenchWorker, BenchWorker];
    const HO = `${root}/handoff`;
    const HOGO = `${root}/handoff-go`;
    if (!(await wa.call({ op: 'tryAcquire', name: HO, ttlMs: TTL_MS })).got) throw new Error(`${HO} is held by someone else`);
    if (!(await ga.call({ op: 'tryAcquire', name: HOGO, ttlMs: TTL_MS })).got) throw new Error(`${HOGO} is held by someone else`);
    let pair: [BenchWorker, BenchWorker] = [wa, wb];
    let goPair: [BenchWorker, BenchWorker] = [ga, gb];

    const HO_ROUNDS = 3;
    const hoN = scaled(ctx, 40, 10);
    const oursHo: HandoffSample[][] = [];
    const goHo: HandoffSample[][] = [];
    for (let r = -1; r < HO_ROUNDS; r++) {
      const first = r === -1;
      const common = { ttlMs: TTL_MS, waitMs: 10_000, warmup: first ? 5 : 2, samples: first ? 0 : hoN, pauseMs: [1, 10] as [number, number], budgetMs: 8000 };
      const ho = await pingPong(pair, { ...common, name: HO, confirmBlocked: () => waitForWaiters(inspector, HO, 1) });
      pair = ho.holder === wa ? [wa, wb] : [wb, wa];
      const go = await pingPong(goPair, { ...common, name: HOGO, confirmBlocked: () => waitForWaiters(inspector, HOGO, 1) });
      goPair = go.holder === ga ? [ga, gb] : [gb, ga];
      if (first) continue;
      oursHo.push(ho.samples);
      goHo.push(go.samples);
      ctx.log(`handoff round ${r + 1}/${HO_ROUNDS}: ours ${ms(median(ho.samples.map((s) => s.ms)))}, go-style ${ms(median(go.samples.map((s) => s.ms)))}`);
    }
    const allHo = summarize(oursHo.flat().map((s) => s.ms));
    const allGo = summarize(goHo.flat().map((s) => s.ms));
    const hoVsGo = pairedRatio(oursHo.map((h) => median(h.map((s) => s.ms))), goHo.map((h) => median(h.map((s) => s.ms))));
    const fencesOk = fencesIncrease(oursHo.flat()) && fencesIncrease(goHo.flat());

    // ---------------------------------------------------------- rows
    const rangeLabel = `serializable range p50 ${ms(allRange.p50)}`;
    const rawLabel = `raw Txn+Delete p50 ${ms(allRaw.p50)}`;
    const rows: Row[] = [
      { section: S, figure: 'serializable Range round trip p50', value: allRange.p50, unit: 'ms', baseline: '—', ratio: null, target: '—', verdict: 'baseline', note: `n=${allRange.n}, p99 ${ms(allRange.p99)}` },
      {
        section: S, figure: 'raw cycle p50 (acquire Txn + Delete)', value: allRaw.p50, unit: 'ms', baseline: rangeLabel,
        ratio: rawVsRange.median, ratioSpread: [rawVsRange.min, rawVsRange.max], target: '—', verdict: 'baseline', note: `n=${allRaw.n}, p99 ${ms(allRaw.p99)}`,
      },
      {
        section: S, figure: 'acquire+release p50 vs range', value: allOurs.p50, unit: 'ms', baseline: rangeLabel,
        ratio: oursVsRange.median, ratioSpread: [oursVsRange.min, oursVsRange.max], target: '—', verdict: 'info',
        note: `tryAcquire + release, autoRenew false, n=${allOurs.n}, p99 ${ms(allOurs.p99)}`,
      },
      {
        section: S, figure: 'acquire+release p50 vs raw cycle', value: allOurs.p50, unit: 'ms', baseline: rawLabel,
        ratio: oursVsRaw.median, ratioSpread: [oursVsRaw.min, oursVsRaw.max], target: '≤ 1.1×', verdict: atMost(oursVsRaw.median, 1.1),
      },
      {
        section: S, figure: 'Go-style handoff p50 (watch at header rev)', value: allGo.p50, unit: 'ms', baseline: rangeLabel, ratio: allGo.p50 / allRange.p50, target: '—', verdict: 'baseline',
        note: `2 workers, goStyleWatch, holds 1-10 ms, n=${allGo.n}, p99 ${ms(allGo.p99)}`,
      },
      {
        section: S, figure: 'handoff p50', value: allHo.p50, unit: 'ms', baseline: rangeLabel, ratio: allHo.p50 / allRange.p50, target: '—', verdict: 'info',
        note: `cross-process (2 workers), holds 1-10 ms, n=${allHo.n}, p99 ${ms(allHo.p99)}, fences increasing: ${fencesOk}`,
      },
      {
        section: S, figure: 'handoff p50 vs Go-style', value: allHo.p50, unit: 'ms', baseline: `go-style p50 ${ms(allGo.p50)}`,
        ratio: hoVsGo.median, ratioSpread: [hoVsGo.min, hoVsGo.max], target: '≤ 0.1×', verdict: atMost(hoVsGo.median, 0.1),
      },
      { section: S, figure: 'etcdctl lock / etcd3 npm Lock peers', value: null, unit: '', baseline: '—', ratio: null, target: '—', verdict: 'skip', note: 'not measured yet (npm Lock never waits: no handoff to time)' },
    ];
    ctx.rows.push(...rows);
    ctx.details.etcd = {
      range: allRange, rawCycle: allRaw, acquireRelease: allOurs, ratios: { oursVsRange, oursVsRaw, rawVsRange },
      handoff: allHo, goStyleHandoff: allGo, handoffVsGoStyle: hoVsGo, fencesIncrease: fencesOk,
      perRound: { range: rng.map(median), raw: raw.map(median), ours: ours.map(median) },
    };
  } finally {
    while (cleanups.length) {
      try {
        await cleanups.pop()!();
      } catch (err) {
        ctx.log(`etcd cleanup: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}
