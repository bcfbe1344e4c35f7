/**
 * A real console server for the browser tests: `next start` on a given loopback port with its own
 * config, tokens and data dir, the way test/console/harness.ts runs it for the HTTP tests (same
 * build, made at most once by ensureNextBuild), plus `restart()` on the same port and data, for
 * the test that drops the event stream under an open page.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ensureNextBuild, ROOT } from '../../test/console/harness';
import { freePort } from '../../scripts/servers';

const NEXT_BIN = join(ROOT, 'node_modules', 'next', 'dist', 'bin', 'next');

export interface E2EConsole {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Every output line so far (for failure messages). */
  readonly output: string[];
  /** SIGTERM (then SIGKILL after 5 s) and wait for the exit; keeps the dir for a restart. */
  kill(): Promise<void>;
  /** Starts `next start` again on the same port with the same config and data. */
  start(): Promise<void>;
  /** kill() and remove the temp dir. */
  stop(): Promise<void>;
}

export interface ConsoleOptions {
  config: unknown;
  env: Record<string, string>;
  /** Default: a free port. */
  port?: number;
}

/** The runner's environment without LOCKDECK_* or Next internals that would leak into a server. */
function cleanEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('LOCKDECK_') || k.startsWith('__NEXT') || k === 'PORT' || k === 'NODE_ENV' || k.startsWith('E2E_')) continue;
    out[k] = v;
  }
  return out;
}

export async function startE2EConsole(opts: ConsoleOptions): Promise<E2EConsole> {
  await ensureNextBuild();
  const dir = mkdtempSync(join(tmpdir(), 'lockdeck-e2e-console-'));
  const configPath = join(dir, 'lockdeck.config.json');
  writeFileSync(configPath, JSON.stringify(opts.config, null, 2));
  const port = opts.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const env = { ...cleanEnv(), NEXT_TELEMETRY_DISABLED: '1', LOCKDECK_CONFIG: configPath, LOCKDECK_DATA_DIR: join(dir, 'data'), ...opts.env };
  const output: string[] = [];
  let child: ChildProcess | null = null;

  const start = async () => {
    // cwd: the temp dir, so the repository's own lockdeck.config.json and .lockdeck/ are never used.
    const c = spawn(process.execPath, [NEXT_BIN, 'start', ROOT, '-H', '127.0.0.1', '-p', String(port)], {
      cwd: dir,
      env: env as unknown as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    const collect = (d: Buffer) => {
      output.push(...d.toString().split('\n').filter(Boolean));
      if (output.length > 2000) output.splice(0, output.length - 2000);
    };
    c.stdout!.on('data', collect);
    c.stderr!.on('data', collect);
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (c.exitCode !== null) throw new Error(`next start exited with ${c.exitCode}:\n${output.slice(-40).join('\n')}`);
      try {
        const r = await fetch(`${url}/api/health`);
        if (r.ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`console not ready on ${url} after 60 s:\n${output.slice(-40).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const kill = () =>
    new Promise<void>((resolve) => {
      const c = child;
      if (!c || c.exitCode !== null || c.signalCode !== null) return resolve();
      const killer = setTimeout(() => c.kill('SIGKILL'), 5000);
      c.once('exit', () => {
        clearTimeout(killer);
        resolve();
      });
      c.kill('SIGTERM');
    });

  await start();
  return {
    url,
    port,
    dir,
    output,
    kill,
    start,
    async stop() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
