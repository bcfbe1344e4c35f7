/**
 * The test harness's own guard: a server started on a port that another process already listens
 * on is never mistaken for ours. freePort()'s port can be taken between the probe and the bind;
 * before this guard a test once ran against another file's redis-server without its options.
 *
 * Every starter (redis, ZooKeeper, etcd, dynalite) goes through this check; the suite's global
 * setup starts each of them, so a check that refused our own server would fail everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

import { afterAll, describe, expect, it } from 'vitest';

import { freePort, holdsListener, PortTakenError, startRedis, waitForPort } from '../scripts/servers';

/** A plain node process listening on a free loopback port (it answers connects, nothing else). */
async function squatter(): Promise<{ proc: ChildProcess; port: number }> {
  const port = await freePort();
  const proc = spawn(process.execPath, ['-e', `require('net').createServer(s => s.destroy()).listen(${port}, '127.0.0.1', () => console.log('up'))`], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  await once(proc.stdout!, 'data');
  return { proc, port };
}

const squatters: ChildProcess[] = [];
afterAll(() => squatters.forEach((p) => p.kill('SIGKILL')));

describe('test servers: the port belongs to the server we started', () => {
  it('holdsListener tells the listening process from any other', async () => {
    const s = await squatter();
    squatters.push(s.proc);
    expect(holdsListener(s.proc.pid!, s.port)).toBe(true);
    expect(holdsListener(process.pid, s.port)).toBe(false);
    // waitForPort with the squatter as "our" process passes; with another process it refuses.
    await waitForPort('127.0.0.1', s.port, 2000, s.proc);
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    squatters.push(other);
    await expect(waitForPort('127.0.0.1', s.port, 2000, other)).rejects.toBeInstanceOf(PortTakenError);
    // A server that already exited (ours failed to bind) is not the listener either.
    const gone = spawn('true', [], { stdio: 'ignore' });
    await once(gone, 'exit');
    expect(holdsListener(gone.pid!, s.port)).toBe(false);
  });

  it('startRedis on a taken port fails instead of returning the other listener', async () => {
    const s = await squatter();
    squatters.push(s.proc);
    // An explicit port is not retried: the start must fail, not hand back the squatter.
    await expect(startRedis({ port: s.port })).rejects.toThrow(/another process|exited/);
  });
});
