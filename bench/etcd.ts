/**
 * etcd section, on one throwaway etcd member started here (scripts/etcd-server.ts startEtcd()):
 *
 *  - baselines: a serializable Range round trip, and the raw Go-mutex cycle on a pre-granted
 *    lease: the acquire Txn (put-if-absent `<name>/<lease hex>` + read of the first-created key)
 *    followed by a Delete;
 *  - ours: uncontended acquire+release (tryAcquire + release, autoRenew false), in this process;
 *  - handoff between two worker processes (bench/lib/handoff.ts), ours (watch the predecessor from
 *    the revision after it was seen) against the same library with `goStyleWatch` (watch the
 *    predecessor from the Range's header revision, as Go's key.go waitDeletes does), holds of
 *    1-10 ms after the waiter is seen queued: the short-hold case where Go's unsynced watcher
 *    waits for etcd's 100 ms loop;
 *  - peers: microsoft/etcd3's `Lock` acquire+release (LeaseGrant + Txn + LeaseRevoke; it never
 *    waits, so it has no handoff), and `etcdctl lock` handoffs (etcdctl → etcdctl, and ours →
 *    a waiting etcdctl), timed to the waiter printing its key, same holds;
 *  - N = 2, 16, 128 waiters queued on one lock, the lock handed down the queue: etcd's own
 *    counters (/metrics, grpc_server_*_total by method) around each release give the unary
 *    requests per handoff and the watch notifications sent per release (waiters woken).
 *
 * Baselines, our cycle and the npm Lock cycle run in R interleaved rounds; ratios are the median of per-round ratios
 * with their spread. Both handoff variants are interleaved per round. Every loop is bounded by
 * count and time.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

import { Etcd3 } from 'etcd3';

import { createEtcdBackend, type EtcdBackendConfig, type EtcdLockBackend } from '../lib/backends/etcd/index';
import type { LockHandle } from '../lib/locks/types';
import { contenderKey, prefixEnd } from '../lib/backends/etcd/layout';
import { startEtcd } from '../scripts/etcd-server';
import { packageVersion, scaled, type BenchContext } from './lib/context';
import { contendedThroughput, fencesIncrease, pingPong, throughputRow, type HandoffSample, type ThroughputResult, waitForWaiters } from './lib/handoff';
import { pin } from './lib/machine';
import type { WorkerSpec } from './lib/protocol';
import { atMost, ms, type Row } from './lib/report';
import { mean, measure, median, pairedRatio, sleep, summarize, uniform, withTimeout } from './lib/stats';
import { BenchWorker } from './lib/workers';
import { etcdRenewal } from './renewal';

const TTL_MS = 30_000;

export async function etcdSection(ctx: BenchContext): Promise<void> {
  const S = 'etcd';
  const server = await startEtcd();
  try {
    if (ctx.pin && server.process.pid) pin(server.process.pid, ctx.pin.server);
    ctx.log(`etcd on ${server.url} (pid ${server.process.pid})`);
    ctx.versions.etcd3 = packageVersion('etcd3');
    ctx.versions['etcd-server'] = '3.4 (Debian)';
    await runSection(ctx, S, server.endpoints, server.url);
  } finally {
    await server.stop();
  }
}

async function runSection(ctx: BenchContext, S: string, endpoints: string[], url: string): Promise<void> {
  const root = `/bench-${Math.random().toString(36).slice(2, 10)}`;
  const config: EtcdBackendConfig = { id: 'bench-etcd', type: 'etcd', endpoints, prefixes: [root] };
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
    const NPM = `${root}/npm-lock`;
    // microsoft/etcd3's own Lock: LeaseGrant + Txn, released by LeaseRevoke; it never waits.
    const npmCycle = async () => {
      const l = client.lock(NPM).ttl(TTL_MS / 1000);
      await l.acquire();
      await l.release();
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
    const npm: number[][] = [];
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
      const c = await measure(npmCycle, { warmup: first ? 100 : 10, samples: cycleN, maxMs: 3000 });
      if (first) {
        ctx.log(`warm-up round: range ${ms(median(e))}, raw cycle ${ms(median(a))}, acquire+release ${ms(median(b))}, npm Lock ${ms(median(c))} (discarded)`);
        continue;
      }
      rng.push(e);
      raw.push(a);
      ours.push(b);
      npm.push(c);
      ctx.log(`round ${r + 1}/${ROUNDS}: range ${ms(median(e))}, raw cycle ${ms(median(a))}, acquire+release ${ms(median(b))}, npm Lock ${ms(median(c))}`);
    }
    const allRange = summarize(rng.flat());
    const allRaw = summarize(raw.flat());
    const allOurs = summarize(ours.flat());
    const oursVsRange = pairedRatio(ours.map(median), rng.map(median));
    const oursVsRaw = pairedRatio(ours.map(median), raw.map(median));
    const rawVsRange = pairedRatio(raw.map(median), rng.map(median));
    const allNpm = summarize(npm.flat());
    const npmVsRange = pairedRatio(npm.map(median), rng.map(median));
    const oursVsNpm = pairedRatio(ours.map(median), npm.map(median));

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
    for (const w of workers) await w.call({ op: 'release', pauseMs: 0 }).catch(() => undefined);

    // ---------------------------------------------------------- throughput on one contended lock
    // 2 contenders (one per process) and 16 (eight per process); see contendedThroughput.
    const throughput: ThroughputResult[] = [];
    for (const c of [2, 16]) {
      const t = await contendedThroughput(
        Array.from({ length: c }, (_, k) => ({ w: [wa, wb][k % 2]!, slot: 100 + c + Math.floor(k / 2) })),
        { name: `${root}/throughput`, ttlMs: TTL_MS, durationMs: scaled(ctx, 3000, 1000) },
      );
      throughput.push(t);
      ctx.log(`throughput, ${c} contenders: ${t.perSec.toFixed(0)}/s (${t.acquisitions}), overlaps ${t.overlaps}, fences increasing ${t.fencesIncrease}`);
    }

    // ---------------------------------------------------------- etcdctl lock peers
    const peers = await etcdctlHandoffs(ctx, endpoints, backend, inspector, `${root}/ctl`, scaled(ctx, 15, 5), 40_000);
    const toCtl = summarize(peers.oursToCtl);
    const ctlCtl = summarize(peers.ctlToCtl);

    // ---------------------------------------------------------- N waiters: server requests, wake-ups
    const wakes: WakeResult[] = [];
    for (const n of [2, 16, 128]) wakes.push(await wakeCounts(ctx, url, config, inspector, root, n, Math.min(n, scaled(ctx, 8, 3))));

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
      {
        section: S, figure: 'etcd3 npm Lock acquire+release p50', value: allNpm.p50, unit: 'ms', baseline: rangeLabel,
        ratio: npmVsRange.median, ratioSpread: [npmVsRange.min, npmVsRange.max], target: '—', verdict: 'baseline',
        note: `microsoft/etcd3 1.1.2 Lock: LeaseGrant + Txn, release = LeaseRevoke; it never waits (a held lock throws), so it has no handoff to time; n=${allNpm.n}, p99 ${ms(allNpm.p99)}`,
      },
      {
        section: S, figure: 'acquire+release p50 vs etcd3 npm Lock', value: allOurs.p50, unit: 'ms', baseline: `npm Lock p50 ${ms(allNpm.p50)}`,
        ratio: oursVsNpm.median, ratioSpread: [oursVsNpm.min, oursVsNpm.max], target: '—', verdict: 'info',
      },
      {
        section: S, figure: 'etcdctl lock → etcdctl lock handoff p50', value: ctlCtl.p50, unit: 'ms', baseline: rangeLabel, ratio: ctlCtl.p50 / allRange.p50, target: '—', verdict: 'baseline',
        note: `Go concurrency.Mutex both sides (etcd 3.4 etcdctl): SIGTERM to the holder → the waiter prints its key; holds 1-10 ms after the waiter is seen queued; includes the holder's signal handling, Unlock and session close; n=${ctlCtl.n}, p99 ${ms(ctlCtl.p99)}`,
      },
      {
        section: S, figure: 'ours → etcdctl lock handoff p50', value: toCtl.p50, unit: 'ms', baseline: rangeLabel, ratio: toCtl.p50 / allRange.p50, target: '—', verdict: 'baseline',
        note: `lockdeck holder (this process) releases, a waiting etcdctl lock (Go's watch from the header revision) prints its key; holds 1-10 ms; n=${toCtl.n}, p99 ${ms(toCtl.p99)}`,
      },
      {
        section: S, figure: 'handoff p50 vs etcdctl lock', value: allHo.p50, unit: 'ms', baseline: `etcdctl→etcdctl p50 ${ms(ctlCtl.p50)}`, ratio: allHo.p50 / ctlCtl.p50, target: '—', verdict: 'info',
      },
      ...throughput.map((t) => throughputRow(S, t, allHo.p50, ' (two processes)')),
      ...wakes.flatMap((w): Row[] => [
        {
          section: S, figure: `server requests per handoff (${w.n} waiters)`, value: mean(w.unary), unit: 'req', baseline: '—', ratio: null, target: '≤ 3', verdict: atMost(Math.max(...w.unary), 3),
          note: `unary RPCs handled by etcd (grpc_server_handled_total Δ) from release() to the next holder settled, ${w.releases} releases, max ${Math.max(...w.unary)}; ` +
            `besides: watch create/cancel messages ${mean(w.watchMsgs).toFixed(2)}/handoff, watch streams opened ${mean(w.streamsStarted).toFixed(2)} / ended ${mean(w.streamsEnded).toFixed(2)}; ` +
            `by method: ${Object.entries(w.byMethod).map(([k, v]) => `${k} ${(v / w.releases).toFixed(2)}`).join(', ')}`,
        },
        {
          section: S, figure: `waiters woken per release (${w.n} waiters)`, value: mean(w.notifications), unit: '', baseline: '—', ratio: null, target: '≤ 1', verdict: atMost(Math.max(...w.notifications), 1),
          note: `watch notifications etcd sent per release (grpc_server_msg_sent_total − msg_received_total for Watch: responses that are not create/cancel answers), max ${Math.max(...w.notifications)}; handoff p50 ${ms(median(w.handoffMs))}`,
        },
      ]),
    ];
    ctx.rows.push(...rows);
    await etcdRenewal(ctx, S);
    ctx.details.etcd = {
      range: allRange, rawCycle: allRaw, acquireRelease: allOurs, ratios: { oursVsRange, oursVsRaw, rawVsRange },
      handoff: allHo, goStyleHandoff: allGo, handoffVsGoStyle: hoVsGo, fencesIncrease: fencesOk,
      npmLock: allNpm, etcdctlToEtcdctl: ctlCtl, oursToEtcdctl: toCtl, wakes, throughput,
      perRound: { range: rng.map(median), raw: raw.map(median), ours: ours.map(median), npm: npm.map(median) },
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

// ------------------------------------------------------------------------------------------------
// Server-side counters (etcd's /metrics, Prometheus text): gRPC RPCs handled and stream messages
// by method.

type Counters = Map<string, number>;

async function serverCounters(url: string): Promise<Counters> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  const out: Counters = new Map();
  for (const line of text.split('\n')) {
    const m = /^(grpc_server_(?:handled|started|msg_received|msg_sent)_total)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const method = /grpc_method="(\w+)"/.exec(m[2]!)?.[1];
    if (!method) continue;
    const k = `${m[1]!.replace(/^grpc_server_|_total$/g, '')}:${method}`;
    out.set(k, (out.get(k) ?? 0) + Number(m[3]));
  }
  return out;
}

function delta(a: Counters, b: Counters): Counters {
  const d: Counters = new Map();
  for (const [k, v] of b) if (v - (a.get(k) ?? 0) !== 0) d.set(k, v - (a.get(k) ?? 0));
  return d;
}

const STREAMS = new Set(['Watch', 'LeaseKeepAlive']);
/** Unary RPCs handled (Range, Txn, DeleteRange, LeaseGrant, ...): the requests a handoff costs. */
const unaryRpcs = (d: Counters) => [...d].filter(([k]) => k.startsWith('handled:') && !STREAMS.has(k.slice(8))).reduce((s, [, v]) => s + v, 0);
const get = (d: Counters, k: string) => d.get(k) ?? 0;

// ------------------------------------------------------------------------------------------------
// `etcdctl lock` peers (Go's concurrency.Mutex, session TTL 10 s): it prints the key when it holds
// the lock and holds it until it gets SIGTERM/SIGINT, then unlocks (lock_command.go).

class Etcdctl {
  readonly proc: ChildProcessWithoutNullStreams;
  /** performance.now() when the key line came (the lock is held). */
  heldAt: number | null = null;
  key: string | null = null;
  private exited: Promise<void>;
  private onHeld: (() => void) | null = null;
  constructor(endpoints: string[], name: string) {
    this.proc = spawn('etcdctl', [`--endpoints=${endpoints.join(',')}`, 'lock', name], { env: { ...process.env, ETCDCTL_API: '3' } });
    createInterface({ input: this.proc.stdout }).on('line', (l) => {
      if (this.heldAt !== null || !l.startsWith(`${name}/`)) return;
      this.heldAt = performance.now();
      this.key = l;
      this.onHeld?.();
    });
    this.proc.stderr.on('data', () => undefined);
    this.exited = new Promise((r) => this.proc.once('exit', () => r()));
  }
  held(timeoutMs: number): Promise<number> {
    if (this.heldAt !== null) return Promise.resolve(this.heldAt);
    return withTimeout(new Promise<number>((r) => (this.onHeld = () => r(this.heldAt!))), timeoutMs, 'etcdctl lock to hold');
  }
  /** SIGTERM: etcdctl unlocks (Delete) and closes its session (LeaseRevoke), then exits. */
  async stop(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    await withTimeout(this.exited, 10_000, 'etcdctl exit');
  }
}

interface PeerHandoffs {
  /** Ours (this process) releases, a waiting etcdctl takes it: release() → its key line. */
  oursToCtl: number[];
  /** One etcdctl gets SIGTERM, a waiting etcdctl takes it: kill → the waiter's key line. */
  ctlToCtl: number[];
}

async function etcdctlHandoffs(ctx: BenchContext, endpoints: string[], backend: EtcdLockBackend, inspector: EtcdLockBackend, name: string, samples: number, budgetMs: number): Promise<PeerHandoffs> {
  const out: PeerHandoffs = { oursToCtl: [], ctlToCtl: [] };
  const stopAt = performance.now() + budgetMs;
  const live = new Set<Etcdctl>();
  try {
    for (let i = -1; i < samples && performance.now() < stopAt; i++) {
      // ours → etcdctl
      const h = await backend.acquire(name, { ttlMs: TTL_MS, waitMs: 15_000, autoRenew: false });
      const waiter = new Etcdctl(endpoints, name);
      live.add(waiter);
      await waitForWaiters(inspector, name, 1, 10_000);
      await sleep(uniform(1, 10));
      const t0 = performance.now();
      await h.release();
      const t1 = await waiter.held(10_000);
      if (i >= 0) out.oursToCtl.push(t1 - t0);
      // etcdctl → etcdctl (the waiter above holds now)
      const next = new Etcdctl(endpoints, name);
      live.add(next);
      await waitForWaiters(inspector, name, 1, 10_000);
      await sleep(uniform(1, 10));
      const k0 = performance.now();
      waiter.proc.kill('SIGTERM');
      const k1 = await next.held(10_000);
      if (i >= 0) out.ctlToCtl.push(k1 - k0);
      await waiter.stop();
      await next.stop();
      live.delete(waiter);
      live.delete(next);
    }
  } finally {
    await Promise.allSettled([...live].map((p) => p.stop()));
  }
  ctx.log(`etcdctl handoffs: ours→etcdctl p50 ${ms(median(out.oursToCtl))}, etcdctl→etcdctl p50 ${ms(median(out.ctlToCtl))} (n=${out.oursToCtl.length})`);
  return out;
}

// ------------------------------------------------------------------------------------------------
// N waiters queued, the lock handed down the queue: server requests per handoff and watch
// notifications per release, from the server's counters around each release.

interface WakeResult {
  n: number;
  releases: number;
  /** Unary RPCs handled per handoff (release → next holder's acquire resolved → settled). */
  unary: number[];
  /** Watch stream messages received (create/cancel requests) per handoff. */
  watchMsgs: number[];
  /** Watch streams opened / ended per handoff. */
  streamsStarted: number[];
  streamsEnded: number[];
  /** Watch responses carrying events (sent minus the create/cancel answers) per release. */
  notifications: number[];
  byMethod: Record<string, number>;
  handoffMs: number[];
}

async function wakeCounts(ctx: BenchContext, url: string, config: EtcdBackendConfig, inspector: EtcdLockBackend, root: string, n: number, releases: number): Promise<WakeResult> {
  const name = `${root}/wake-${n}`;
  const clients: EtcdLockBackend[] = [];
  const res: WakeResult = { n, releases: 0, unary: [], watchMsgs: [], streamsStarted: [], streamsEnded: [], notifications: [], byMethod: {}, handoffMs: [] };
  try {
    // One client per waiter up to 16, then several waiters a client (each on its own lease).
    const nClients = Math.min(n, 16) + 1;
    for (let i = 0; i < nClients; i++) clients.push(createEtcdBackend({ ...config, id: `wake-${n}-${i}` }));
    let holder = await clients[0]!.acquire(name, { ttlMs: TTL_MS, autoRenew: false });
    const pending = new Map<number, Promise<{ i: number; h: LockHandle }>>();
    for (let i = 0; i < n; i++) {
      const c = clients[1 + (i % (nClients - 1))]!;
      const p = c.acquire(name, { ttlMs: TTL_MS, waitMs: 120_000, autoRenew: false }).then((h) => ({ i, h }));
      p.catch(() => undefined);
      pending.set(i, p);
      if (i % 16 === 15) await waitForWaiters(inspector, name, i + 1, 20_000);
    }
    await waitForWaiters(inspector, name, n, 30_000);
    await sleep(200); // the holder's key watch is armed; every waiter's watch created
    for (let r = 0; r < releases && pending.size > 0; r++) {
      const before = await serverCounters(url);
      const t0 = performance.now();
      await holder.release();
      const next = await withTimeout(Promise.race(pending.values()), 10_000, 'the next waiter to acquire');
      res.handoffMs.push(performance.now() - t0);
      pending.delete(next.i);
      holder = next.h;
      // Settle: a wrongly woken waiter would act (Range) within this; the new holder arms its
      // key watch (50 ms after it got the lock), which its release later cancels.
      await sleep(80);
      const d = delta(before, await serverCounters(url));
      res.releases++;
      res.unary.push(unaryRpcs(d));
      res.watchMsgs.push(get(d, 'msg_received:Watch'));
      res.streamsStarted.push(get(d, 'started:Watch'));
      res.streamsEnded.push(get(d, 'handled:Watch'));
      res.notifications.push(get(d, 'msg_sent:Watch') - get(d, 'msg_received:Watch'));
      for (const [k, v] of d) if (k.startsWith('handled:') || k === 'msg_received:Watch' || k === 'msg_received:LeaseKeepAlive') res.byMethod[k] = (res.byMethod[k] ?? 0) + v;
    }
    await holder.release();
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
  }
  ctx.log(
    `${n} waiters, ${res.releases} releases: unary RPCs/handoff ${mean(res.unary).toFixed(2)} (max ${Math.max(...res.unary)}), watch create/cancel msgs ${mean(res.watchMsgs).toFixed(2)}, ` +
      `watch streams opened ${mean(res.streamsStarted).toFixed(2)} ended ${mean(res.streamsEnded).toFixed(2)}, notifications/release ${mean(res.notifications).toFixed(2)} (max ${Math.max(...res.notifications)}), handoff p50 ${ms(median(res.handoffMs))}`,
  );
  return res;
}
