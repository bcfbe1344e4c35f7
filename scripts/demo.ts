/**
 * `npm run demo`: builds the console and starts it on the embedded default store
 * (`.lockdeck/locks.db`), with a few demo locks held by a separate process so there is
 * something to look at. Ctrl-C stops everything; no process is left behind.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

const port = Number(process.env.PORT ?? 3000);
const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1' };
const children: ChildProcess[] = [];

function stopAll(code: number): never {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  process.exit(code);
}
process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));

if (!existsSync('.next/BUILD_ID') || process.argv.includes('--build')) {
  console.log('Building the console (first run only; `npm run demo -- --build` rebuilds)...');
  const r = spawnSync('npx', ['next', 'build'], { stdio: 'inherit', env });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const server = spawn('npx', ['next', 'start', '-p', String(port), '-H', '127.0.0.1'], { stdio: 'inherit', env });
children.push(server);
server.on('exit', (code) => stopAll(code ?? 0));

const fleet = spawn('npx', ['tsx', 'scripts/demo-fleet.ts'], { stdio: 'inherit', env });
children.push(fleet);

console.log(`\nlockdeck console: http://127.0.0.1:${port}/\n`);
