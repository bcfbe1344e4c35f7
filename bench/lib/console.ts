/**
 * The console as the benchmarks run it: `next start` (test/console/harness.ts) with fresh tokens,
 * the given backends, and a backend-call bound long enough to time a 10,000-lock listing.
 * Shared by bench/console-scale.ts (Redis and SQLite) and bench/scale.ts (ZooKeeper, etcd,
 * DynamoDB), so both measure the same console.
 */
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';

import type { BackendConfig } from '../../lib/backends/config';
import { startConsole, type ConsoleServer } from '../../test/console/harness';
import type { BenchContext } from './context';
import { pin, tree } from './machine';

export interface BenchConsole {
  readonly server: ConsoleServer;
  /** Bearer tokens for the operator and viewer roles. */
  readonly operator: string;
  readonly viewer: string;
  /** From spawn to the first answer of /api/health (a build first if `.next` is stale). */
  readonly upMs: number;
}

export async function startBenchConsole(ctx: BenchContext, backends: BackendConfig[], env: Record<string, string> = {}): Promise<BenchConsole> {
  const operator = `op-${randomBytes(12).toString('hex')}`;
  const viewer = `vw-${randomBytes(12).toString('hex')}`;
  const t0 = performance.now();
  const server = await startConsole({
    config: { backends },
    env: {
      LOCKDECK_OPERATOR_TOKEN: operator,
      LOCKDECK_VIEWER_TOKEN: viewer,
      LOCKDECK_SESSION_SECRET: randomBytes(32).toString('hex'),
      // The default bound on one backend call (3 s) is below what listing 10,000 locks takes on a
      // loaded 2-core box (ZooKeeper most of all): raised, so the time is measured instead of
      // turning into 503s. BENCHMARKS.md says so.
      LOCKDECK_BACKEND_TIMEOUT_MS: '30000',
      ...env,
    },
    readyTimeoutMs: 90_000,
  });
  const upMs = performance.now() - t0;
  // The console gets every CPU (it was spawned from this process, which may be pinned to the
  // clients' CPU): on one CPU it would compete with the store's server for the same listing.
  if (ctx.pin) for (const p of tree(server.process.pid!)) pin(p, `0-${cpus().length - 1}`);
  return { server, operator, viewer, upMs };
}
