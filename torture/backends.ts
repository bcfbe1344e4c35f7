/**
 * The deployments the torture runner can test: each starts its own servers (scripts/servers.ts,
 * loopback, temp dirs), gives the workers a backend configuration, and says which server faults it
 * supports. Adding a store is one entry in DEPLOYMENTS (see the etcd / DynamoDB notes below).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { BackendConfig } from '../lib/backends/config';
import { startSentinel } from './sentinel';
import { sentinelLag } from './sentinel-lag';
import {
  ensureZooKeeper,
  fourLetterWord,
  killHard,
  startRedis,
  startZooKeeper,
  startZooKeeperEnsemble,
  waitForZooKeeper,
  type RunningServer,
} from '../scripts/servers';

export interface DeployContext {
  ttlMs: number;
  /** Scratch dir of this run (removed by the runner). */
  dir: string;
}

/** A server process the faults can kill and bring back, on the same port with the same data. */
export interface Restartable {
  readonly name: string;
  readonly port: number;
  pid(): number | undefined;
  /** SIGKILL; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts it again (same port, same data dir); resolves once it serves. */
  restart(): Promise<void>;
}

export interface Deployment {
  config: BackendConfig;
  /** Second argument of the backend factory (short timeouts for fast failure detection). */
  options?: Record<string, unknown>;
  /** Allowance on top of TTL + 2 RTT for a dead holder's lock to be free (ZK session, re-check). */
  livenessExtraMs: number;
  /** Shortest SIGSTOP that outlasts the holder's claim on the store (TTL, or the ZK session). */
  pauseMs: number;
  /** The single server (server-kill). */
  server?: Restartable;
  /** Members of a quorum (member-kill kills one, restarts it). */
  members?: Restartable[];
  /** The member to kill next (default: a random one), e.g. the ZooKeeper leader. */
  nextVictim?: () => Promise<Restartable>;
  /** False when clients find servers through discovery (Sentinel), which the fault proxy cannot rewrite. */
  proxyable?: boolean;
  /** Sentinel failover: kills the primary, waits for a replica's promotion, brings the old one back as a replica. */
  failover?: () => Promise<string>;
  stop(): Promise<void>;
}

export interface DeploymentSpec {
  description: string;
  start(ctx: DeployContext): Promise<Deployment>;
}

// ---- Redis ---------------------------------------------------------------------------------------

/**
 * redis-server on a fixed port and data dir of our own. With `aof`, every write is fsynced before
 * the reply (`appendfsync always`), which is what the Redis distlock page requires for safety across
 * restarts (redis/redis-doc docs/manual/patterns/distributed-locks.md, "Safety arguments"); without
 * it a restart forgets the fence counters.
 */
async function redisProcess(name: string, ctx: DeployContext, aof: boolean, extra: string[] = []): Promise<Restartable & { url: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(ctx.dir, `${name}-`));
  const persist = aof ? ['--appendonly', 'yes', '--appendfsync', 'always'] : [];
  let server: RunningServer = await startRedis({ args: ['--dir', dir, ...persist, ...extra] });
  const port = server.port;
  return {
    name,
    port,
    url: server.url,
    pid: () => server.process.pid,
    kill: () => killHard(server.process),
    restart: async () => {
      server = await startRedis({ port, args: ['--dir', dir, ...persist, ...extra] });
    },
    stop: () => server.stop(),
  };
}

const REDIS_OPTIONS = { commandTimeoutMs: 1000, recheckMs: 500 };

function singleRedis(aof: boolean): DeploymentSpec {
  return {
    description: aof ? 'one redis-server, AOF appendfsync always' : 'one redis-server, no persistence',
    async start(ctx) {
      const r = await redisProcess('redis', ctx, aof);
      return {
        config: { id: 'torture', type: 'redis', url: r.url },
        options: REDIS_OPTIONS,
        livenessExtraMs: REDIS_OPTIONS.recheckMs,
        pauseMs: ctx.ttlMs * 2,
        server: r,
        stop: () => r.stop(),
      };
    },
  };
}

const redlock: DeploymentSpec = {
  description: 'Redlock over 3 independent redis-servers (AOF always)',
  async start(ctx) {
    const masters = await Promise.all([0, 1, 2].map((i) => redisProcess(`redlock-${i}`, ctx, true)));
    return {
      config: { id: 'torture', type: 'redis', urls: masters.map((m) => m.url) },
      options: { ...REDIS_OPTIONS, commandTimeoutMs: 300 },
      livenessExtraMs: REDIS_OPTIONS.recheckMs,
      pauseMs: ctx.ttlMs * 2,
      members: masters,
      stop: async () => void (await Promise.all(masters.map((m) => m.stop()))),
    };
  },
};

/**
 * A primary, one replica and one Sentinel. Failover = SIGKILL the primary; the Sentinel promotes
 * the replica after down-after-milliseconds (1000 here); the old primary comes back as a replica.
 * Replication is asynchronous: a lock (and a fence increment) acknowledged by the primary may not
 * have reached the replica (Jepsen, aphyr.com/posts/283-jepsen-redis).
 */
const sentinel: DeploymentSpec = {
  description: 'Sentinel: primary + replica + 1 sentinel, failover on primary kill (async replication, no WAIT)',
  async start(ctx) {
    // Redis 7 waits repl-diskless-sync-delay (5 s) before the first full sync of a replica: a
    // primary killed in that window fails over to a replica without the fence counters (seen by
    // the checker as fence regressions). 0 here, so the failover tests a replica that is in sync.
    const sync = ['--repl-diskless-sync-delay', '0'];
    const a = await redisProcess('redis-a', ctx, false, sync);
    const b = await redisProcess('redis-b', ctx, false, sync);
    spawnSync('redis-cli', ['-p', String(b.port), 'replicaof', '127.0.0.1', String(a.port)]);
    const s = await startSentinel(ctx, 'sentinel-', a, b);
    return {
      config: { id: 'torture', type: 'redis', sentinel: { name: 'mymaster', sentinels: [s.sentinel] } },
      options: REDIS_OPTIONS,
      livenessExtraMs: REDIS_OPTIONS.recheckMs + 1000,
      pauseMs: ctx.ttlMs * 2,
      proxyable: false,
      failover: s.failover,
      stop: s.stop,
    };
  },
};

// ---- ZooKeeper -----------------------------------------------------------------------------------

/** Session timeout for the torture: short, so a paused or killed holder's session expires soon. */
const ZK_SESSION_MS = 2000;

/**
 * Restarts a ZooKeeper server from the zoo.cfg that scripts/servers.ts wrote in its dir (same port,
 * same data), with the same JVM arguments as startZooKeeperMember there.
 */
function zkRestartable(name: string, first: RunningServer, standalone: boolean): Restartable & { stop(): Promise<void> } {
  let proc: ChildProcess = first.process;
  const java = ensureZooKeeper();
  const simple = '/usr/share/java/slf4j-simple.jar';
  const cp = ['/usr/share/java/zookeeper.jar', ...(existsSync(simple) ? [simple] : [])].join(':');
  return {
    name,
    port: first.port,
    pid: () => proc.pid,
    kill: () => killHard(proc),
    restart: async () => {
      proc = spawn(
        java,
        [
          '-Xms32m', '-Xmx256m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1',
          `-Dorg.slf4j.simpleLogger.logFile=${join(first.dir, 'zookeeper.log')}`,
          '-Dzookeeper.jmx.log4j.disable=true', '-Djava.net.preferIPv4Stack=true',
          '-cp', cp, 'org.apache.zookeeper.server.quorum.QuorumPeerMain', join(first.dir, 'zoo.cfg'),
        ],
        { stdio: 'ignore' },
      );
      if (standalone) await waitForZooKeeper(first.host, first.port, 30_000, proc);
      else await waitForZooKeeper(first.host, first.port, 60_000, proc);
    },
    stop: async () => {
      await killHard(proc);
      await first.stop(); // removes the dir
    },
  };
}

const zookeeper: DeploymentSpec = {
  description: `standalone ZooKeeper (session ${ZK_SESSION_MS} ms)`,
  async start(ctx) {
    const zk = await startZooKeeper({ tickTime: 200 });
    const r = zkRestartable('zookeeper', zk, true);
    return {
      config: { id: 'torture', type: 'zookeeper', connect: zk.url, roots: ['/torture'] },
      options: { sessionTimeoutMs: ZK_SESSION_MS, opTimeoutMs: 1000 },
      livenessExtraMs: ZK_SESSION_MS,
      pauseMs: Math.max(ctx.ttlMs, ZK_SESSION_MS) * 2,
      server: r,
      stop: () => r.stop(),
    };
  },
};

const zookeeperEnsemble: DeploymentSpec = {
  description: `3-server ZooKeeper ensemble (session ${ZK_SESSION_MS} ms); member-kill kills the leader`,
  async start(ctx) {
    const ens = await startZooKeeperEnsemble(3, { tickTime: 200 });
    const members = ens.members.map((m, i) => zkRestartable(`zk-${i + 1}`, m, false));
    return {
      config: { id: 'torture', type: 'zookeeper', connect: ens.url, roots: ['/torture'] },
      options: { sessionTimeoutMs: ZK_SESSION_MS * 2, opTimeoutMs: 1500 },
      livenessExtraMs: ZK_SESSION_MS * 2,
      pauseMs: Math.max(ctx.ttlMs, ZK_SESSION_MS * 2) * 2,
      members,
      // Kill the leader: that is the member whose loss forces an election.
      nextVictim: async () => {
        const modes = await Promise.all(ens.members.map((m) => fourLetterWord(m.host, m.port, 'stat', 1000)));
        const leader = modes.findIndex((s) => /^Mode: leader/m.test(s));
        return members[leader < 0 ? Math.floor(Math.random() * members.length) : leader]!;
      },
      stop: async () => void (await Promise.all(members.map((m) => m.stop()))),
    };
  },
};

// ---- SQLite --------------------------------------------------------------------------------------

const sqlite: DeploymentSpec = {
  description: 'embedded SQLite store (one file shared by the worker processes)',
  async start(ctx) {
    const dir = mkdtempSync(join(ctx.dir, 'sqlite-'));
    mkdirSync(dir, { recursive: true });
    return {
      config: { id: 'torture', type: 'sqlite', path: join(dir, 'locks.db') },
      options: { recheckMs: 250 },
      livenessExtraMs: 250,
      pauseMs: ctx.ttlMs * 2,
      stop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
};

/** A Restartable view of a server that knows how to SIGKILL and restart itself with its data. */
function restartable(s: { name: string; port: number; process: ChildProcess; kill(): Promise<void>; restart(): Promise<void> }): Restartable {
  return { name: s.name, port: s.port, pid: () => s.process.pid, kill: () => s.kill(), restart: () => s.restart() };
}

/**
 * etcd: its members keep their data dir across kill + restart (scripts/etcd-server.ts), and etcd
 * appends each write to its WAL before answering, so a restarted member has every acknowledged
 * write (fence = the key's create revision, which keeps counting up). Leases survive too: a
 * restarted or newly elected leader gives every lease a full TTL again (lessor Promote), so a lease
 * never ends sooner than its holder's own clock says — it can end later, which costs liveness.
 * etcd leases are whole seconds and at least 2 s here (minimum TTL = 1.5 × election timeout).
 */
const etcd: DeploymentSpec = {
  description: 'one etcd member; server-kill = SIGKILL + restart from its data dir',
  async start(ctx) {
    const { startEtcd } = await import('../scripts/etcd-server');
    const s = await startEtcd();
    return {
      config: { id: 'torture', type: 'etcd', endpoints: s.endpoints, prefixes: ['/torture'] },
      options: { opTimeoutMs: 1000 },
      livenessExtraMs: 2000, // etcd leases are whole seconds, at least 2 s
      pauseMs: Math.max(ctx.ttlMs, 2000) * 2,
      server: restartable(s.members[0]!),
      stop: () => s.stop(),
    };
  },
};

const etcdCluster: DeploymentSpec = {
  description: '3-member etcd cluster; member-kill = SIGKILL the raft leader + restart it from its data dir',
  async start(ctx) {
    const { startEtcdCluster } = await import('../scripts/etcd-server');
    const c = await startEtcdCluster(3);
    const members = c.members.map(restartable);
    return {
      config: { id: 'torture', type: 'etcd', endpoints: c.endpoints, prefixes: ['/torture'] },
      options: { opTimeoutMs: 1000 },
      // + an election (1 s election timeout) and the new leader's lease extension.
      livenessExtraMs: 4000,
      pauseMs: Math.max(ctx.ttlMs, 2000) * 2,
      members,
      // Kill the leader: the member whose loss forces an election (and moves the lessor).
      nextVictim: async () => {
        const i = await c.leaderIndex();
        return members[i < 0 ? Math.floor(Math.random() * members.length) : i]!;
      },
      stop: () => c.stop(),
    };
  },
};

/**
 * dynalite with its LevelDB store (--path): server-kill restarts it on the same port with the same
 * store (the table and every acknowledged item survive a process kill; scripts/dynalite-server.ts).
 */
const dynamodb: DeploymentSpec = {
  description: 'dynalite (DynamoDB emulator, LevelDB store; waiters poll); server-kill = SIGKILL + restart',
  async start(ctx) {
    const { startDynalite } = await import('../scripts/dynalite-server');
    const { createLockTable, makeDynamoDbClient } = await import('../lib/backends/dynamodb');
    const s = await startDynalite({ persist: true });
    const client = makeDynamoDbClient({ endpoint: s.url, region: 'us-east-1' });
    await createLockTable(client, 'torture');
    client.destroy();
    return {
      config: { id: 'torture', type: 'dynamodb', endpoint: s.url, region: 'us-east-1', tables: ['torture'] },
      livenessExtraMs: 500, // polling waiters: up to one poll (100 ms ±30 %) and a skew allowance
      pauseMs: ctx.ttlMs * 2,
      server: restartable(s),
      stop: () => s.stop(),
    };
  },
};

export const DEPLOYMENTS: Record<string, DeploymentSpec> = {
  sqlite,
  redis: singleRedis(true),
  'redis-ephemeral': singleRedis(false),
  redlock,
  sentinel,
  // Replication lag through a proxy; without and with the waitReplicas option (torture/sentinel-lag.ts).
  'sentinel-lag': sentinelLag(false),
  'sentinel-lag-wait': sentinelLag(true),
  zookeeper,
  'zookeeper-ensemble': zookeeperEnsemble,
  etcd,
  'etcd-cluster': etcdCluster,
  dynamodb,
};

/** Stores whose backends are not in createBackend yet. */
export const PENDING: string[] = [];

/**
 * A generic deployment for a one-server store: `startServer` from scripts/servers.ts and the
 * configuration built from its address. Server-kill restarts it on the same port (data per the
 * starter). Used to add a store in one line.
 */
export function single(startServer: (opts?: { port?: number }) => Promise<RunningServer>, configOf: (s: RunningServer) => BackendConfig, options?: Record<string, unknown>): DeploymentSpec {
  return {
    description: 'one server',
    async start(ctx) {
      let s = await startServer();
      const port = s.port;
      return {
        config: configOf(s),
        options,
        livenessExtraMs: 0,
        pauseMs: ctx.ttlMs * 2,
        server: {
          name: s.name,
          port,
          pid: () => s.process.pid,
          kill: () => killHard(s.process),
          restart: async () => {
            s = await startServer({ port });
          },
        },
        stop: () => s.stop(),
      };
    },
  };
}

export function scratchDir(): string {
  return mkdtempSync(join(tmpdir(), 'lockdeck-torture-'));
}
