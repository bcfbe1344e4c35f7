/**
 * The demo's workload on the embedded store, one role per process (see scripts/demo.ts):
 *  - `scheduler <instance>`: a scheduler instance; three of them contend for the same jobs.
 *  - `contenders`: workers that queue for one shared lock, so the console shows waiters.
 *  - `doomed`: takes `payment-reconciler` with a long TTL and then dies without releasing it,
 *    again and again: a stuck lock to force-release, with a worker waiting behind it.
 */
import { createSqliteBackend } from '../lib/backends/sqlite';
import { withLock } from '../lib/locks';
import { Scheduler } from '../lib/scheduler';

// LOCKDECK_DEMO_DB: another store file (the e2e test runs the fleet against its own console's).
const backend = createSqliteBackend({ id: 'local', type: 'sqlite', path: process.env.LOCKDECK_DEMO_DB || '.lockdeck/locks.db' });
const [role, instance = 'demo'] = process.argv.slice(2);
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
const between = (a: number, b: number) => a + Math.random() * (b - a);
let stopping = false;
const stoppers: (() => Promise<void>)[] = [];
const shutdown = async () => {
  stopping = true;
  await Promise.allSettled(stoppers.map((s) => s()));
  await backend.close();
  process.exit(0);
};
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());

/** A job body that takes a while and sometimes fails. */
const work = (minMs: number, maxMs: number, failRate: number) => async ({ signal }: { signal: AbortSignal }) => {
  await sleep(between(minMs, maxMs), signal);
  if (Math.random() < failRate) throw new Error('upstream API answered 503');
};

if (role === 'scheduler') {
  const scheduler = new Scheduler(backend, { instance });
  scheduler
    .add({ name: 'nightly-report', everyMs: 20_000, lockAtMostForMs: 30_000, lockAtLeastForMs: 2_000, handler: work(3_000, 8_000, 0.1) })
    .add({ name: 'invoice-sync', everyMs: 5_000, lockAtMostForMs: 10_000, handler: work(500, 2_500, 0.05) })
    .add({ name: 'cache-warmup', cron: '*/10 * * * * *', lockAtMostForMs: 8_000, handler: work(100, 400, 0) })
    .add({ name: 'email-digest', everyMs: 7_000, lockAtMostForMs: 6_000, handler: work(1_000, 3_000, 0.25) })
    .start();
  stoppers.push(() => scheduler.stop({ timeoutMs: 3000 }));
} else if (role === 'contenders') {
  for (let worker = 1; worker <= 3; worker++) {
    void (async () => {
      while (!stopping) {
        await withLock(backend, 'inventory/warehouse-7', { ttlMs: 10_000, waitMs: 60_000, owner: `stock-writer-${worker}`, labels: { job: 'stock-writer' } }, (signal) =>
          sleep(between(800, 2_500), signal),
        ).catch(() => undefined);
        await sleep(between(200, 1_500));
      }
    })();
  }
  // Waits behind the doomed worker's stuck lock, so a forced release visibly hands it on.
  void (async () => {
    while (!stopping) {
      await withLock(backend, 'payment-reconciler', { ttlMs: 10_000, waitMs: Infinity, owner: 'reconciler-standby', labels: { job: 'payment-reconciler' } }, (signal) =>
        sleep(between(2_000, 4_000), signal),
      ).catch(() => undefined);
      await sleep(between(5_000, 10_000));
    }
  })();
} else if (role === 'doomed') {
  // A child that takes the lock and then crashes; we start another one a while later.
  if (process.argv[3] === 'child') {
    const h = await backend.acquire('payment-reconciler', { ttlMs: 300_000, waitMs: Infinity, autoRenew: false, owner: 'reconciler-7f3a (pid ' + process.pid + ')', labels: { job: 'payment-reconciler' } });
    console.log(`[demo] payment-reconciler taken with fence ${h.fence}; this worker will now crash without releasing it`);
    await sleep(between(3_000, 8_000));
    process.exit(1);
  }
  const { spawn } = await import('node:child_process');
  while (!stopping) {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo-fleet.ts', 'doomed', 'child'], { stdio: 'inherit' });
    stoppers.push(async () => void child.kill('SIGKILL'));
    await new Promise((r) => child.once('exit', r));
    await sleep(between(60_000, 120_000));
  }
} else {
  console.error(`unknown role ${role}`);
  process.exit(2);
}
