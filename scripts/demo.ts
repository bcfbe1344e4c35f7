/**
 * `npm run demo`: builds the console (first run only) and starts it on the embedded default
 * store (`.lockdeck/locks.db`), with a fleet of scheduler instances in separate processes that
 * contend for a handful of jobs, workers that queue for a shared lock, and a worker that now and
 * then dies while holding a lock, so there is something stuck to force-release.
 *
 * It prints the console's login URL. Ctrl-C stops everything and leaves no process behind.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';

const port = Number(process.env.PORT ?? 3000);
const token = process.env.LOCKDECK_OPERATOR_TOKEN ?? randomBytes(24).toString('base64url');
const env: NodeJS.ProcessEnv = { ...process.env, NEXT_TELEMETRY_DISABLED: '1', LOCKDECK_OPERATOR_TOKEN: token };
delete env.LOCKDECK_CONFIG; // the demo is about the embedded default
const children = new Set<ChildProcess>();
let stopping = false;

function run(cmd: string, args: string[], label: string): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], env });
  children.add(child);
  child.on('exit', (code, signal) => {
    children.delete(child);
    if (!stopping && label === 'console') {
      console.error(`the console exited (${signal ?? code}); stopping the demo`);
      void stop(1);
    }
  });
  return child;
}

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  const exits = [...children].map((c) => new Promise((r) => c.once('exit', r)));
  for (const c of children) c.kill('SIGTERM');
  const killer = setTimeout(() => {
    for (const c of children) c.kill('SIGKILL');
  }, 5000);
  await Promise.all(exits);
  clearTimeout(killer);
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

if (!existsSync('.next/BUILD_ID') || process.argv.includes('--build')) {
  console.log('Building the console (first run only; `npm run demo -- --build` rebuilds)...');
  const r = spawnSync(process.execPath, ['node_modules/next/dist/bin/next', 'build'], { stdio: 'inherit', env });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

run(process.execPath, ['node_modules/next/dist/bin/next', 'start', '-p', String(port), '-H', '127.0.0.1'], 'console');
for (const instance of ['scheduler-1', 'scheduler-2', 'scheduler-3']) {
  run(process.execPath, ['--import', 'tsx', 'scripts/demo-fleet.ts', 'scheduler', instance], instance);
}
run(process.execPath, ['--import', 'tsx', 'scripts/demo-fleet.ts', 'contenders'], 'contenders');
run(process.execPath, ['--import', 'tsx', 'scripts/demo-fleet.ts', 'doomed'], 'doomed');

console.log(`\nlockdeck demo: open http://127.0.0.1:${port}/?token=${token}\n(Ctrl-C stops the console and the fleet)\n`);
