/**
 * The torture history: one JSON object per line, appended by every worker (one file each) and by
 * the runner (faults), then merged by the checker.
 *
 * Every event carries two clocks:
 *  - `mono`: CLOCK_MONOTONIC in microseconds (`process.hrtime.bigint()`), which every process on
 *    one host shares, so intervals of different workers compare exactly and a wall-clock jump
 *    cannot reorder them (perf-reliability-anchors §6);
 *  - `wall`: Date.now(), for humans and for the clock-jump fault (which only moves `wall`).
 */
import { closeSync, openSync, readFileSync, readdirSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import type { CellState } from './register';

interface Base {
  /** Monotonic µs (shared by all processes on the host). */
  mono: number;
  /** Epoch ms (the process's wall clock). */
  wall: number;
  /** Worker id (w0, w1...) or 'runner'. */
  w: string;
}

export type HistoryEvent = Base &
  (
    | { t: 'start'; pid: number; backend: string; ttlMs: number }
    | { t: 'acquire-start'; lock: string }
    | { t: 'acquired'; lock: string; fence: string }
    | { t: 'acquire-failed'; lock: string; error: string }
    /** The handle's signal aborted: the holder learned it lost the lock. */
    | { t: 'lost'; lock: string; fence: string; reason: string }
    /** A fenced read (ok = accepted by the register); `aborted`: the handle's signal had fired. */
    | { t: 'read'; lock: string; fence: string; ok: boolean; value: number; plain: number; aborted: boolean }
    | { t: 'write'; lock: string; fence: string; ok: boolean; value: number; plain: number; aborted: boolean }
    /** The register did not answer (the op may or may not have happened). */
    | { t: 'op-failed'; lock: string; fence: string; op: string; error: string }
    /** The critical section is over (the holder stops using the resource), release follows. */
    | { t: 'cs-end'; lock: string; fence: string }
    | { t: 'released'; lock: string; fence: string; error?: string }
    /** Runner: a fault began or ended. `target` is a worker id or a server name. */
    | { t: 'fault'; kind: FaultKind; phase: 'begin' | 'end'; target: string; detail?: string }
    /** Runner: every worker is up; the measured run (and the faults) start now. */
    | { t: 'ready'; workers: number }
    /** Runner: the register's final cells (authoritative counts). */
    | { t: 'register'; cells: Record<string, CellState> }
    /** Runner: run parameters, for the checker's bounds. */
    | { t: 'params'; backend: string; ttlMs: number; rttMs: number; livenessBoundMs: number; faults: string[]; seconds: number; workers: number; locks: string[] }
  );

export type FaultKind = 'pause' | 'kill' | 'server-kill' | 'member-kill' | 'failover' | 'delay' | 'partition' | 'clock-jump';

export function monoNow(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Appends events with a synchronous write each: a worker killed with SIGKILL loses nothing it logged. */
export class HistoryWriter {
  private readonly fd: number;
  constructor(
    path: string,
    private readonly w: string,
  ) {
    this.fd = openSync(path, 'a');
  }
  log(e: Record<string, unknown> & { t: HistoryEvent['t'] }): void {
    const line = JSON.stringify({ mono: monoNow(), wall: Date.now(), w: this.w, ...e });
    writeSync(this.fd, line + '\n');
  }
  close(): void {
    closeSync(this.fd);
  }
}

/** Reads every `*.jsonl` in `dir` (or one file), sorted by the monotonic clock. */
export function readHistory(pathOrDir: string): HistoryEvent[] {
  let files: string[];
  try {
    files = readdirSync(pathOrDir)
      .filter((f) => f.endsWith('.jsonl'))
      .map((f) => join(pathOrDir, f));
  } catch {
    files = [pathOrDir];
  }
  const events: HistoryEvent[] = [];
  for (const f of files) {
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        events.push(JSON.parse(line) as HistoryEvent);
      } catch {
        // A worker killed mid-write leaves at most one torn last line.
      }
    }
  }
  return events.sort((a, b) => a.mono - b.mono);
}
