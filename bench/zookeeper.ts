/**
 * ZooKeeper section, all on one throwaway standalone server started here (scripts/servers.ts
 * startZooKeeper()):
 *
 *  - baselines: `exists` round trip and the raw Curator-style mutex cycle, create
 *    (EPHEMERAL_SEQUENTIAL `_c_<uuid>-lock-`) + getChildren + delete, both with node-zookeeper-client
 *    called directly on a session of its own (not through lockdeck's ZkSession, whose speed-ups
 *    would otherwise lower the baseline too), sequential, hot loop;
 *  - ours: uncontended acquire+release (tryAcquire + release, autoRenew false) in this process,
 *    and the cross-process handoff (bench/lib/handoff.ts, two `lockdeck` workers);
 *  - kazoo's Lock handoff between two Python processes (bench/kazoo-handoff.py), when
 *    /usr/bin/python3 can import kazoo: same method (t1 in the waiter − t0 in the holder, both
 *    CLOCK_MONOTONIC), waiter confirmed blocked by its node showing up, same pauses;
 *  - N = 2, 16, 128 waiters queued on one lock, the lock handed down the queue: requests per
 *    handoff counted by the server per session (`cons`: Δ lcxid = requests answered, pings
 *    excluded), and waiters woken per release = mntr's watches fired less the releaser's own, with
 *    the per-session packets pushed (`cons`: sent − received + Δ queued) as a cross-check;
 *  - throughput on one contended lock (2 and 16 contenders in two processes, zero critical
 *    section, every hold checked against all others for overlap).
 *
 * Baselines and our cycle run in R interleaved rounds; p50 ratios are the median of per-round
 * ratios with their spread. The two handoffs are interleaved per round too. Every loop is bounded
 * by count and time.
 */
import { spawnSync } from 'node:child_process';
import zookeeper from 'node-zookeeper-client';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';

import { createZooKeeperBackend } from '../lib/backends/zookeeper/index';
import { CreateMode, ZkSession } from '../lib/backends/zookeeper/session';
import type { LockHandle } from '../lib/locks/types';
import { fourLetterWord, startZooKeeper } from '../scripts/servers';
import { packageVersion, scaled, type BenchContext } from './lib/context';
import { contendedThroughput, fencesIncrease, pingPong, throughputRow, type HandoffSample, type ThroughputResult, waitForWaiters } from './lib/handoff';
import { pin } from './lib/machine';
import { PYTHON, PythonPeer } from './lib/python-peer';
import type { WorkerSpec } from './lib/protocol';
import { atMost, ms, type Row } from './lib/report';
import { mean, measure, median, pairedRatio, sleep, summarize, uniform, withTimeout } from './lib/stats';
import { BenchWorker } from './lib/workers';
import { zookeeperRenewal } from './renewal';

const TTL_MS = 30_000;
const KAZOO_PEER = fileURLToPath(new URL('./kazoo-handoff.py', import.meta.url));


function kazooVersion(): string | null {
  const r = spawnSync(PYTHON, ['-c', 'import kazoo.version as v; print(v.__version__)'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout.trim() || '?' : null;
}


/** Ping-pong between two kazoo processes on `path` (peers[0] holds at the start). */
async function kazooPingPong(
  peers: [PythonPeer, PythonPeer],
  o: { warmup: number; samples: number; pauseMs: [number, number]; budgetMs: number; childCount: () => Promise<number> },
): Promise<{ samples: number[]; holder: PythonPeer }> {
  let [holder, waiter] = peers;
  const out: number[] = [];
  const stopAt = performance.now() + o.budgetMs;
  for (let i = 0; i < o.warmup + o.samples; i++) {
    if (i >= o.warmup && performance.now() > stopAt) break;
    waiter.send('acquire');
    await waiter.expect('contending');
    // Blocked once its node is there beside the holder's (kazoo creates it, then watches).
    const deadline = performance.now() + 5000;
    for (let polls = 0; (await o.childCount()) < 2; polls++) {
      if (performance.now() > deadline || polls > 20_000) throw new Error('kazoo waiter never showed its node');
    }
    const pauseMs = uniform(o.pauseMs[0], o.pauseMs[1]);
    holder.send(`release ${pauseMs.toFixed(3)}`);
    const [t0, t1] = await Promise.all([holder.expect('released', 10_000 + pauseMs), waiter.expect('acquired', 10_000 + pauseMs)]);
    if (i >= o.warmup) out.push(Number(BigInt(t1) - BigInt(t0)) / 1e6);
    [holder, waiter] = [waiter, holder];
  }
  return { samples: out, holder };
}

export async function zookeeperSection(ctx: BenchContext): Promise<void> {
  const S = 'zookeeper';
  const server = await startZooKeeper();
  try {
    await runSection(ctx, S, server.url.replace(/^zookeeper:\/\//, ''), server.process.pid, { host: server.host, port: server.port });
  } finally {
    await server.stop();
  }
}

async function runSection(ctx: BenchContext, S: string, connect: string, serverPid: number | undefined, at: { host: string; port: number }): Promise<void> {
  if (ctx.pin && serverPid) pin(serverPid, ctx.pin.server);
  ctx.log(`zookeeper on ${connect} (pid ${serverPid})`);
  ctx.versions['node-zookeeper-client'] = packageVersion('node-zookeeper-client');

  const root = `/bench-${randomUUID().slice(0, 8)}`;
  const config = { id: 'bench-zk', type: 'zookeeper' as const, connect, roots: [root] };
  const session = new ZkSession(connect, { sessionTimeoutMs: 10_000 }, { onConnected() {}, onDisconnected() {}, onExpired() {} });
  const cleanups: (() => unknown)[] = [() => session.close()];
  try {
    await session.ready();
    const backend = createZooKeeperBackend(config);
    cleanups.push(() => backend.close());
    // Shows every waiter of the 128-waiter queue (the console's default reads the first 100).
    const inspector = createZooKeeperBackend({ ...config, id: 'bench-zk-inspector' }, { maxWaitersShown: 1000 });
    cleanups.push(() => inspector.close());

    const RAW = `${root}/bench/raw`;
    const CYCLE = 'bench/cycle';
    await session.mkdirp(RAW);
    await session.mkdirp(`${root}/${CYCLE}`);
    const existsPath = RAW;
    // The baselines' own client: node-zookeeper-client as an application would use it.
    const bare = zookeeper.createClient(connect, { sessionTimeout: 10_000, spinDelay: 200, retries: 0 });
    cleanups.push(() => bare.close());
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('node-zookeeper-client did not connect within 10 s')), 10_000);
      bare.once('connected', () => (clearTimeout(t), resolve()));
      bare.connect();
    });
    const cb = <T>(fn: (done: (err: unknown, v?: T) => void) => void) =>
      new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));

    // ---------------------------------------------------------- interleaved rounds: baselines vs ours
    // 9 rounds of 400: a 5 % target on a noisy 2-core box needs more than 5 × 250 (their per-round
    // ratios spread 0.84-1.24).
    const ROUNDS = 9;
    const existsN = scaled(ctx, 400, 50);
    const cycleN = scaled(ctx, 400, 40);
    const exi: number[][] = [];
    const raw: number[][] = [];
    const ours: number[][] = [];
    const rawCycle = async () => {
      const node = await cb<string>((d) => bare.create(`${RAW}/_c_${randomUUID()}-lock-`, Buffer.from('127.0.0.1'), CreateMode.EPHEMERAL_SEQUENTIAL, d));
      await cb<string[]>((d) => bare.getChildren(RAW, d));
      await cb<void>((d) => bare.remove(node, -1, d));
    };
    const ourCycle = async () => {
      const h = await backend.tryAcquire(CYCLE, { ttlMs: TTL_MS, autoRenew: false });
      if (!h) throw new Error(`${CYCLE} unexpectedly held`);
      await h.release();
    };
    for (let r = -1; r < ROUNDS; r++) {
      const first = r === -1;
      const e = await measure(() => cb<unknown>((d) => bare.exists(existsPath, d)), { warmup: first ? 500 : 50, samples: existsN, maxMs: 3000 });
      // Alternate which cycle goes first, so neither always follows the other.
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
        ctx.log(`warm-up round: exists ${ms(median(e))}, raw cycle ${ms(median(a))}, acquire+release ${ms(median(b))} (discarded)`);
        continue;
      }
      exi.push(e);
      raw.push(a);
      ours.push(b);
      ctx.log(`round ${r + 1}/${ROUNDS}: exists ${ms(median(e))}, raw cycle ${ms(median(a))}, acquire+release ${ms(median(b))}`);
    }
    const allExists = summarize(exi.flat());
    const allRaw = summarize(raw.flat());
    const allOurs = summarize(ours.flat());
    const oursVsExists = pairedRatio(ours.map(median), exi.map(median));
    const oursVsRaw = pairedRatio(ours.map(median), raw.map(median));
    const rawVsExists = pairedRatio(raw.map(median), exi.map(median));

    // ---------------------------------------------------------- handoffs: ours and kazoo's
    const cpu = ctx.pin?.clients;
    const spec: WorkerSpec = { kind: 'lockdeck', backend: 'zookeeper', config: { ...config } };
    const [wa, wb] = await Promise.all([BenchWorker.start('zk-a', spec, { cpu }), BenchWorker.start('zk-b', spec, { cpu })]);
    cleanups.push(() => wa.stop(), () => wb.stop());
    const HO = 'bench/handoff';
    if (!(await wa.call({ op: 'tryAcquire', name: HO, ttlMs: TTL_MS })).got) throw new Error(`${HO} is held by someone else`);
    let pair: [BenchWorker, BenchWorker] = [wa, wb];

    const kv = kazooVersion();
    let kPeers: [PythonPeer, PythonPeer] | null = null;
    const KPATH = `${root}/bench/kazoo`;
    if (kv) {
      ctx.versions.kazoo = kv;
      const [ka, kb] = await Promise.all([PythonPeer.start('kazoo-a', KAZOO_PEER, [connect, KPATH], cpu), PythonPeer.start('kazoo-b', KAZOO_PEER, [connect, KPATH], cpu)]);
      cleanups.push(() => ka.stop(), () => kb.stop());
      ka.send('acquire');
      await ka.expect('contending');
      await ka.expect('acquired', 10_000);
      kPeers = [ka, kb];
    } else {
      ctx.log(`kazoo: ${PYTHON} cannot import kazoo, its handoff is skipped`);
    }
    const kChildren = async () => (await session.getChildren(KPATH)).children.length;

    const HO_ROUNDS = 3;
    const hoN = scaled(ctx, 40, 10);
    const oursHo: HandoffSample[][] = [];
    const kazooHo: number[][] = [];
    for (let r = -1; r < HO_ROUNDS; r++) {
      const first = r === -1;
      const ho = await pingPong(pair, {
        name: HO, ttlMs: TTL_MS, waitMs: 10_000, warmup: first ? 10 : 2, samples: first ? 0 : hoN, pauseMs: [1, 10],
        confirmBlocked: () => waitForWaiters(inspector, HO, 1), budgetMs: 6000,
      });
      pair = ho.holder === wa ? [wa, wb] : [wb, wa];
      let k: number[] = [];
      if (kPeers) {
        const x = await kazooPingPong(kPeers, { warmup: first ? 10 : 2, samples: first ? 0 : hoN, pauseMs: [1, 10], budgetMs: 6000, childCount: kChildren });
        kPeers = x.holder === kPeers[0] ? kPeers : [kPeers[1], kPeers[0]];
        k = x.samples;
      }
      if (first) continue;
      oursHo.push(ho.samples);
      if (kPeers) kazooHo.push(k);
      ctx.log(
        `handoff round ${r + 1}/${HO_ROUNDS}: ours ${ms(median(ho.samples.map((s) => s.ms)))}` +
          (kPeers ? `, kazoo ${ms(median(k))}` : ''),
      );
    }
    const allHo = summarize(oursHo.flat().map((s) => s.ms));
    const allK = kPeers ? summarize(kazooHo.flat()) : null;
    const hoVsKazoo = kPeers ? pairedRatio(oursHo.map((h) => median(h.map((s) => s.ms))), kazooHo.map(median)) : null;
    const fencesOk = fencesIncrease(oursHo.flat());

    // ---------------------------------------------------------- throughput on one contended lock
    // 2 contenders (one per process) and 16 (eight per process); see contendedThroughput.
    await pair[0].call({ op: 'release', pauseMs: 0 }); // the handoff lock's last holder lets go
    const TP = 'bench/throughput';
    const tpMs = scaled(ctx, 3000, 1000);
    const throughput: ThroughputResult[] = [];
    for (const c of [2, 16]) {
      const t = await contendedThroughput(
        Array.from({ length: c }, (_, k) => ({ w: [wa, wb][k % 2]!, slot: 100 + c + Math.floor(k / 2) })),
        { name: TP, ttlMs: TTL_MS, durationMs: tpMs },
      );
      throughput.push(t);
      ctx.log(`throughput, ${c} contenders: ${t.perSec.toFixed(0)}/s (${t.acquisitions}), overlaps ${t.overlaps}, fences increasing ${t.fencesIncrease}`);
    }
    await Promise.all([wa.stop(), wb.stop()]);

    // ---------------------------------------------------------- N waiters: requests, wake-ups
    const wakes: ZkWakeResult[] = [];
    for (const n of [2, 16, 128]) wakes.push(await wakeCounts(ctx, at, config, inspector, n, Math.min(n, scaled(ctx, 8, 3))));

    // ---------------------------------------------------------- rows
    const existsLabel = `exists p50 ${ms(allExists.p50)}`;
    const rawLabel = `raw cycle p50 ${ms(allRaw.p50)}`;
    const rows: Row[] = [
      { section: S, figure: 'exists round trip p50', value: allExists.p50, unit: 'ms', baseline: '—', ratio: null, target: '—', verdict: 'baseline', note: `n=${allExists.n}, p99 ${ms(allExists.p99)}` },
      {
        section: S, figure: 'raw cycle p50 (create ES + getChildren + delete)', value: allRaw.p50, unit: 'ms', baseline: existsLabel,
        ratio: rawVsExists.median, ratioSpread: [rawVsExists.min, rawVsExists.max], target: '—', verdict: 'baseline', note: `n=${allRaw.n}, p99 ${ms(allRaw.p99)}`,
      },
      {
        section: S, figure: 'acquire+release p50 vs exists', value: allOurs.p50, unit: 'ms', baseline: existsLabel,
        ratio: oursVsExists.median, ratioSpread: [oursVsExists.min, oursVsExists.max], target: '—', verdict: 'info',
        note: `tryAcquire + release, autoRenew false, n=${allOurs.n}, p99 ${ms(allOurs.p99)}`,
      },
      {
        section: S, figure: 'acquire+release p50 vs raw cycle', value: allOurs.p50, unit: 'ms', baseline: rawLabel,
        ratio: oursVsRaw.median, ratioSpread: [oursVsRaw.min, oursVsRaw.max], target: '≤ 1.05×', verdict: atMost(oursVsRaw.median, 1.05),
      },
      {
        section: S, figure: 'handoff p50', value: allHo.p50, unit: 'ms', baseline: existsLabel, ratio: allHo.p50 / allExists.p50, target: '—', verdict: 'info',
        note: `cross-process (2 workers), n=${allHo.n}, pauses 1-10 ms, fences increasing: ${fencesOk}`,
      },
      { section: S, figure: 'handoff p99', value: allHo.p99, unit: 'ms', baseline: existsLabel, ratio: allHo.p99 / allExists.p50, target: '—', verdict: 'info' },
    ];
    if (allK && hoVsKazoo) {
      rows.push(
        {
          section: S, figure: 'kazoo Lock handoff p50', value: allK.p50, unit: 'ms', baseline: existsLabel, ratio: allK.p50 / allExists.p50, target: '—', verdict: 'baseline',
          note: `kazoo ${kv}, 2 Python processes, n=${allK.n}, p99 ${ms(allK.p99)}`,
        },
        {
          section: S, figure: 'handoff p50 vs kazoo', value: allHo.p50, unit: 'ms', baseline: `kazoo p50 ${ms(allK.p50)}`,
          ratio: hoVsKazoo.median, ratioSpread: [hoVsKazoo.min, hoVsKazoo.max], target: '≤ 1×', verdict: atMost(hoVsKazoo.median, 1),
        },
      );
    } else {
      rows.push({ section: S, figure: 'kazoo Lock handoff', value: null, unit: '', baseline: '—', ratio: null, target: '—', verdict: 'skip', note: `${PYTHON} cannot import kazoo` });
    }
    rows.push(
      ...throughput.map((t) => throughputRow(S, t, allHo.p50, ' (two processes)')),
      ...wakes.flatMap((w): Row[] => [
        {
          section: S, figure: `server requests per handoff (${w.n} waiters)`, value: mean(w.requests), unit: 'req', baseline: '—', ratio: null, target: '≤ 3',
          verdict: atMost(mean(w.requests), 3),
          note: `requests the server answered (cons: Δ lcxid summed over every session, so pings are not counted) from release() to the next holder settled; ` +
            `${w.releases} releases, max ${Math.max(...w.requests)}: the release's delete, the next waiter's getChildren, the new holder's watch on its own node`,
        },
        (() => {
          // mntr's watches fired, less the releaser's own-node watch (armed on every holder, it
          // fires on the release itself): every other watch that fired woke a waiter. The
          // per-session packet count from cons is the cross-check; it read 2 for one release in
          // 8 in two runs (17:28, 18:03) where mntr counted the usual 2 watches fired, so a packet
          // that is not a notification lands in it now and then.
          const woken = w.watchesFired.map((f) => f - 1);
          return {
            section: S, figure: `waiters woken per release (${w.n} waiters)`, value: mean(woken), unit: '', baseline: '—', ratio: null, target: '≤ 1', verdict: atMost(Math.max(...woken), 1),
            note: `watches fired per release (mntr zk_sum_node_*_watch_count Δ) less the releaser's own, max ${Math.max(...woken)}; ` +
              `cross-check, packets pushed to waiting sessions (cons: sent − received + Δ queued, the releaser's session excluded): mean ${mean(w.woken).toFixed(2)}, max ${Math.max(...w.woken)}; handoff p50 ${ms(median(w.handoffMs))}`,
          } satisfies Row;
        })(),
      ]),
    );
    ctx.rows.push(...rows);
    await zookeeperRenewal(ctx, S);
    ctx.details.zookeeper = {
      exists: allExists, rawCycle: allRaw, acquireRelease: allOurs, ratios: { oursVsExists, oursVsRaw, rawVsExists },
      handoff: allHo, kazooHandoff: allK, handoffVsKazoo: hoVsKazoo, fencesIncrease: fencesOk, throughput, wakes,
      perRound: { exists: exi.map(median), raw: raw.map(median), ours: ours.map(median) },
    };
  } finally {
    while (cleanups.length) {
      try {
        await cleanups.pop()!();
      } catch (err) {
        ctx.log(`zookeeper cleanup: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------
// N waiters queued, the lock handed down the queue: what the server received and pushed per
// handoff, per session (4lw `cons`), around each release.

interface ZkWakeResult {
  n: number;
  releases: number;
  /** Requests the server answered per handoff, every session (Δ lcxid: pings not counted). */
  requests: number[];
  /** Watch notifications pushed to waiting sessions per release (the releasing session excluded). */
  woken: number[];
  /** mntr: watches fired by node deletions and children changes per release, the releaser's own included. */
  watchesFired: number[];
  handoffMs: number[];
}

/**
 * Per session id (as a bigint string), from `cons`: packets received and sent, and `lcxid`, the
 * last client xid the server answered. Clients number their requests 1, 2, 3…; pings (xid -2) and
 * notifications (xid -1) do not move it (ServerCnxn.updateStatsForResponse keeps cxid ≥ 0 only),
 * so Δlcxid counts exactly the requests a session made, with no idle pings to estimate.
 */
/**
 * Per-session counters from `cons`. `queued` is the session's requests received and not yet
 * answered: a ping caught between its request and its response by a snapshot counts as received
 * but not sent, so notifications pushed = Δsent − Δrecved + Δqueued (without the Δqueued term a
 * ping straddling a snapshot read as a notification: 2 "woken" in one release while mntr counted
 * the usual 2 watches fired, the releaser's own included).
 */
async function perSession(at: { host: string; port: number }): Promise<Map<string, { recved: number; sent: number; queued: number; cxid: number }>> {
  const out = new Map<string, { recved: number; sent: number; queued: number; cxid: number }>();
  for (const m of (await fourLetterWord(at.host, at.port, 'cons', 3000)).matchAll(/queued=(\d+),recved=(\d+),sent=(\d+),sid=0x([0-9a-f]+)[^)]*?lcxid=0x([0-9a-f]+)/g)) {
    out.set(BigInt(`0x${m[4]}`).toString(), { queued: Number(m[1]), recved: Number(m[2]), sent: Number(m[3]), cxid: parseInt(m[5]!, 16) });
  }
  return out;
}

/** mntr's sums of watches fired (node deleted / children changed / data changed / created). */
async function watchesFired(at: { host: string; port: number }): Promise<number> {
  let sum = 0;
  for (const m of (await fourLetterWord(at.host, at.port, 'mntr', 3000)).matchAll(/^zk_sum_node_(?:deleted|children|changed|created)_watch_count\t(\d+)/gm)) sum += Number(m[1]);
  return sum;
}

/** The session a backend's handles live on (bench-only peek at the backend's private session). */
function sessionOf(b: ReturnType<typeof createZooKeeperBackend>): string {
  const id = (b as unknown as { zk: ZkSession }).zk.sessionId();
  if (!id) throw new Error('ZooKeeper backend has no session');
  return BigInt(`0x${id}`).toString();
}

async function wakeCounts(
  ctx: BenchContext, at: { host: string; port: number }, config: { id: string; type: 'zookeeper'; connect: string; roots: string[] },
  inspector: ReturnType<typeof createZooKeeperBackend>, n: number, releases: number,
): Promise<ZkWakeResult> {
  const name = `bench/wake-${n}`;
  const clients: ReturnType<typeof createZooKeeperBackend>[] = [];
  const res: ZkWakeResult = { n, releases: 0, requests: [], woken: [], watchesFired: [], handoffMs: [] };
  try {
    // One session per waiter up to 16, then several waiters a session (as in the etcd section).
    const nClients = Math.min(n, 16) + 1;
    for (let i = 0; i < nClients; i++) clients.push(createZooKeeperBackend({ ...config, id: `wake-${n}-${i}` }));
    let holder: { h: LockHandle; c: number } = { h: await clients[0]!.acquire(name, { ttlMs: TTL_MS, autoRenew: false }), c: 0 };
    const pending = new Map<number, Promise<{ i: number; h: LockHandle; c: number }>>();
    for (let i = 0; i < n; i++) {
      const c = 1 + (i % (nClients - 1));
      const p = clients[c]!.acquire(name, { ttlMs: TTL_MS, waitMs: 120_000, autoRenew: false }).then((h) => ({ i, h, c }));
      p.catch(() => undefined);
      pending.set(i, p);
      if (i % 16 === 15) await waitForWaiters(inspector, name, i + 1, 20_000);
    }
    await waitForWaiters(inspector, name, n, 30_000);
    for (let r = 0; r < releases && pending.size > 0; r++) {
      const releaser = sessionOf(clients[holder.c]!);
      const before = await perSession(at);
      const firedBefore = await watchesFired(at);
      const t0 = performance.now();
      await holder.h.release();
      const next = await withTimeout(Promise.race(pending.values()), 10_000, 'the next waiter to acquire');
      res.handoffMs.push(performance.now() - t0);
      pending.delete(next.i);
      holder = { h: next.h, c: next.c };
      // Settle: a wrongly woken waiter would act (getChildren) within this; the new holder has
      // set its own-node watch by now (setImmediate after its acquire).
      await sleep(80);
      const after = await perSession(at);
      let requests = 0;
      let woken = 0;
      for (const [sid, a] of after) {
        const b = before.get(sid);
        if (!b) continue; // the `cons` connection itself
        requests += a.cxid - b.cxid;
        if (sid !== releaser) woken += a.sent - b.sent - (a.recved - b.recved) + (a.queued - b.queued);
      }
      res.requests.push(requests);
      res.woken.push(woken);
      res.watchesFired.push((await watchesFired(at)) - firedBefore);
      res.releases++;
    }
    await holder.h.release();
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
  }
  ctx.log(
    `${n} waiters, ${res.releases} releases: requests/handoff ${mean(res.requests).toFixed(2)} (Δ lcxid, pings excluded), ` +
      `waiters woken/release ${mean(res.woken).toFixed(2)} (max ${Math.max(...res.woken)}), mntr watches fired/release ${mean(res.watchesFired).toFixed(2)}, handoff p50 ${ms(median(res.handoffMs))}`,
  );
  return res;
}
