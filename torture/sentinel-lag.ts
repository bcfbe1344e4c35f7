/**
 * Sentinel with realistic replication lag, for measuring what the Redis `waitReplicas` option buys
 * on failover (issue 9, anchors R6). Used by torture/backends.ts as `sentinel-lag` (plain) and
 * `sentinel-lag-wait` (waitReplicas 1).
 *
 * Why a proxy: on one host, SIGKILL of a primary loses almost nothing that it has acknowledged:
 * Redis writes the replication stream to the replica's socket in the same event-loop pass as the
 * client's reply, and the kernel still delivers a dead process's socket buffers on loopback. So
 * the plain `sentinel` deployment rarely loses a lock. Between hosts, the last few ms to tens of
 * ms of the stream are in flight when a primary dies (Jepsen, aphyr.com/posts/283-jepsen-redis);
 * a proxy that holds the replication link's bytes for LAG ms, and drops them when the primary
 * dies, reproduces that.
 *
 * Each redis-server listens on a private port behind its own FaultProxy; everyone (clients, the
 * Sentinel, replicas) uses the proxy's public port, and each server announces its public port
 * (`replica-announce-port`), so the Sentinel's view, clients' discovery and replicaof after a
 * failover all stay on the proxies. The proxy (torture/proxy.ts, option `delayed`) delays only
 * replication links: a connection whose client sends REPLCONF (a replica's handshake,
 * redis/src/replication.c syncWithMaster) is delayed LAG ms in both directions from then on (the
 * stream one way, REPLCONF ACKs the other, so WAIT sees a 2 × LAG round trip); clients and the
 * Sentinel pass undelayed. The Redis
 * `repl-disable-tcp-nodelay` knob would add at most ~40 ms of Nagle delay but lose nothing on a
 * kill (the kernel still sends it); DEBUG SLEEP / CLIENT PAUSE on the replica stall it without
 * dropping bytes either.
 */
import { freePort, killHard, startRedis, type RunningServer } from '../scripts/servers';
import type { DeploymentSpec } from './backends';
import { FaultProxy } from './proxy';
import { redisCli as cli, startSentinel } from './sentinel';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One redis-server behind its proxy; `port` is the public (proxy) port. */
async function laggedRedis(lagMs: number) {
  const privatePort = await freePort();
  const proxy = new FaultProxy('127.0.0.1', privatePort, { delayed: (firstBytes) => /REPLCONF/i.test(firstBytes) });
  proxy.setDelay(lagMs);
  const port = await proxy.start();
  // No persistence, like `sentinel`: a killed primary comes back empty and re-syncs as a replica.
  const args = ['--repl-diskless-sync-delay', '0', '--replica-announce-ip', '127.0.0.1', '--replica-announce-port', String(port)];
  let server: RunningServer = await startRedis({ port: privatePort, args });
  return {
    port,
    proxy,
    kill: () => killHard(server.process),
    restart: async () => {
      server = await startRedis({ port: privatePort, args });
    },
    stop: async () => {
      await proxy.stop();
      await server.stop();
    },
  };
}

/**
 * `sentinel-lag` / `sentinel-lag-wait`: primary + replica (one-way replication lag `lagMs`) + one
 * Sentinel; failover = SIGKILL the primary, as `sentinel` does.
 */
export function sentinelLag(wait: boolean, lagMs = 50): DeploymentSpec {
  const options = { commandTimeoutMs: 1000, recheckMs: 500 };
  return {
    description: `Sentinel, replication ${lagMs} ms behind (lag proxy on the replication link)${wait ? ', waitReplicas 1' : ', no WAIT'}; failover on primary kill`,
    async start(ctx) {
      const a = await laggedRedis(lagMs);
      const b = await laggedRedis(lagMs);
      await cli(b.port, 'replicaof', '127.0.0.1', String(a.port));
      for (let i = 0; i < 200 && !/master_link_status:up/.test(await cli(b.port, 'info', 'replication')); i++) await sleep(50);
      const s = await startSentinel(ctx, 'sentinel-lag-', a, b);
      return {
        config: {
          id: 'torture', type: 'redis', sentinel: { name: 'mymaster', sentinels: [s.sentinel] },
          ...(wait ? { waitReplicas: 1, waitTimeoutMs: 300 } : {}),
        },
        options,
        livenessExtraMs: options.recheckMs + 1000,
        pauseMs: ctx.ttlMs * 2,
        proxyable: false,
        failover: s.failover,
        stop: s.stop,
      };
    },
  };
}
