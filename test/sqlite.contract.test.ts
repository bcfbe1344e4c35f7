import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createSqliteBackend } from '../lib/backends/sqlite';
import { runBackendContract } from './contract';

// Every make() opens its own connection on one file, as separate processes on one host would.
runBackendContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockdeck-sqlite-contract-'));
  const path = join(dir, 'nested', 'locks.db');
  return {
    make: async () => createSqliteBackend({ id: 'local', type: 'sqlite', path }),
    teardown: async () => rmSync(dir, { recursive: true, force: true }),
  };
});
