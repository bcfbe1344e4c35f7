/**
 * A throwaway DynamoDB emulator (dynalite, architect/dynalite) for tests and the bench, on a free
 * loopback port, stopped afterwards. Tables are ACTIVE at once (--createTableMs 0) so fixtures need
 * not wait out the emulator's default 500 ms CREATING state.
 *
 * By default it keeps everything in memory (memory-level): fastest, and tests need nothing more.
 * With `persist`, dynalite is given `--path` and stores tables and items in LevelDB
 * (classic-level, through `level`; node_modules/dynalite/db/index.js `new Level(options.path)`).
 * classic-level's install script is disabled (package.json allowScripts), which is harmless: the
 * package ships prebuilt binaries (prebuilds/linux-x64) that node-gyp-build loads without a build.
 * A persisted server can be SIGKILLed and restarted on the same port from the same LevelDB dir
 * (kill / restart: the torture runner's server-kill).
 *
 * Durability of that restart: dynalite answers a write after LevelDB's put/batch callback; LevelDB
 * appends the record to its log with write(2) before that (db_impl.cc DBImpl::Write → log::Writer
 * AddRecord → PosixWritableFile Flush), without fsync (sync: false). A process kill therefore loses
 * no acknowledged write (the page cache survives it); a host crash or power loss could.
 *
 * dynalite checks that requests are signed but not by whom: clients use dummy credentials.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { crashable, freePort, portLost, waitForPort, type RunningServer } from './servers';

export interface DynaliteOptions {
  /** Store tables in LevelDB under the server's dir (default: in memory, lost on exit). */
  persist?: boolean;
}

export interface DynaliteServer extends RunningServer {
  /** True when the data is in LevelDB (`persist`), i.e. survives kill + restart. */
  readonly persistent: boolean;
  /** SIGKILL (a crash, no graceful LevelDB close); resolves once the process is gone. */
  kill(): Promise<void>;
  /**
   * Starts dynalite again on the same port (and, when persistent, the same LevelDB dir); resolves
   * once it accepts connections. In memory, the restarted server is empty: no tables.
   */
  restart(timeoutMs?: number): Promise<void>;
}

function exited(proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null;
}

export async function startDynalite(opts: DynaliteOptions = {}, attempt = 1): Promise<DynaliteServer> {
  const cli = createRequire(import.meta.url).resolve('dynalite/cli.js');
  const port = await freePort();
  // In memory the dir only satisfies RunningServer's shape; persisted, it holds the LevelDB store.
  const dir = mkdtempSync(join(tmpdir(), 'lockdeck-dynalite-'));
  const args = [
    cli, '--port', String(port), '--host', '127.0.0.1',
    '--createTableMs', '0', '--deleteTableMs', '0', '--updateTableMs', '0',
    ...(opts.persist ? ['--path', join(dir, 'leveldb')] : []),
  ];
  const proc = crashable(
    'dynalite',
    dir,
    () => spawn(process.execPath, args, { stdio: 'ignore' }),
    (p, timeoutMs) =>
      waitForPort('127.0.0.1', port, timeoutMs, p).catch(async (err) => {
        if (!exited(p)) p.kill('SIGKILL');
        throw err;
      }),
  );
  const server: DynaliteServer = {
    name: 'dynalite',
    host: '127.0.0.1',
    port,
    url: `http://127.0.0.1:${port}`,
    dir,
    persistent: opts.persist === true,
    get process() {
      return proc.process;
    },
    kill: () => proc.kill(),
    restart: (timeoutMs = 15_000) => proc.restart(timeoutMs),
    stop: () => proc.stop(),
  };
  try {
    await waitForPort('127.0.0.1', port, 15_000, server.process);
  } catch (err) {
    const lost = portLost(err, server.process);
    await server.stop();
    // freePort()'s port taken before dynalite bound it (servers.ts, PortTakenError): fresh port, twice more.
    if (lost && attempt < 3) return startDynalite(opts, attempt + 1);
    throw err;
  }
  return server;
}
