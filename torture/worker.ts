/**
 * One torture worker (a child process of torture/run.ts): loops acquire → fenced read-modify-write
 * on the register → release, on a few contended locks through a real lockdeck backend, logging
 * every step to its own JSONL history file (torture/history.ts).
 *
 * It deliberately keeps writing after its lock's signal aborted: an application should stop, but
 * the point here is to show that the register's fence check refuses the stale write (and the
 * unfenced cell shows what happens without it). Whether the signal had fired is logged.
 *
 * Spec: JSON in the TORTURE_SPEC environment variable (see WorkerSpec). Talks to the runner over
 * the Node IPC channel (an 'ipc' stdio slot, also when started through `ip netns exec` in a network
 * namespace of its own, torture/netns.ts): tells it which lock it holds (so faults can target
 * holders); `stop` ends it. The IPC channel is a socketpair, not the network: a net-partition cuts
 * the worker off from the store and the register, never from the runner.
 */
import { createBackend } from '../lib/backends';
import type { BackendConfig } from '../lib/backends/config';
import { createRedisBackend } from '../lib/backends/redis';
import { createSqliteBackend } from '../lib/backends/sqlite';
import { createZooKeeperBackend } from '../lib/backends/zookeeper';
import type { LockBackend, LockHandle } from '../lib/locks/types';
import { HistoryWriter } from './history';
import { RegisterClient } from './register';

export interface WorkerSpec {
  w: string;
  config: BackendConfig;
  /** Backend options (second argument of the backend's factory), e.g. short timeouts. */
  options?: Record<string, unknown>;
  registerPort: number;
  locks: string[];
  ttlMs: number;
  /** Upper bound of the time spent between the read and the write. */
  holdMs: number;
  thinkMs: number;
  waitMs: number;
  historyPath: string;
}

/** Messages to the runner. */
export type WorkerMessage =
  | { t: 'held'; lock: string; fence: string }
  /** The handle's signal fired: still in its critical section, but no longer the holder. */
  | { t: 'lost'; lock: string; fence: string }
  | { t: 'free'; lock: string }
  | { t: 'ready' };

/**
 * Builds the backend from its configuration, with backend-specific options where the factory
 * takes some. A new store (etcd, DynamoDB) works through createBackend with no change here.
 */
export function makeBackend(config: BackendConfig, options: Record<string, unknown> = {}): LockBackend {
  switch (config.type) {
    case 'redis':
      return createRedisBackend(config, options);
    case 'zookeeper':
      return createZooKeeperBackend(config, options);
    case 'sqlite':
      return createSqliteBackend(config, options);
    default:
      return createBackend(config);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const errText = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));

async function main(): Promise<void> {
  const spec = JSON.parse(process.env.TORTURE_SPEC ?? 'null') as WorkerSpec | null;
  if (!spec) throw new Error('worker: TORTURE_SPEC is not set');
  const log = new HistoryWriter(spec.historyPath, spec.w);
  const send = (m: WorkerMessage) => {
    try {
      process.send?.(m);
    } catch {
      // The runner went away: we are about to be stopped anyway.
    }
  };
  log.log({ t: 'start', pid: process.pid, backend: spec.config.type, ttlMs: spec.ttlMs });
  const reg = new RegisterClient(spec.registerPort);
  await reg.connect();
  const backend = makeBackend(spec.config, spec.options);
  let stopping = false;
  process.on('message', (m) => {
    if (m === 'stop') stopping = true;
  });
  process.on('SIGTERM', () => (stopping = true));
  // The runner is gone (killed, crashed): nobody will stop or check us, so leave now.
  process.on('disconnect', () => process.exit(0));
  send({ t: 'ready' });

  while (!stopping) {
    const lock = spec.locks[Math.floor(Math.random() * spec.locks.length)]!;
    log.log({ t: 'acquire-start', lock });
    let h: LockHandle;
    try {
      h = await backend.acquire(lock, { ttlMs: spec.ttlMs, waitMs: spec.waitMs });
    } catch (err) {
      log.log({ t: 'acquire-failed', lock, error: errText(err) });
      await sleep(50 + Math.random() * 100);
      continue;
    }
    const fence = h.fence;
    log.log({ t: 'acquired', lock, fence });
    send({ t: 'held', lock, fence });
    h.signal.addEventListener('abort', () => {
      const reason = (h.signal.reason as { reason?: string } | undefined)?.reason ?? String(h.signal.reason);
      log.log({ t: 'lost', lock, fence, reason });
      send({ t: 'lost', lock, fence });
    });
    try {
      const r = await reg.read(lock, fence);
      log.log({ t: 'read', lock, fence, ok: r.ok, value: r.value, plain: r.plain, aborted: h.signal.aborted });
      // The "work": long enough that a pause or a slow renewal can land inside it.
      await sleep(Math.random() * spec.holdMs);
      const value = r.value + 1;
      const plain = r.plain + 1;
      const wr = await reg.write(lock, fence, value, plain);
      log.log({ t: 'write', lock, fence, ok: wr.ok, value, plain, aborted: h.signal.aborted });
    } catch (err) {
      log.log({ t: 'op-failed', lock, fence, op: 'rmw', error: errText(err) });
    }
    log.log({ t: 'cs-end', lock, fence });
    try {
      await h.release();
      log.log({ t: 'released', lock, fence });
    } catch (err) {
      log.log({ t: 'released', lock, fence, error: errText(err) });
    }
    send({ t: 'free', lock });
    if (spec.thinkMs > 0) await sleep(Math.random() * spec.thinkMs);
  }
  await backend.close().catch(() => undefined);
  reg.close();
  log.close();
  process.exit(0);
}

if (process.argv[1] && /worker\.ts$/.test(process.argv[1])) {
  main().catch((err) => {
    console.error('worker failed:', err);
    process.exit(1);
  });
}
