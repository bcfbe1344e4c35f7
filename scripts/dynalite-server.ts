/**
 * A throwaway DynamoDB emulator (dynalite, architect/dynalite) for tests and the bench: in memory
 * (no --path), on a free loopback port, stopped afterwards. Tables are ACTIVE at once
 * (--createTableMs 0) so fixtures need not wait out the emulator's default 500 ms CREATING state.
 *
 * dynalite checks that requests are signed but not by whom: clients use dummy credentials.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freePort, stopper, waitForPort, type RunningServer } from './servers';

export async function startDynalite(): Promise<RunningServer> {
  const cli = createRequire(import.meta.url).resolve('dynalite/cli.js');
  const port = await freePort();
  // The emulator keeps nothing on disk; the dir only satisfies RunningServer's shape.
  const dir = mkdtempSync(join(tmpdir(), 'lockdeck-dynalite-'));
  const proc = spawn(
    process.execPath,
    [cli, '--port', String(port), '--host', '127.0.0.1', '--createTableMs', '0', '--deleteTableMs', '0', '--updateTableMs', '0'],
    { stdio: 'ignore' },
  );
  const stop = stopper('dynalite', proc, dir);
  try {
    await waitForPort('127.0.0.1', port, 15_000, proc);
  } catch (err) {
    await stop();
    throw err;
  }
  return { name: 'dynalite', host: '127.0.0.1', port, url: `http://127.0.0.1:${port}`, dir, process: proc, stop };
}
