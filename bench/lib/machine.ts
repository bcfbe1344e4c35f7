/** What the bench ran on, and how busy the box was (CPU steal), for the report. */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';

export interface MachineInfo {
  cpuModel: string;
  cpus: number;
  memGiB: number;
  os: string;
  node: string;
  loadavg: number[];
  /** Filled in by the sections that start servers. */
  versions: Record<string, string>;
}

export function machineInfo(): MachineInfo {
  let model = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m?.[1]) model = m[1].trim();
  } catch {
    // not Linux: keep os.cpus()
  }
  return {
    cpuModel: model,
    cpus: cpus().length,
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${process.platform} ${release()}`,
    node: process.version,
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
    versions: {},
  };
}

export interface CpuTimes {
  total: number;
  steal: number;
  idle: number;
}

/** The aggregate `cpu` line of /proc/stat (jiffies); null where there is none. */
export function cpuTimes(): CpuTimes | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith('cpu '));
    if (!line) return null;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice; guest* are inside user/nice.
    const total = f.slice(0, 8).reduce((a, b) => a + (b || 0), 0);
    return { total, steal: f[7] ?? 0, idle: (f[3] ?? 0) + (f[4] ?? 0) };
  } catch {
    return null;
  }
}

/** Steal and busy share (percent) between two snapshots. */
export function cpuDelta(a: CpuTimes | null, b: CpuTimes | null): { stealPct: number; busyPct: number } | null {
  if (!a || !b || b.total <= a.total) return null;
  const dt = b.total - a.total;
  return {
    stealPct: Math.round(((b.steal - a.steal) / dt) * 1000) / 10,
    busyPct: Math.round((1 - (b.idle - a.idle) / dt) * 1000) / 10,
  };
}

/** Pins a process (all its threads) to a CPU list with taskset; returns false where that fails. */
export function pin(pid: number, cpuList: string): boolean {
  const r = spawnSync('taskset', ['-a', '-pc', cpuList, String(pid)], { encoding: 'utf8' });
  return r.status === 0;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const c = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (c) out.push(...c.split(/\s+/).map(Number));
    }
  } catch {
    // gone
  }
  return out;
}

/** A process and its descendants (at most 200), read from /proc/<pid>/task/<tid>/children. */
export function tree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length && all.length < 200; i++) all.push(...childrenOf(all[i]!));
  return all;
}

/** RSS of a process and its descendants, MiB. */
export function treeRssMiB(pid: number): number {
  let kb = 0;
  for (const p of tree(pid)) {
    try {
      const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      // exited
    }
  }
  return Math.round((kb / 1024) * 10) / 10;
}
