/**
 * `npm run bench`: starts its own servers, runs every section on them, prints one table
 * (figure | value | baseline | ratio | target | pass/fail) and writes it to bench/results/latest.json.
 *
 * Exits non-zero only on errors; a missed target is printed, not fatal.
 *
 * Environment:
 *   BENCH_PIN=split    (default, anchors §6) servers on CPU 0, this process and the workers on
 *                      CPU 1 (taskset); falls back to off, with a note, where taskset fails
 *   BENCH_PIN=same     everything on CPU 1 (no cross-CPU wake-ups; CPU costs add up)
 *   BENCH_PIN=off      let the scheduler place processes: on the 2-vCPU box the PING baseline
 *                      then swings between ~25 µs (same vCPU) and ~75 µs (cross-vCPU) run to run
 *   BENCH_SCALE=0.2    multiply sample counts (smoke runs); default 1
 *   BENCH_SECTIONS=redis,sqlite,zookeeper   which sections to run (default all)
 *
 * A section is a function (ctx) => Promise<void> that adds rows; to add a store, write
 * bench/<store>.ts and list it in SECTIONS below.
 */
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

import type { BenchContext } from './lib/context';
import { cpuDelta, cpuTimes, machineInfo, pin } from './lib/machine';
import { formatTable, writeJson } from './lib/report';
import { nowMs } from './lib/stats';
import { stopAllWorkers } from './lib/workers';
import { etcdSection } from './etcd';
import { redisSection } from './redis';
import { sqliteSection } from './sqlite';
import { dynamodbSection } from './dynamodb';
import { zookeeperSection } from './zookeeper';
import { consoleSection } from './console';
import { scaleSection } from './scale';

const SECTIONS: Record<string, (ctx: BenchContext) => Promise<void>> = {
  redis: redisSection,
  sqlite: sqliteSection,
  zookeeper: zookeeperSection,
  dynamodb: dynamodbSection,
  etcd: etcdSection,
  console: consoleSection,
  scale: scaleSection,
};

const OUT = fileURLToPath(new URL('./results/latest.json', import.meta.url));

async function main(): Promise<number> {
  const startedAt = new Date().toISOString();
  const t0 = nowMs();
  const machine = machineInfo();
  let pinMode = process.env.BENCH_PIN === '1' ? 'split' : (process.env.BENCH_PIN ?? 'split');
  if (!['off', 'split', 'same'].includes(pinMode)) throw new Error(`BENCH_PIN must be off, split or same, got ${pinMode}`);
  if (pinMode !== 'off' && machine.cpus < 2) pinMode = 'off';
  let pinning = pinMode === 'split' ? { server: '0', clients: '1' } : pinMode === 'same' ? { server: '1', clients: '1' } : null;
  if (pinning && !pin(process.pid, pinning.clients)) {
    console.log(`note: taskset failed, running unpinned (BENCH_PIN=${pinMode} ignored)`);
    pinMode = 'off';
    pinning = null;
  }
  const scale = Number(process.env.BENCH_SCALE ?? '1');
  if (!(scale > 0 && scale <= 10)) throw new Error(`BENCH_SCALE must be in (0, 10], got ${process.env.BENCH_SCALE}`);
  const wanted = (process.env.BENCH_SECTIONS ?? Object.keys(SECTIONS).join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const w of wanted) if (!SECTIONS[w]) throw new Error(`unknown section "${w}" (have: ${Object.keys(SECTIONS).join(', ')})`);

  const cleanups: (() => unknown)[] = [];
  const ctx: BenchContext = {
    rows: [],
    details: {},
    versions: machine.versions,
    pin: pinning,
    scale,
    defer: (fn) => cleanups.push(fn),
    log: (msg) => console.log(`[${((nowMs() - t0) / 1000).toFixed(1)}s] ${msg}`),
  };
  const runCleanups = async () => {
    await stopAllWorkers();
    while (cleanups.length) {
      try {
        await cleanups.pop()!();
      } catch (err) {
        console.error('cleanup:', err instanceof Error ? err.message : err);
      }
    }
  };
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\n${sig}: stopping servers and workers`);
    void runCleanups().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  console.log(
    `lockdeck bench — ${machine.cpuModel} × ${machine.cpus}, ${machine.memGiB} GiB, ${machine.os}, node ${machine.node}, ` +
      `load ${machine.loadavg.join(' ')}, pinning ${pinning ? `${pinMode} (server→CPU${pinning.server}, clients→CPU${pinning.clients})` : 'off'}, scale ${scale}`,
  );
  const cpuStart = cpuTimes();
  const sectionCpu: Record<string, unknown> = {};
  try {
    for (const name of wanted) {
      const a = cpuTimes();
      const ts = nowMs();
      ctx.log(`section ${name}`);
      await SECTIONS[name]!(ctx);
      sectionCpu[name] = { seconds: Math.round(nowMs() - ts) / 1000, ...cpuDelta(a, cpuTimes()) };
    }
  } finally {
    await runCleanups();
  }
  const cpu = cpuDelta(cpuStart, cpuTimes());
  const elapsedS = Math.round(nowMs() - t0) / 1000;

  console.log('');
  console.log(
    `machine: ${machine.cpuModel} × ${machine.cpus}; node ${machine.node}; ` +
      Object.entries(ctx.versions).map(([k, v]) => `${k} ${v}`).join('; '),
  );
  console.log(
    `cpu during run: steal ${cpu?.stealPct ?? '?'}%, busy ${cpu?.busyPct ?? '?'}% (all processes, ours included); ` +
      `load ${machine.loadavg.join(' ')} at start, ${loadavg().map((x) => x.toFixed(2)).join(' ')} at end; elapsed ${elapsedS} s` +
      (cpu && cpu.stealPct > 5 ? '  ** steal > 5 %: treat this run as noisy **' : ''),
  );
  console.log('');
  console.log(formatTable(ctx.rows));
  const failed = ctx.rows.filter((r) => r.verdict === 'FAIL').length;
  console.log(`\n${failed === 0 ? 'all targets met' : `${failed} target(s) missed`}; results in ${OUT.replace(/^.*?\/bench\//, 'bench/')}`);

  writeJson(OUT, {
    startedAt,
    elapsedS,
    machine,
    pinning: { mode: pinMode, cpus: ctx.pin },
    scale,
    cpu,
    sectionCpu,
    rows: ctx.rows,
    details: ctx.details,
  });
  return 0;
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    console.error('bench failed:', err instanceof Error ? (err.stack ?? err.message) : err);
    await stopAllWorkers().catch(() => undefined);
    process.exit(1);
  },
);
