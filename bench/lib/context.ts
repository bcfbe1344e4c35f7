/** What run.ts hands each bench section. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { Row } from './report';

export interface BenchContext {
  /** Rows for the results table, in print order. */
  rows: Row[];
  /** Free-form per-section details for latest.json (raw summaries, per-round values...). */
  details: Record<string, unknown>;
  /** Versions of servers and clients, for the machine header. */
  versions: Record<string, string>;
  /** CPU lists for taskset, or null to let the scheduler place everything. */
  pin: { server: string; clients: string } | null;
  /** Sample counts are multiplied by this (BENCH_SCALE, e.g. 0.2 for a smoke run). */
  scale: number;
  /** Registers cleanup (stop a server, a worker); run.ts runs them in reverse order, even on error. */
  defer(fn: () => unknown): void;
  log(msg: string): void;
}

/** `n` scaled by ctx.scale, at least `min`. */
export function scaled(ctx: BenchContext, n: number, min = 1): number {
  return Math.max(min, Math.round(n * ctx.scale));
}

/** The installed version of an npm package, from its package.json. */
export function packageVersion(name: string): string {
  try {
    const p = fileURLToPath(new URL(`../../node_modules/${name}/package.json`, import.meta.url));
    return String((JSON.parse(readFileSync(p, 'utf8')) as { version?: string }).version ?? '?').replace(/^v/, '');
  } catch {
    return '?';
  }
}
