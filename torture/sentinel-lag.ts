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
 * Each redis-server listens on a private port behind its own LagProxy; everyone (clients, the
 * Sentinel, replicas) uses the proxy's public port, and each server announces its public port
 * (`replica-announce-port`), so the Sentinel's view, clients' discovery and replicaof after a
 * failover all stay on the proxies. The proxy delays only replication links: a connection whose
 * client sends REPLCONF (a replica's handshake, redis/src/replication.c syncWithMaster) is delayed
 * LAG ms in both directions from then on (the stream one way, REPLCONF ACKs the other, so WAIT
 * sees a 2 × LAG round trip); clients and the Sentinel pass undelayed. The Redis
 * `repl-disable-tcp-nodelay` knob would add at most ~40 ms of Nagle delay but lose nothing on a
 * kill (the kernel still sends it); DEBUG SLEEP / CLIENT PAUSE on the replica stall it without
 * dropping bytes either.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';

import { ensureBinary, freePort, startRedis, waitForPort, type RunningServer } from '../scripts/servers';
import type { DeploymentSpec } from './backends';

interface Pipe {
  queue: Array<{ at: number; buf: Buffer }>;
  timer: NodeJS.Timeout | undefined;
  to: Socket;
}

/** TCP proxy in front of one redis-server that delays replication links only (see above). */
export class LagProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;
  /** Connections that turned out to be replication links. */
  replLinks = 0;

  constructor(
    public targetPort: number,
    private readonly lagMs: number,
  ) {}

  async start(): Promise<number> {
    this.server = createServer((c) => this.accept(c));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = this.server.address();
    if (typeof addr !== 'object' || !addr) throw new Error('lag proxy: no address');
    this.port = addr.port;
    return this.port;
  }

  private accept(client: Socket): void {
    const upstream = connect({ host: '127.0.0.1', port: this.targetPort });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.sockets.add(client).add(upstream);
    const up: Pipe = { queue: [], timer: undefined, to: upstream };
    const down: Pipe = { queue: [], timer: undefined, to: client };
    let lag = 0;
    let sniffed = '';
    client.on('data', (buf) => {
      if (lag === 0 && sniffed.length < 4096) {
        sniffed += buf.toString('latin1');
        if (/REPLCONF/i.test(sniffed)) {
          lag = this.lagMs;
          this.replLinks++;
        }
      }
      this.push(up, buf, lag);
    });
    upstream.on('data', (buf) => this.push(down, buf, lag));
    // A dead primary: what is still held for the replica is lost, as bytes in flight from a
    // crashed host are. Dropped, not flushed: close both sides at once.
    const close = () => {
      for (const p of [up, down]) {
        clearTimeout(p.timer);
        p.queue.length = 0;
      }
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('close', close);
    upstream.on('close', close);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  }

  private push(p: Pipe, buf: Buffer, lag: number): void {
    if (lag === 0 && p.queue.length === 0) {
      if (!p.to.destroyed) p.to.write(buf);
      return;
    }
    p.queue.push({ at: performance.now() + lag, buf });
    this.pump(p);
  }

  private pump(p: Pipe): void {
    clearTimeout(p.timer);
    p.timer = undefined;
    const now = performance.now();
    while (p.queue.length && p.queue[0]!.at <= now) {
      const { buf } = p.queue.shift()!;
      if (!p.to.destroyed) p.to.write(buf);
    }
    if (p.queue.length) p.timer = setTimeout(() => this.pump(p), Math.max(0, p.queue[0]!.at - now));
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

function killHard(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill('SIGKILL');
  });
}

/**
 * redis-cli, asynchronously: the proxies run in this process's event loop, so a spawnSync through
 * one of them would wait for bytes that this loop, blocked in it, never forwards.
 */
const cli = (port: number, ...args: string[]) =>
  new Promise<string>((resolve) => execFile('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 5000 }, (_err, out) => resolve(out ?? '')));
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One redis-server behind its LagProxy; `port` is the public (proxy) port. */
async function laggedRedis(lagMs: number) {
  const proxy = new LagProxy(0, lagMs);
  const port = await proxy.start();
  // No persistence, like `sentinel`: a killed primary comes back empty and re-syncs as a replica.
  const args = ['--repl-diskless-sync-delay', '0', '--replica-announce-ip', '127.0.0.1', '--replica-announce-port', String(port)];
  let server: RunningServer = await startRedis({ args });
  proxy.targetPort = server.port;
  const privatePort = server.port;
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
      const bin = ensureBinary('redis-server', 'redis-server');
      const a = await laggedRedis(lagMs);
      const b = await laggedRedis(lagMs);
      await cli(b.port, 'replicaof', '127.0.0.1', String(a.port));
      for (let i = 0; i < 200 && !/master_link_status:up/.test(await cli(b.port, 'info', 'replication')); i++) await sleep(50);
      const sport = await freePort();
      const sdir = mkdtempSync(join(ctx.dir, 'sentinel-lag-'));
      writeFileSync(
        join(sdir, 'sentinel.conf'),
        [
          `port ${sport}`, 'bind 127.0.0.1', `dir ${sdir}`, 'protected-mode no', `logfile ${join(sdir, 'sentinel.log')}`,
          `sentinel monitor mymaster 127.0.0.1 ${a.port} 1`,
          // As `sentinel`. Shorter (500 ms) made this lone Sentinel flag the just-promoted
          // replica down half a second after the switch and fail back over to the old primary,
          // restarted empty: a double failover that loses everything, not the lag we measure.
          'sentinel down-after-milliseconds mymaster 1000',
          'sentinel failover-timeout mymaster 5000',
        ].join('\n') + '\n',
      );
      const sproc = spawn(bin, [join(sdir, 'sentinel.conf'), '--sentinel'], { stdio: 'ignore' });
      await waitForPort('127.0.0.1', sport, 10_000, sproc);
      const nodes = [a, b];
      const primaryPort = async () => Number((await cli(sport, 'sentinel', 'get-master-addr-by-name', 'mymaster')).split('\n')[1]);
      for (let i = 0; i < 100 && !(await cli(sport, 'sentinel', 'replicas', 'mymaster')).includes(String(b.port)); i++) await sleep(100);
      return {
        config: {
          id: 'torture', type: 'redis', sentinel: { name: 'mymaster', sentinels: [`127.0.0.1:${sport}`] },
          ...(wait ? { waitReplicas: 1, waitTimeoutMs: 300 } : {}),
        },
        options,
        livenessExtraMs: options.recheckMs + 1000,
        pauseMs: ctx.ttlMs * 2,
        proxyable: false,
        failover: async () => {
          const before = await primaryPort();
          const victim = nodes.find((n) => n.port === before);
          if (!victim) throw new Error(`failover: primary port ${before} is not ours`);
          await victim.kill();
          for (let i = 0; i < 200 && (await primaryPort()) === before; i++) await sleep(50);
          const after = await primaryPort();
          await victim.restart();
          await cli(victim.port, 'replicaof', '127.0.0.1', String(after));
          return `primary ${before} killed, ${after === before ? 'NOT promoted' : `replica ${after} promoted`}`;
        },
        stop: async () => {
          await killHard(sproc);
          rmSync(sdir, { recursive: true, force: true });
          await Promise.all(nodes.map((n) => n.stop()));
        },
      };
    },
  };
}
