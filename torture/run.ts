/**
 * The torture runner (`npm run torture -- ...`): Jepsen-style safety testing of lockdeck's real
 * backends on one host. It starts the servers a deployment needs, a fenced register
 * (torture/register.ts), and many worker processes (torture/worker.ts) that contend for a few locks;
 * injects faults (torture/faults.ts) while they run; then checks the merged history
 * (torture/checker.ts), prints a table and writes JSON.
 *
 *   npm run torture -- --backend sqlite,redis,zookeeper --seconds 30 --faults pause,kill --each
 *
 * Options:
 *   --backend a,b       deployments (torture/backends.ts: sqlite, redis, redis-ephemeral, redlock,
 *                       sentinel, sentinel-lag, sentinel-lag-wait, zookeeper,
 *                       zookeeper-ensemble, etcd, etcd-cluster, dynamodb)
 *   --faults x,y        pause, kill, server-kill, member-kill, failover, delay, partition,
 *                       clock-jump, net-partition, net-loss, none
 *                       (default pause,kill)
 *   --net netns         every worker in its own network namespace (torture/netns.ts); implied by
 *                       net-partition / net-loss. The runner then re-executes itself inside a
 *                       namespace of its own (needs root, ip, nft; none of it touches the root
 *                       namespace) and deletes all of them at the end, also on Ctrl-C.
 *                       --net none: never (net-* faults are then reported as not run).
 *   --each              one cell per fault (default: all faults mixed in one cell)
 *   --seconds N         per cell (default 20)
 *   --workers W         worker processes (default 6)   --locks L   contended locks (default 2)
 *   --ttl MS            lease TTL (default 1000)       --hold MS   max work inside a CS (default ttl/4)
 *   --interval MS       mean time between faults (default 2 × ttl)
 *   --out DIR           histories + summary.json (default .lockdeck/torture/<time>)
 *   --slack MS          extra allowance of the loss-detection bound (default 0)
 *   --recheck DIR       re-run the checker over DIR's histories and print the table again
 *   --repeat K          run every cell K times (fresh servers and workers each time) and print,
 *                       after the per-run table, one line per cell summed over the K runs: the
 *                       way to approach the reliability goal R1 (>= 100 runs x 60 s per cell)
 * Exit code 1 when any cell has a fence regression or a lost update with fencing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { DEPLOYMENTS, PENDING, scratchDir, type Deployment } from './backends';
import { check, type CheckReport } from './checker';
import { ALL_FAULTS, faketimeEnv, inject, isNetFault, unsupported, type FaultHost, type FaultKind, type Holder } from './faults';
import { HistoryWriter, readHistory, type HistoryEvent } from './history';
import { deleteNamespace, listNamespaces, NETNS_ENV, NETNS_ERROR_ENV, NetLab, netnsProblem, runInHostNamespace } from './netns';
import { configPorts, FaultProxy, rewriteConfig } from './proxy';
import { Register, RegisterClient, serveRegister } from './register';
import { makeBackend, type WorkerMessage, type WorkerSpec } from './worker';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = resolve(HERE, '..');

export interface CellOptions {
  backend: string;
  faults: FaultKind[];
  seconds: number;
  workers: number;
  locks: number;
  ttlMs: number;
  holdMs: number;
  intervalMs: number;
  /** Directory for this cell's histories. */
  dir: string;
  detectionSlackMs?: number;
  /** Progress lines (default: stderr). */
  say?: (line: string) => void;
  /**
   * Each worker in its own network namespace (needs the runner inside its host namespace: see
   * torture/netns.ts). Default: when a net-* fault is asked for.
   */
  netns?: boolean;
  /** Ends the cell early (Ctrl-C): workers are stopped and servers shut down as at the end. */
  signal?: AbortSignal;
}

export interface CellResult {
  backend: string;
  faults: string[];
  skipped: string[];
  injected: Record<string, number>;
  seconds: number;
  report: CheckReport;
  dir: string;
  /** No requested fault applies to this deployment: nothing ran. */
  notRun?: boolean;
  /** 1-based run number with --repeat. */
  run?: number;
  /** Workers ran in their own network namespaces. */
  netns?: boolean;
}

interface WorkerState {
  w: string;
  proc: ChildProcess;
  lock: string | null;
  /** Told it lost `lock` (still finishing its critical section): not a current holder. */
  stale: boolean;
  paused: boolean;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs one backend × fault-set cell and checks its history. */
export async function runCell(o: CellOptions): Promise<CellResult> {
  const say = o.say ?? ((l: string) => process.stderr.write(l + '\n'));
  const spec = DEPLOYMENTS[o.backend];
  if (!spec) throw new Error(`unknown backend "${o.backend}" (known: ${Object.keys(DEPLOYMENTS).join(', ')}; pending: ${PENDING.join(', ')})`);
  mkdirSync(o.dir, { recursive: true });
  const scratch = scratchDir();
  const runner = new HistoryWriter(join(o.dir, 'runner.jsonl'), 'runner');
  const { server: regServer, port: registerPort } = await serveRegister(new Register());
  let deployment: Deployment | undefined;
  const workers = new Map<string, WorkerState>();
  let stopping = false;
  const wakeups = new Set<() => void>();
  const injected: Record<string, number> = {};
  const skipped: string[] = [];
  const cleanup: Array<() => Promise<unknown>> = [];
  let notRun = false;
  // Per-worker network namespaces: only inside the runner's own host namespace (run.ts main()
  // re-executes itself there); anywhere else net-* faults are reported as not run, with why.
  const wantNetns = o.netns ?? o.faults.some(isNetFault);
  const lab = wantNetns ? NetLab.fromEnv() : null;
  const netProblem = lab
    ? null
    : (process.env[NETNS_ERROR_ENV] ??
      `the runner is not inside a network namespace of its own (start it with \`npm run torture -- ... --net netns\`, which re-executes itself in one; ${NETNS_ENV} is not set)`);
  if (lab) cleanup.push(async () => lab.close());
  const onAbort = () => {
    stopping = true;
    for (const f of wakeups) f();
  };
  o.signal?.addEventListener('abort', onAbort);
  try {
    if (o.signal?.aborted) throw new Error('interrupted');
    deployment = await spec.start({ ttlMs: o.ttlMs, dir: scratch });
    const dep = deployment;
    const faults = o.faults.filter((f) => {
      const why = unsupported(f, dep, netProblem);
      if (why) skipped.push(`${f}: ${why}`);
      return !why;
    });
    if (o.faults.length && !faults.length) {
      notRun = true;
      return { backend: o.backend, faults: o.faults, skipped, injected, seconds: 0, report: check([]), dir: o.dir, notRun };
    }

    // One round trip of the store, for the loss-detection bound (median of 21 pings).
    const probe = makeBackend(dep.config, dep.options);
    const rtts: number[] = [];
    for (let i = 0; i < 21; i++) rtts.push(await probe.ping());
    await probe.close();
    rtts.sort((a, b) => a - b);
    const rttMs = rtts[10]!;
    const locks = Array.from({ length: o.locks }, (_, i) => `torture-${i}`);
    runner.log({
      t: 'params', backend: o.backend, ttlMs: o.ttlMs, rttMs, faults, seconds: o.seconds, workers: o.workers, locks,
      livenessBoundMs: o.ttlMs + 2 * rttMs + dep.livenessExtraMs,
    });

    // Network faults: odd workers reach the store and the register through fault proxies.
    const proxies: FaultProxy[] = [];
    let proxiedConfig = dep.config;
    let proxiedRegister = registerPort;
    if (faults.includes('delay') || faults.includes('partition')) {
      const map = new Map<number, number>();
      for (const port of configPorts(dep.config)) {
        const p = new FaultProxy('127.0.0.1', port);
        map.set(port, await p.start());
        proxies.push(p);
      }
      const rp = new FaultProxy('127.0.0.1', registerPort);
      proxiedRegister = await rp.start();
      proxies.push(rp);
      proxiedConfig = rewriteConfig(dep.config, map);
    }
    cleanup.push(() => Promise.all(proxies.map((p) => p.stop())));

    const clockFiles = new Map<string, string>();
    const ready = new Set<string>();
    let serial = 0;
    const spawnWorker = (): WorkerState => {
      const n = serial++;
      const w = `w${n}`;
      const viaProxy = proxies.length > 0 && n % 2 === 1;
      const ws: WorkerSpec = {
        w, config: viaProxy ? proxiedConfig : dep.config, options: dep.options, registerPort: viaProxy ? proxiedRegister : registerPort, locks, ttlMs: o.ttlMs, holdMs: o.holdMs,
        thinkMs: Math.max(5, o.holdMs / 4), waitMs: o.ttlMs * 10, historyPath: join(o.dir, `${w}.jsonl`),
      };
      let clock: Record<string, string> = {};
      if (faults.includes('clock-jump')) {
        const file = join(o.dir, `${w}.clock`);
        writeFileSync(file, '+0\n');
        clockFiles.set(w, file);
        clock = faketimeEnv(file);
      }
      // fork() cannot run the child through `ip netns exec`; spawn with an 'ipc' stdio slot gives
      // the same channel (NODE_CHANNEL_FD), which ip's exec passes on to node.
      const wrap = lab ? lab.addWorker(w).wrap : [];
      const argv = [...wrap, process.execPath, '--import', 'tsx', join(HERE, 'worker.ts')];
      const proc = spawn(argv[0]!, argv.slice(1), {
        cwd: ROOT,
        env: { ...process.env, ...clock, TORTURE_SPEC: JSON.stringify(ws) },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const state: WorkerState = { w, proc, lock: null, stale: false, paused: false };
      proc.on('message', (m: WorkerMessage) => {
        if (m.t === 'ready') ready.add(w);
        else if (m.t === 'held') {
          state.lock = m.lock;
          state.stale = false;
        } else if (m.t === 'lost') state.stale = true;
        else if (m.t === 'free') state.lock = null;
      });
      proc.on('exit', () => workers.delete(w));
      workers.set(w, state);
      return state;
    };
    for (let i = 0; i < o.workers; i++) spawnWorker();

    const host: FaultHost = {
      deployment: dep,
      proxies,
      ...(lab ? { net: lab } : {}),
      workers: () => [...workers.values()].map((x) => ({ w: x.w, lock: x.lock })),
      clockFile: (w) => clockFiles.get(w),
      ttlMs: o.ttlMs,
      holders: () =>
        [...workers.values()]
          // A worker still stuck in the critical section of a lock it was told it lost (e.g. its
          // late register write after a partition) is not a holder: faults aim at current ones.
          .filter((s) => s.lock !== null && !s.stale && !s.paused && s.proc.pid !== undefined)
          .map((s): Holder => ({ w: s.w, pid: s.proc.pid!, lock: s.lock! })),
      replace: (w) => {
        const s = workers.get(w);
        if (s) s.lock = null;
        workers.delete(w);
        if (!stopping) spawnWorker();
      },
      setPaused: (w, paused) => {
        const s = workers.get(w);
        if (s) s.paused = paused;
      },
      log: (kind, phase, target, detail) => {
        runner.log({ t: 'fault', kind, phase, target, ...(detail ? { detail } : {}) });
        if (phase === 'begin') injected[kind] = (injected[kind] ?? 0) + 1;
        say(`  ${o.backend}: ${kind} ${phase} ${target}${detail ? ` (${detail})` : ''}`);
      },
      // Faults in progress finish their cleanup (SIGCONT, restart) even while stopping.
      sleep: (ms) => sleep(ms),
    };

    // The clock starts once every worker is up (tsx + backend connect: seconds on a busy 2-core
    // box); faults during boot would measure the boot.
    const bootBy = performance.now() + 120_000;
    while (ready.size < o.workers && performance.now() < bootBy && !stopping) await sleep(50);
    if (stopping) throw new Error('interrupted');
    if (ready.size < o.workers) throw new Error(`only ${ready.size} of ${o.workers} workers started within 120 s`);
    runner.log({ t: 'ready', workers: ready.size });
    const deadline = performance.now() + o.seconds * 1000;
    const waitOrStop = (ms: number) =>
      new Promise<void>((res) => {
        const t = setTimeout(() => {
          wakeups.delete(done);
          res();
        }, ms);
        const done = () => {
          clearTimeout(t);
          res();
        };
        wakeups.add(done);
      });
    const stopTimer = setTimeout(onAbort, o.seconds * 1000);
    // Let the workers take their first locks before the first fault.
    await waitOrStop(Math.min(1000, o.seconds * 100));
    let next = 0;
    while (!stopping && faults.length && performance.now() < deadline) {
      await waitOrStop(o.intervalMs * (0.5 + Math.random()));
      if (stopping) break;
      const kind = faults[next++ % faults.length]!;
      await inject(kind, host);
      // A server fault is followed by time to recover (reconnect, old leases run out), so the next
      // one measures a working system rather than the previous outage.
      if (kind === 'server-kill' || kind === 'member-kill' || kind === 'failover') await waitOrStop(o.ttlMs * 4);
    }
    while (!stopping) await waitOrStop(1000);
    clearTimeout(stopTimer);

    // Stop: resume anything paused, ask every worker to finish, kill stragglers.
    const all = [...workers.values()];
    for (const s of all) {
      try {
        s.proc.kill('SIGCONT');
      } catch {
        // gone
      }
      if (s.proc.connected) s.proc.send('stop');
    }
    await Promise.race([
      Promise.all(all.map((s) => new Promise<void>((r) => (s.proc.exitCode !== null ? r() : s.proc.once('exit', () => r()))))),
      sleep(Math.max(5000, o.ttlMs * 3)),
    ]);
    for (const s of all) if (s.proc.exitCode === null) s.proc.kill('SIGKILL');

    const client = new RegisterClient(registerPort);
    await client.connect();
    runner.log({ t: 'register', cells: await client.state() });
    client.close();
  } finally {
    stopping = true;
    o.signal?.removeEventListener('abort', onAbort);
    for (const s of workers.values()) if (s.proc.exitCode === null) s.proc.kill('SIGKILL');
    runner.close();
    for (const c of cleanup) await c().catch(() => undefined);
    regServer.close();
    await deployment?.stop().catch((err) => say(`stopping ${o.backend}: ${String(err)}`));
    rmSync(scratch, { recursive: true, force: true });
  }
  const report = checkCell(o.dir, { detectionSlackMs: o.detectionSlackMs });
  return { backend: o.backend, faults: o.faults, skipped, injected, seconds: o.seconds, report, dir: o.dir, ...(lab ? { netns: true } : {}) };
}

/**
 * The checker's report plus liveness after a net-partition (from the partition's begin to the next
 * acquisition of the cut-off holder's lock by another worker), which the checker (written before
 * that fault existed) measures only after kills and server restarts.
 */
export function checkCell(dir: string, opts: { detectionSlackMs?: number } = {}): CheckReport {
  const events = readHistory(dir);
  const report = check(events, opts);
  const extra = partitionLiveness(events);
  if (extra.length) {
    const r = report.liveness;
    r.samples.push(...extra);
    const ms = r.samples.map((x) => x.ms).filter((x): x is number => x !== null);
    r.maxMs = ms.length ? Math.max(...ms) : r.maxMs;
    r.exceeded = r.samples.filter((x) => x.ms === null || x.ms > r.boundMs).length;
  }
  return report;
}

function partitionLiveness(events: HistoryEvent[]): CheckReport['liveness']['samples'] {
  const out: CheckReport['liveness']['samples'] = [];
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    // Written through HistoryWriter.log, so the kind is any string (history.ts predates net-*).
    if (e.t !== 'fault' || (e.kind as string) !== 'net-partition' || e.phase !== 'begin') continue;
    const lock = /holding (\S+):/.exec(e.detail ?? '')?.[1];
    if (!lock) continue;
    let next: number | null = null;
    for (let j = i + 1; j < events.length; j++) {
      const x = events[j]!;
      if (x.t === 'acquired' && x.lock === lock && x.w !== e.target) {
        next = x.mono;
        break;
      }
    }
    out.push({ kind: 'net-partition', target: e.target, lock, at: e.mono, ms: next === null ? null : (next - e.mono) / 1000 });
  }
  return out;
}

// ---- table ---------------------------------------------------------------------------------------

const f1 = (n: number | null) => (n === null ? '–' : n.toFixed(n >= 100 ? 0 : 1));

export function table(results: CellResult[]): string {
  const head = [
    'backend', 'faults', 'injected', 'acq', 'overlapping CS (rate; unaware pairs)', 'unfenced lost', 'fenced lost', 'fence regr.', 'order viol.',
    'stale rejected r/w', 'detect p50/max ms (late, never)', 'liveness max ms (bound)', 'ok',
  ];
  const rows = results.map((r) => {
    const x = r.report;
    return [
      r.run ? `${r.backend} #${r.run}` : r.backend,
      r.faults.join('+') || 'none',
      Object.entries(r.injected).map(([k, v]) => `${k}×${v}`).join(' ') || '0',
      String(x.acquisitions),
      `${x.overlaps.sections} (${(x.overlaps.rate * 100).toFixed(1)}%; ${x.overlaps.unawarePairs})`,
      `${x.lostUpdates.unfencedRegister ?? x.lostUpdates.unfenced}`,
      `${Math.max(x.lostUpdates.fenced, x.lostUpdates.fencedRegister ?? 0)}`,
      String(x.fenceRegressions.count),
      String(x.fenceOrderViolations.count),
      `${x.staleRejected.reads}/${x.staleRejected.writes}`,
      `${f1(x.lossDetection.p50Ms)}/${f1(x.lossDetection.maxMs)} (${x.lossDetection.late}, ${x.lossDetection.neverLearned})`,
      `${f1(x.liveness.maxMs)} (${f1(x.liveness.boundMs)})`,
      x.ok ? 'yes' : 'NO',
    ];
  });
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  return [line(head), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.map(line)].join('\n');
}

/**
 * One line per backend × faults over every run of it (--repeat): runs, seconds, acquisitions and
 * faults summed; the safety counts summed (they must stay 0); the overlap rate's range; the worst
 * liveness. A single run can be lucky; this is what "0 in K runs" rests on.
 */
export function repeatTable(results: CellResult[]): string {
  const groups = new Map<string, CellResult[]>();
  for (const r of results) {
    const k = `${r.backend}\u0000${r.faults.join('+') || 'none'}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const head = ['backend', 'faults', 'runs', 'seconds', 'acq', 'faults injected', 'overlap rate min–max', 'fenced lost', 'fence regr.', 'order viol.', 'never told', 'liveness max ms', 'all ok'];
  const rows = [...groups.values()].map((rs) => {
    const sum = (f: (x: CheckReport) => number) => rs.reduce((n, r) => n + f(r.report), 0);
    const rates = rs.map((r) => r.report.overlaps.rate * 100);
    const live = rs.map((r) => r.report.liveness.maxMs).filter((v): v is number => v !== null);
    return [
      rs[0]!.backend,
      rs[0]!.faults.join('+') || 'none',
      String(rs.length),
      String(rs.reduce((n, r) => n + r.seconds, 0)),
      String(sum((x) => x.acquisitions)),
      String(rs.reduce((n, r) => n + Object.values(r.injected).reduce((a, b) => a + b, 0), 0)),
      `${Math.min(...rates).toFixed(1)}–${Math.max(...rates).toFixed(1)}%`,
      String(sum((x) => Math.max(x.lostUpdates.fenced, x.lostUpdates.fencedRegister ?? 0))),
      String(sum((x) => x.fenceRegressions.count)),
      String(sum((x) => x.fenceOrderViolations.count)),
      String(sum((x) => x.lossDetection.neverLearned)),
      live.length ? f1(Math.max(...live)) : '–',
      rs.every((r) => r.report.ok) ? 'yes' : 'NO',
    ];
  });
  const all = [head, ...rows];
  const widths = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]) => '| ' + r.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  return [line(head), '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.map(line)].join('\n');
}

// ---- CLI -----------------------------------------------------------------------------------------

function parse(argv: string[]): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}"`);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out[a.slice(2)] = true;
    else {
      out[a.slice(2)] = next;
      i++;
    }
  }
  return out;
}

function num(v: string | true | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${String(v)}`);
  return n;
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  if (typeof a.recheck === 'string') {
    // Re-run the checker over the histories of an earlier run (after a checker change).
    const file = join(resolve(a.recheck), 'summary.json');
    const summary = JSON.parse(readFileSync(file, 'utf8')) as { results: CellResult[] };
    for (const r of summary.results) r.report = checkCell(r.dir, { detectionSlackMs: a.slack === undefined ? 0 : Number(a.slack) });
    writeFileSync(file, JSON.stringify(summary, null, 2));
    process.stdout.write(table(summary.results) + '\n');
    if (summary.results.some((r) => !r.report.ok)) process.exitCode = 1;
    return;
  }
  const backends = String(a.backend ?? 'sqlite').split(',').filter(Boolean);
  for (const b of backends) {
    if (PENDING.includes(b)) throw new Error(`backend "${b}" is pending (lib/backends/${b} is being written): add it to DEPLOYMENTS in torture/backends.ts`);
    if (!DEPLOYMENTS[b]) throw new Error(`unknown backend "${b}" (known: ${Object.keys(DEPLOYMENTS).join(', ')})`);
  }
  const faultList = String(a.faults ?? 'pause,kill').split(',').filter((f) => f && f !== 'none') as FaultKind[];
  for (const f of faultList) if (!ALL_FAULTS.includes(f)) throw new Error(`unknown fault "${f}" (known: ${ALL_FAULTS.join(', ')}, none)`);
  const net = a.net === undefined ? (faultList.some(isNetFault) ? 'netns' : 'none') : String(a.net);
  if (net !== 'netns' && net !== 'none') throw new Error(`--net must be netns or none, got ${net}`);
  if (net === 'none' && faultList.some(isNetFault)) process.env[NETNS_ERROR_ENV] ??= '--net none: the workers share the runner\'s network namespace, no per-holder packet faults';
  if (net === 'netns' && !process.env[NETNS_ENV] && !process.env[NETNS_ERROR_ENV]) {
    // Re-execute inside a network namespace of our own (torture/netns.ts); the namespaces are
    // deleted when it exits. If they cannot be made, say so and run here: the net-* faults are
    // then reported as not run (unsupported), never pretended.
    let why = netnsProblem();
    if (!why) {
      try {
        process.exitCode = await runInHostNamespace(fileURLToPath(import.meta.url), process.argv.slice(2), ROOT);
        return;
      } catch (err) {
        why = `cannot set up network namespaces: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
    process.stderr.write(`no per-worker network namespaces: ${why}\n`);
    process.env[NETNS_ERROR_ENV] = why;
  }
  const ttlMs = num(a.ttl, 1000, 'ttl');
  const base = {
    seconds: num(a.seconds, 20, 'seconds'),
    workers: num(a.workers, 6, 'workers'),
    locks: num(a.locks, 2, 'locks'),
    ttlMs,
    holdMs: num(a.hold, Math.round(ttlMs / 4), 'hold'),
    intervalMs: num(a.interval, ttlMs * 2, 'interval'),
    detectionSlackMs: a.slack === undefined ? 0 : Number(a.slack),
  };
  const out = resolve(typeof a.out === 'string' ? a.out : join(ROOT, '.lockdeck', 'torture', new Date().toISOString().replace(/[:.]/g, '-')));
  const sets = a.each ? faultList.map((f) => [f]) : [faultList];
  const repeat = Math.floor(num(a.repeat, 1, 'repeat'));
  const results: CellResult[] = [];
  const notRun: Array<{ backend: string; faults: string; why: string }> = [];
  // Ctrl-C / SIGTERM: finish the current cell early (workers stopped, servers shut down, network
  // namespaces removed), print what was measured, run no further cell. A second one exits at once.
  const interrupt = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupt.signal.aborted) process.exit(130);
    process.stderr.write(`${sig}: stopping after the current cell's cleanup (again to exit at once)\n`);
    interrupt.abort();
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);
  // Inside the host namespace our parent deletes the namespaces; if it dies, stop.
  const parent = process.ppid;
  const watch = process.env[NETNS_ENV] ? setInterval(() => process.ppid !== parent && interrupt.abort(), 1000) : undefined;
  watch?.unref();
  // summary.json after every cell: a run that dies part-way keeps what it measured (--recheck).
  const save = () => writeFileSync(join(out, 'summary.json'), JSON.stringify({ at: new Date().toISOString(), options: base, results, notRun }, null, 2));
  mkdirSync(out, { recursive: true });
  for (let run = 1; run <= repeat; run++) for (const backend of backends) {
    for (const faults of sets) {
      if (interrupt.signal.aborted) break;
      const dir = join(out, `${backend}--${faults.join('+') || 'none'}${repeat > 1 ? `--r${run}` : ''}`);
      process.stderr.write(`${backend} × ${faults.join('+') || 'none'}${repeat > 1 ? ` (run ${run}/${repeat})` : ''}: ${base.seconds} s, ${base.workers} workers, ${base.locks} locks, ttl ${ttlMs} ms\n`);
      const cell: { failed: string | null } = { failed: null };
      const r = await runCell({ ...base, backend, faults, dir, netns: net === 'netns', signal: interrupt.signal }).catch((err: unknown) => {
        if (interrupt.signal.aborted) return null;
        // A cell that could not run (a server that did not start) is reported, and the run goes
        // on: one such cell must not lose the hours of cells around it.
        cell.failed = err instanceof Error ? err.message : String(err);
        return null;
      });
      if (cell.failed !== null) {
        process.stderr.write(`  FAILED TO RUN: ${cell.failed}\n`);
        notRun.push({ backend, faults: `${faults.join('+')}${repeat > 1 ? ` (run ${run})` : ''}`, why: `failed to run: ${cell.failed}` });
        save();
        continue;
      }
      if (!r) break;
      if (r.notRun) {
        process.stderr.write(`  not run: ${r.skipped.join('; ')}\n`);
        if (run === 1) notRun.push({ backend, faults: faults.join('+'), why: r.skipped.join('; ') });
        continue;
      }
      if (repeat > 1) r.run = run;
      results.push(r);
      save();
      for (const s of r.skipped) process.stderr.write(`  skipped ${s}\n`);
      for (const f of r.report.failures) process.stderr.write(`  FAILURE ${f}\n`);
    }
  }
  save();
  process.stdout.write(table(results) + '\n');
  if (repeat > 1) process.stdout.write(`\nover ${repeat} runs per cell:\n${repeatTable(results)}\n`);
  for (const n of notRun) process.stdout.write(`NOT RUN ${n.backend} × ${n.faults}: ${n.why}\n`);
  process.stdout.write(`histories and summary.json in ${out}\n`);
  if (results.some((r) => !r.report.ok)) process.exitCode = 1;
  if (interrupt.signal.aborted) {
    process.stdout.write('interrupted: the last cell is partial\n');
    process.exitCode = 130;
  }
  // Our parent (which deletes the namespaces) died: do it ourselves.
  const prefix = process.env[NETNS_ENV];
  if (prefix && process.ppid !== parent) for (const ns of listNamespaces(prefix)) deleteNamespace(ns);
}

if (process.argv[1] && /run\.ts$/.test(process.argv[1])) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(2);
  });
}
