/**
 * The demo's workload on the embedded store: a few jobs that take, hold and release locks from
 * their own processes, so the console has live locks, waiters and handoffs to show.
 */
import { createSqliteBackend } from '../lib/backends/sqlite';
import { withLock } from '../lib/locks';

const backend = createSqliteBackend({ id: 'local', type: 'sqlite', path: '.lockdeck/locks.db' });
const jobs = [
  { name: 'nightly-report', holdMs: 4000, every: 6000 },
  { name: 'invoice-sync', holdMs: 1500, every: 2500 },
  { name: 'cache-warmup', holdMs: 800, every: 1200 },
];
let stopping = false;
const stop = () => {
  stopping = true;
  void backend.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

for (const job of jobs) {
  for (let worker = 1; worker <= 2; worker++) {
    void (async () => {
      while (!stopping) {
        await withLock(backend, job.name, { ttlMs: 10_000, waitMs: 30_000, owner: `demo-worker-${worker}`, labels: { job: job.name } }, (signal) =>
          new Promise((r) => {
            const t = setTimeout(r, job.holdMs * (0.5 + Math.random()));
            signal.addEventListener('abort', () => (clearTimeout(t), r(undefined)), { once: true });
          }),
        ).catch(() => undefined);
        await new Promise((r) => setTimeout(r, job.every * Math.random()));
      }
    })();
  }
}
