/**
 * Starts throwaway etcd servers for tests and benchmarks: Debian's `etcd-server` (3.4 on
 * bookworm), loopback only, each member in its own temp dir, stopped and removed afterwards.
 *
 * The data dir goes to /dev/shm when it exists: etcd 3.4 has no `--unsafe-no-fsync`, and every
 * write waits for an fdatasync of the WAL. On tmpfs that sync is free, so the tests measure our
 * round trips rather than the box's disk (a real deployment pays "RTT + fdatasync" per write,
 * etcd op-guide/performance.md).
 *
 * Members can be SIGKILLed and restarted from their own data dir (EtcdMember.kill / restart): the
 * torture runner's server-kill and member-kill. etcd appends every write to its WAL (and fdatasyncs
 * it) before answering, so a crashed member that comes back has every write it acknowledged; tmpfs
 * only makes the sync free — a process kill never loses page-cache data, only a host crash would.
 *
 * As a command:  tsx scripts/etcd-server.ts [1|3] -- <command...>
 * runs <command> with LOCKDECK_TEST_ETCD_URL set (comma-separated endpoints for a cluster).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { crashable, ensureBinary, freePort, portLost, waitForPort, type RunningServer } from './servers';

export interface EtcdCluster extends RunningServer {
  /** Every member's client URL, for `endpoints`. */
  readonly endpoints: string[];
  /** The members, each stoppable (or killable and restartable) alone to test failover. */
  readonly members: EtcdMember[];
  /** Index in `members` of the current raft leader (maintenance Status API), or -1 if none answers. */
  leaderIndex(): Promise<number>;
}

/**
 * One member. `url` is its client URL. `process` is the current etcd process (a new one after
 * `restart`).
 */
export interface EtcdMember extends RunningServer {
  readonly peerPort: number;
  /** SIGKILL (a crash: no graceful shutdown); the data dir stays. Resolves once the process is gone. */
  kill(): Promise<void>;
  /**
   * Starts the member again on the same ports from the same data dir (its WAL and snapshot), as a
   * restarted etcd would be: `--initial-cluster*` flags are ignored once the data dir holds a WAL.
   * Resolves once `/health` is true (a leader exists and a quorum read went through).
   */
  restart(timeoutMs?: number): Promise<void>;
}

interface Member {
  name: string;
  clientPort: number;
  peerPort: number;
}

function dataRoot(): string {
  return existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
}

function exited(proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null;
}

function spawnMember(self: Member, cluster: Member[], token: string): EtcdMember {
  const bin = ensureBinary('etcd', 'etcd-server');
  // One dir per member for its whole life: restart() reuses it, stop() removes it.
  const dir = mkdtempSync(join(dataRoot(), 'lockdeck-etcd-'));
  const host = '127.0.0.1';
  const clientUrl = `http://${host}:${self.clientPort}`;
  const peerUrl = `http://${host}:${self.peerPort}`;
  const args = [
    '--name', self.name,
    '--data-dir', join(dir, 'data'),
    '--listen-client-urls', clientUrl,
    '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', cluster.map((m) => `${m.name}=http://${host}:${m.peerPort}`).join(','),
    '--initial-cluster-state', 'new',
    '--initial-cluster-token', token,
    '--logger', 'zap', '--log-level', 'error', '--log-outputs', join(dir, 'etcd.log'),
  ];
  const name = `etcd-${self.name}`;
  const proc = crashable(name, dir, () => spawn(bin, args, { stdio: 'ignore' }), (_p, timeoutMs) => waitHealthy(member, timeoutMs));
  const member: EtcdMember = {
    name,
    host,
    port: self.clientPort,
    peerPort: self.peerPort,
    url: clientUrl,
    dir,
    get process() {
      return proc.process;
    },
    kill: () => proc.kill(),
    restart: (timeoutMs = 30_000) => proc.restart(timeoutMs),
    stop: () => proc.stop(),
  };
  return member;
}

/**
 * Waits until the member's `/health` reports `"health":"true"`: only once a leader is elected and
 * a quorum read went through.
 */
async function waitHealthy(m: RunningServer, timeoutMs: number): Promise<void> {
  await waitForPort(m.host, m.port, timeoutMs, m.process);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (m.process.exitCode !== null) throw new Error(`${m.name} exited with code ${m.process.exitCode}`);
    try {
      const r = await fetch(`${m.url}/health`, { signal: AbortSignal.timeout(2000) });
      const body = (await r.json()) as { health?: string };
      if (body.health === 'true') return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${m.name} not healthy after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The member id and the leader id a member reports, through the gRPC gateway's JSON form of
 * Maintenance.Status (etcd 3.4: POST /v3/maintenance/status; api/etcdserverpb/rpc.proto
 * StatusResponse: header.member_id, leader; 64-bit ids as decimal strings).
 */
async function memberStatus(m: RunningServer): Promise<{ id: string; leader: string } | null> {
  try {
    const r = await fetch(`${m.url}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
    const body = (await r.json()) as { header?: { member_id?: string }; leader?: string };
    return body.header?.member_id && body.leader ? { id: body.header.member_id, leader: body.leader } : null;
  } catch {
    return null;
  }
}

async function startMembers(size: number, attempt = 1): Promise<EtcdCluster> {
  const ms: Member[] = [];
  for (let i = 1; i <= size; i++) ms.push({ name: `m${i}`, clientPort: await freePort(), peerPort: await freePort() });
  const token = `lockdeck-${process.pid}-${Date.now()}-${attempt}`;
  const members = ms.map((m) => spawnMember(m, ms, token));
  try {
    await Promise.all(members.map((m) => waitHealthy(m, 30_000)));
  } catch (err) {
    const exitedEarly = members.some((m) => portLost(err, m.process));
    await Promise.all(members.map((m) => m.stop()));
    // freePort() hands out a port that was free a moment ago; on a busy box (a torture run's
    // workers open connections from the same ephemeral range) another socket can take it before
    // etcd binds, and the member exits at once. Fresh ports, twice more, before giving up.
    if (attempt < 3 && exitedEarly) return startMembers(size, attempt + 1);
    throw err;
  }
  const first = members[0]!;
  const endpoints = members.map((m) => m.url);
  return {
    name: size === 1 ? 'etcd' : 'etcd-cluster',
    host: first.host,
    port: first.port,
    dir: first.dir,
    get process() {
      return first.process;
    },
    url: endpoints.join(','),
    endpoints,
    members,
    leaderIndex: async () => {
      const st = await Promise.all(members.map((m) => (exited(m.process) ? null : memberStatus(m))));
      const leader = st.find((s) => s && s.leader !== '0')?.leader;
      return leader ? st.findIndex((s) => s?.id === leader) : -1;
    },
    stop: async () => void (await Promise.all(members.map((m) => m.stop()))),
  };
}

/** One throwaway etcd member. `url` is its client URL (http://127.0.0.1:port). */
export function startEtcd(): Promise<EtcdCluster> {
  return startMembers(1);
}

/** A cluster of `size` members on loopback; `url` lists every client URL, comma-separated. */
export function startEtcdCluster(size = 3): Promise<EtcdCluster> {
  if (!Number.isInteger(size) || size < 1 || size > 7) throw new Error(`cluster size must be 1..7, got ${size}`);
  return startMembers(size);
}

async function main(argv: string[]): Promise<void> {
  const sep = argv.indexOf('--');
  const size = Number(sep > 0 ? argv[0] : 1);
  const command = sep === -1 ? [] : argv.slice(sep + 1);
  if (!command.length || !Number.isInteger(size)) {
    console.error('usage: tsx scripts/etcd-server.ts [size] -- <command...>');
    process.exit(2);
  }
  const cluster = await startEtcdCluster(size);
  const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env: { ...process.env, LOCKDECK_TEST_ETCD_URL: cluster.url } });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const code = await new Promise<number>((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
  await cluster.stop();
  process.exit(code);
}

if (process.argv[1] && /etcd-server\.[tj]s$/.test(process.argv[1])) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
