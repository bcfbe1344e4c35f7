/**
 * Console section (issue 10, "the console at scale"; perf-reliability-anchors.md §5.2 D1, D2, D5):
 *
 *  1. bench/console-redis.ts: listing 1,000 lockdeck locks among 1,000,000 other Redis keys vs a
 *     full SCAN of the keyspace, the slowest server call, no KEYS;
 *  2. bench/console-scale.ts: 10,000 locks on each of a Redis and a SQLite backend behind a real
 *     `next start`: /api/locks answer time vs the backends' own list(), the server's RSS over
 *     repeated calls, first rows and scrolling in Debian's Chromium, and live-update latency from
 *     a lock taken in this process to the row in the browser's DOM.
 *
 * For trial runs: BENCH_CONSOLE_PARTS=inventory|scale runs one part; BENCH_CONSOLE_LOCKS=500
 * seeds fewer locks per backend (the figures then say so). A full run leaves both unset.
 */
import type { BenchContext } from './lib/context';
import { consoleRedisInventory } from './console-redis';
import { consoleScale } from './console-scale';

export async function consoleSection(ctx: BenchContext): Promise<void> {
  const only = process.env.BENCH_CONSOLE_PARTS?.split(',').map((s) => s.trim());
  if (!only || only.includes('inventory')) await consoleRedisInventory(ctx);
  if (!only || only.includes('scale')) await consoleScale(ctx);
}
