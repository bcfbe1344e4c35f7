/**
 * Starts what every browser test shares, once per run: a throwaway redis-server, a temp dir with
 * the embedded SQLite store, and the console (`next start`, the same build the console HTTP tests
 * use) configured with both backends as `local` (sqlite) and `cache` (redis), with random operator
 * and viewer tokens. Tests read the addresses and tokens from E2E_* variables and seed locks
 * through lib/, never through the UI. Returns the teardown.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { startRedis } from '../scripts/servers';
import { consoleEnv, E2E_PORT } from './support/env';
import { startE2EConsole } from './support/console';

export default async function globalSetup(): Promise<() => Promise<void>> {
  const started = Date.now();
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), 'lockdeck-e2e-'));
  mkdirSync(join(dir, 'sqlite'));
  const sqlitePath = join(dir, 'sqlite', 'locks.db');
  const operator = `op-${randomBytes(16).toString('hex')}`;
  const viewer = `vw-${randomBytes(16).toString('hex')}`;
  const secret = randomBytes(32).toString('hex');
  const config = {
    backends: [
      { id: 'local', type: 'sqlite', path: sqlitePath },
      { id: 'cache', type: 'redis', url: redis.url },
    ],
  };
  let server;
  try {
    server = await startE2EConsole({ config, env: consoleEnv(operator, viewer, secret), port: E2E_PORT });
  } catch (err) {
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  Object.assign(process.env, {
    E2E_BASE_URL: server.url,
    E2E_REDIS_URL: redis.url,
    E2E_SQLITE_PATH: sqlitePath,
    E2E_OPERATOR_TOKEN: operator,
    E2E_VIEWER_TOKEN: viewer,
    E2E_SESSION_SECRET: secret,
    E2E_DIR: dir,
  });
  process.stderr.write(`[e2e] redis ${redis.url}, console ${server.url} ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  return async () => {
    await server.stop();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
