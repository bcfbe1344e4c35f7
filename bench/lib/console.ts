/**
 * The console as the benchmarks run it: `next start` (test/console/harness.ts) with fresh tokens,
 * the given backends, and a backend-call bound long enough to time a 10,000-lock listing.
 * Shared by bench/console-scale.ts (Redis and SQLite) and bench/scale.ts (ZooKeeper, etcd,
 * DynamoDB), so both measure the same console.
 *
 * Memory: the console's RSS is a sawtooth (V8 lets the heap grow for several 10,000-lock listings
 * before it collects, and grows its limit as it goes), so RSS readings say little about whether
 * anything is retained. The console therefore runs with Node's inspector on a loopback port, and
 * `heapAfterGc()` forces a full collection over the DevTools protocol (HeapProfiler.collectGarbage)
 * and reads the live JS heap (Runtime.getHeapUsage): what the process keeps, listing after listing.
 * Called between timed calls only. The protocol client is Node's WebSocket (global from Node 22;
 * `npm run bench` passes --experimental-websocket for Node 20).
 */
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';

import type { BackendConfig } from '../../lib/backends/config';
import { freePort } from '../../scripts/servers';
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
  /**
   * The console's JS heap in MiB after a forced full GC, or null where this process has no
   * WebSocket client (Node 20 without --experimental-websocket).
   */
  heapAfterGc(): Promise<number | null>;
  /** Stops the server (and the inspector session). */
  stop(): Promise<void>;
}

type Cdp = (method: string, params?: Record<string, unknown>) => Promise<Record<string, unknown>>;

/** A DevTools-protocol session with the Node process whose inspector listens on 127.0.0.1:port. */
async function inspectorSession(port: number): Promise<{ send: Cdp; close(): void }> {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
  const ws = new WebSocket(targets[0]!.webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    ws.addEventListener('open', () => resolve(), { once: true });
    ws.addEventListener('error', () => reject(new Error(`inspector on 127.0.0.1:${port}: WebSocket error`)), { once: true });
  });
  let next = 0;
  const pending = new Map<number, { resolve(v: Record<string, unknown>): void; reject(e: Error): void }>();
  ws.addEventListener('message', (e) => {
    const m = JSON.parse(String(e.data)) as { id?: number; result?: Record<string, unknown>; error?: { message: string } };
    const p = m.id === undefined ? undefined : pending.get(m.id);
    if (!p) return; // an event
    pending.delete(m.id!);
    if (m.error) p.reject(new Error(`inspector: ${m.error.message}`));
    else p.resolve(m.result ?? {});
  });
  const send: Cdp = (method, params = {}) =>
    new Promise((resolve, reject) => {
      const id = ++next;
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  return { send, close: () => ws.close() };
}

export async function startBenchConsole(ctx: BenchContext, backends: BackendConfig[], env: Record<string, string> = {}): Promise<BenchConsole> {
  const operator = `op-${randomBytes(12).toString('hex')}`;
  const viewer = `vw-${randomBytes(12).toString('hex')}`;
  const inspectPort = await freePort();
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
      // Loopback only; idle unless heapAfterGc() asks (see the top of this file).
      NODE_OPTIONS: `--inspect=127.0.0.1:${inspectPort}`,
      ...env,
    },
    readyTimeoutMs: 90_000,
  });
  const upMs = performance.now() - t0;
  // The console gets every CPU (it was spawned from this process, which may be pinned to the
  // clients' CPU): on one CPU it would compete with the store's server for the same listing.
  if (ctx.pin) for (const p of tree(server.process.pid!)) pin(p, `0-${cpus().length - 1}`);
  let session: Promise<{ send: Cdp; close(): void }> | undefined;
  const heapAfterGc = async (): Promise<number | null> => {
    if (typeof WebSocket === 'undefined') return null;
    const { send } = await (session ??= inspectorSession(inspectPort));
    // Twice: the first full GC can leave objects that only become garbage when it runs finalizers.
    await send('HeapProfiler.collectGarbage');
    await send('HeapProfiler.collectGarbage');
    const u = (await send('Runtime.getHeapUsage')) as { usedSize: number };
    return Math.round((u.usedSize / 2 ** 20) * 10) / 10;
  };
  const stop = async () => {
    // The session first, so its socket does not outlive the process.
    if (session) (await session.catch(() => null))?.close();
    await server.stop();
  };
  return { server, operator, viewer, upMs, heapAfterGc, stop };
}
