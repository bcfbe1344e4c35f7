/**
 * One Sentinel over a primary and its replica, and the failover the torture injects through it:
 * shared by the `sentinel` deployment (torture/backends.ts) and `sentinel-lag` / `sentinel-lag-wait`
 * (torture/sentinel-lag.ts), which differ only in how their redis-servers are reached.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { ensureBinary, freePort, killHard, waitForPort } from '../scripts/servers';
import type { DeployContext } from './backends';

/** A redis-server the failover can kill and bring back on the same (public) port. */
export interface SentinelNode {
  readonly port: number;
  kill(): Promise<void>;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * redis-cli, asynchronously: torture/sentinel-lag.ts runs its proxies in this process's event loop,
 * so a spawnSync through one of them would wait for bytes that this loop, blocked in it, never
 * forwards.
 */
export const redisCli = (port: number, ...args: string[]) =>
  new Promise<string>((resolve) => execFile('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 5000 }, (_err, out) => resolve(out ?? '')));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface RunningSentinel {
  /** `host:port` of the Sentinel, for the backend configuration. */
  readonly sentinel: string;
  /**
   * Kills the primary, waits for the replica's promotion, brings the old primary back as a replica
   * of the new one; says what happened.
   */
  failover(): Promise<string>;
  /** Stops the Sentinel and both nodes. */
  stop(): Promise<void>;
}

/**
 * Starts a Sentinel (`mymaster`, quorum 1) in a dir under ctx.dir, monitoring `primary` (of which
 * `replica` is already a replica); resolves once it knows the replica (it learns it from the
 * primary's INFO).
 */
export async function startSentinel(ctx: DeployContext, dirPrefix: string, primary: SentinelNode, replica: SentinelNode): Promise<RunningSentinel> {
  const bin = ensureBinary('redis-server', 'redis-server');
  const sport = await freePort();
  const sdir = mkdtempSync(join(ctx.dir, dirPrefix));
  writeFileSync(
    join(sdir, 'sentinel.conf'),
    [
      `port ${sport}`, 'bind 127.0.0.1', `dir ${sdir}`, 'protected-mode no', `logfile ${join(sdir, 'sentinel.log')}`,
      `sentinel monitor mymaster 127.0.0.1 ${primary.port} 1`,
      // Shorter (500 ms) made this lone Sentinel flag the just-promoted replica down half a second
      // after the switch and fail back over to the old primary, restarted empty: a double failover
      // that loses everything, not the replication lag sentinel-lag measures.
      'sentinel down-after-milliseconds mymaster 1000',
      'sentinel failover-timeout mymaster 5000',
    ].join('\n') + '\n',
  );
  const sproc = spawn(bin, [join(sdir, 'sentinel.conf'), '--sentinel'], { stdio: 'ignore' });
  const nodes = [primary, replica];
  await waitForPort('127.0.0.1', sport, 10_000, sproc);
  const primaryPort = async () => Number((await redisCli(sport, 'sentinel', 'get-master-addr-by-name', 'mymaster')).split('\n')[1]);
  for (let i = 0; i < 100 && !(await redisCli(sport, 'sentinel', 'replicas', 'mymaster')).includes(String(replica.port)); i++) await sleep(100);
  return {
    sentinel: `127.0.0.1:${sport}`,
    failover: async () => {
      const before = await primaryPort();
      const victim = nodes.find((n) => n.port === before);
      if (!victim) throw new Error(`failover: primary port ${before} is not ours`);
      await victim.kill();
      for (let i = 0; i < 200 && (await primaryPort()) === before; i++) await sleep(50);
      const after = await primaryPort();
      // Bring the old primary back; the Sentinel reconfigures it as a replica of the new one.
      await victim.restart();
      await redisCli(victim.port, 'replicaof', '127.0.0.1', String(after));
      return `primary ${before} killed, ${after === before ? 'NOT promoted' : `replica ${after} promoted`}`;
    },
    stop: async () => {
      await killHard(sproc);
      rmSync(sdir, { recursive: true, force: true });
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}
