/**
 * Starts and stops the real servers that tests, benchmarks and the demo use: each on a free
 * loopback port, in its own temp dir, without persistence, stopped at the end.
 *
 * Where a server binary is missing it is installed from Debian's packages when we are root on
 * Debian (as on CI); otherwise we stop with a message naming the package.
 *
 * As a command:  tsx scripts/servers.ts redis -- <command...>
 * runs <command> with LOCKDECK_TEST_REDIS_URL set, and stops the servers when it exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunningServer {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** A URL clients can use (redis://127.0.0.1:port). */
  readonly url: string;
  readonly dir: string;
  readonly process: ChildProcess;
  /** Stops the server and removes its temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** Asks the kernel for a free loopback port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

let aptUpdated = false;

function which(bin: string): string {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).stdout.trim();
}

/**
 * Makes sure Debian package `pkg` is present, judged by `present()`: installs it as root on
 * Debian, otherwise throws a message that names the package.
 */
export function ensurePackage(pkg: string, present: () => boolean, what = pkg): void {
  if (present()) return;
  const canApt = process.getuid?.() === 0 && existsSync('/etc/debian_version');
  if (!canApt) throw new Error(`${what} is not installed: install the Debian package "${pkg}" (apt-get install ${pkg})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (!aptUpdated) {
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
    aptUpdated = true;
  }
  const r = spawnSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', pkg], { stdio: 'inherit', env });
  if (r.status !== 0) throw new Error(`apt-get install ${pkg} failed (exit ${r.status})`);
  if (!present()) throw new Error(`${pkg} installed but ${what} is still missing`);
}

/** Makes sure `bin` is on the PATH (from Debian package `pkg`); returns its path. */
export function ensureBinary(bin: string, pkg: string): string {
  ensurePackage(pkg, () => which(bin) !== '', bin);
  return which(bin);
}

/**
 * Thrown by a starter's wait when the port it chose answers, but from another process: freePort()'s
 * port was free a moment ago, and another server started at the same moment (a parallel test
 * file, a torture worker's connection from the ephemeral range) can take it before ours binds.
 * Ours then fails to bind and exits, and a connect alone would mistake the other one for it (seen
 * in CI: a test's redis "with keyspace events" was another file's plain redis). Starters retry
 * on a fresh port.
 */
export class PortTakenError extends Error {}

/**
 * Whether process `pid` holds the listening TCP socket on `port`, from Linux's /proc: the LISTEN
 * entry for the port in the process's own network namespace (/proc/<pid>/net/tcp{,6}: hex
 * local_address:port, st 0A, inode in column 10), and a `socket:[inode]` among its fds. False
 * for a process that is gone (an exited server Node has not reaped yet has no /proc/<pid>/net: the
 * very case this guards, ours failing to bind while another answers); null only where /proc
 * cannot tell at all (not Linux).
 */
export function holdsListener(pid: number, port: number): boolean | null {
  if (!existsSync('/proc/self/net/tcp')) return null;
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  let read = false;
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    read = true;
    for (const line of text.split('\n').slice(1)) {
      const col = line.trim().split(/\s+/);
      if (col[1]?.endsWith(hexPort) && col[3] === '0A' && col[9]) inodes.add(col[9]);
    }
  }
  if (!read) return false;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      const link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      if (link.startsWith('socket:[') && inodes.has(link.slice(8, -1))) return true;
    } catch {
      // closed meanwhile
    }
  }
  return false;
}

/** Throws PortTakenError when `proc` is known not to be the one listening on `port`. */
export function assertListener(proc: ChildProcess, port: number): void {
  if (proc.pid !== undefined && holdsListener(proc.pid, port) === false) {
    throw new PortTakenError(`127.0.0.1:${port} is answered by another process, not by the server we started (pid ${proc.pid})`);
  }
}

/** Whether a start that failed with `err` may be retried on a fresh port: ours never bound it. */
export function portLost(err: unknown, proc: ChildProcess): boolean {
  return err instanceof PortTakenError || proc.exitCode !== null;
}

/**
 * Resolves once something accepts TCP connections on host:port, and, given the server's `proc`,
 * once that something is `proc` (PortTakenError otherwise).
 */
export async function waitForPort(host: string, port: number, timeoutMs: number, proc?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && proc.exitCode !== null) throw new Error(`server exited with code ${proc.exitCode} before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) {
      if (proc) assertListener(proc, port);
      return;
    }
    if (Date.now() > deadline) throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Stops `proc` (SIGTERM, SIGKILL after 5 s) and removes `dir`; idempotent. */
export function stopper(name: string, proc: ChildProcess, dir: string): () => Promise<void> {
  let stopped: Promise<void> | undefined;
  return () =>
    (stopped ??= new Promise<void>((resolve) => {
      const done = () => {
        rmSync(dir, { recursive: true, force: true });
        resolve();
      };
      if (proc.exitCode !== null || proc.signalCode !== null) return done();
      const killer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      proc.once('exit', () => {
        clearTimeout(killer);
        done();
      });
      proc.kill('SIGTERM');
    }).catch((err) => {
      console.error(`stopping ${name}:`, err);
    }));
}

/** SIGKILL (a crash: no graceful shutdown); resolves once the process is gone. */
export function killHard(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    proc.once('exit', () => resolve());
    proc.kill('SIGKILL');
  });
}

/** A server process that can crash and come back with its data (the torture's server-kill). */
export interface CrashableProcess {
  /** The current process (a new one after each restart). */
  readonly process: ChildProcess;
  /** SIGKILL; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts the server again, on the same port from the same data in its dir; resolves once it serves. */
  restart(timeoutMs: number): Promise<void>;
  /** Stops the current process (see stopper) and removes the dir; idempotent. */
  stop(): Promise<void>;
}

/**
 * Spawns a server with `spawnProc` now and on each restart (same arguments: same port, same data
 * dir under `dir`); a restart resolves once `ready` says the new process serves.
 */
export function crashable(
  name: string,
  dir: string,
  spawnProc: () => ChildProcess,
  ready: (proc: ChildProcess, timeoutMs: number) => Promise<void>,
): CrashableProcess {
  let proc = spawnProc();
  let stopped: Promise<void> | undefined;
  return {
    get process() {
      return proc;
    },
    kill: () => killHard(proc),
    restart: async (timeoutMs) => {
      if (stopped) throw new Error(`${name} was stopped: its data dir is gone`);
      if (proc.exitCode === null && proc.signalCode === null) throw new Error(`${name} is still running (pid ${proc.pid}): kill() it first`);
      proc = spawnProc();
      await ready(proc, timeoutMs);
    },
    // stopper() binds one process; the server may have been restarted since, so stop the current one.
    stop: () => (stopped ??= stopper(name, proc, dir)()),
  };
}

export interface RedisServerOptions {
  /** Extra `redis-server` arguments, e.g. ['--notify-keyspace-events', 'KEA']. */
  args?: string[];
  port?: number;
}

/** Starts a throwaway redis-server: loopback only, no RDB/AOF, its own temp dir. */
export async function startRedis(opts: RedisServerOptions = {}, attempt = 1): Promise<RunningServer> {
  const bin = ensureBinary('redis-server', 'redis-server');
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'lockdeck-redis-'));
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--protected-mode', 'no',
    '--logfile', join(dir, 'redis.log'),
    ...(opts.args ?? []),
  ];
  const proc = spawn(bin, args, { stdio: 'ignore' });
  const stop = stopper('redis', proc, dir);
  try {
    await waitForPort('127.0.0.1', port, 10_000, proc);
  } catch (err) {
    const exitedEarly = portLost(err, proc);
    await stop();
    // A port from freePort() can be taken by another socket before redis binds it (a busy box:
    // torture workers open connections from the same ephemeral range): fresh port, twice more.
    if (exitedEarly && opts.port === undefined && attempt < 3) return startRedis(opts, attempt + 1);
    throw err;
  }
  return { name: 'redis', host: '127.0.0.1', port, url: `redis://127.0.0.1:${port}`, dir, process: proc, stop };
}

/**
 * A redis-server replicating from `primaryPort` (on 127.0.0.1, or through a proxy listening
 * there), started with `--replicaof`; resolves once its link to the primary is up.
 */
export async function startRedisReplica(primaryPort: number, opts: RedisServerOptions = {}): Promise<RunningServer> {
  const cli = ensureBinary('redis-cli', 'redis-tools');
  const s = await startRedis({ ...opts, args: ['--replicaof', '127.0.0.1', String(primaryPort), ...(opts.args ?? [])] });
  const deadline = Date.now() + 20_000;
  while (!/master_link_status:up/.test(spawnSync(cli, ['-p', String(s.port), 'info', 'replication'], { encoding: 'utf8' }).stdout)) {
    if (Date.now() > deadline) {
      await s.stop();
      throw new Error(`replica on ${s.port} did not sync with ${primaryPort}`);
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  return { ...s, name: 'redis-replica' };
}

/**
 * A Redis Cluster of `masters` nodes (no replicas), slots assigned with `redis-cli --cluster
 * create`. `url` is a seed node; cluster clients discover the rest.
 */
export async function startRedisCluster(masters = 3, replicas = 0): Promise<RunningServer & { nodes: RunningServer[] }> {
  const cli = ensureBinary('redis-cli', 'redis-tools');
  const nodes: RunningServer[] = [];
  try {
    // `replicas` per master (redis-cli assigns them): nodes = masters × (1 + replicas).
    for (let i = 0; i < masters * (1 + replicas); i++) {
      nodes.push(await startRedis({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'] }));
    }
    const r = spawnSync(cli, ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`redis-cli --cluster create failed: ${r.stderr || r.stdout}`);
    // Slots are assigned at once, but every node must agree before clients can rely on the map.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const info = spawnSync(cli, ['-p', String(nodes[0]!.port), 'cluster', 'info'], { encoding: 'utf8' }).stdout;
      if (/cluster_state:ok/.test(info)) break;
      if (Date.now() > deadline) throw new Error(`cluster did not become ok: ${info}`);
      await new Promise((res) => setTimeout(res, 100));
    }
  } catch (err) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw err;
  }
  const first = nodes[0]!;
  return { ...first, name: 'redis-cluster', nodes, stop: async () => void (await Promise.all(nodes.map((n) => n.stop()))) };
}

/**
 * A master and one Sentinel watching it as `mymaster` (Sentinel is redis-server in sentinel
 * mode). `url` is the master; `sentinel` is the `host:port` to give clients.
 */
export async function startRedisSentinel(): Promise<RunningServer & { master: RunningServer; sentinel: string }> {
  const bin = ensureBinary('redis-server', 'redis-server');
  const master = await startRedis();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'lockdeck-sentinel-'));
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`, 'protected-mode no', `logfile ${join(dir, 'sentinel.log')}`,
      `sentinel monitor mymaster 127.0.0.1 ${master.port} 1`,
      'sentinel down-after-milliseconds mymaster 2000',
      'sentinel failover-timeout mymaster 10000',
    ].join('\n') + '\n',
  );
  const proc = spawn(bin, [conf, '--sentinel'], { stdio: 'ignore' });
  const stopSentinel = stopper('sentinel', proc, dir);
  try {
    await waitForPort('127.0.0.1', port, 10_000, proc);
  } catch (err) {
    await Promise.all([stopSentinel(), master.stop()]);
    throw err;
  }
  return {
    ...master,
    name: 'redis-sentinel',
    master,
    sentinel: `127.0.0.1:${port}`,
    stop: async () => void (await Promise.all([stopSentinel(), master.stop()])),
  };
}

/** Where Debian's `zookeeper` package puts the server; its jar's manifest names the rest of the classpath. */
const ZOOKEEPER_JAR = '/usr/share/java/zookeeper.jar';

/** Makes sure the ZooKeeper server (Debian package `zookeeper`, 3.8 on bookworm) and a JVM are present. */
export function ensureZooKeeper(): string {
  ensurePackage('zookeeper', () => existsSync(ZOOKEEPER_JAR) && existsSync('/usr/share/zookeeper/bin/zkServer.sh'), 'ZooKeeper');
  return ensureBinary('java', 'default-jre-headless');
}

/** Sends a four-letter word and returns the answer ('' when nothing answers). */
export function fourLetterWord(host: string, port: number, word: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const s = connect({ host, port }, () => s.end(word));
    const timer = setTimeout(() => s.destroy(), timeoutMs);
    s.setEncoding('utf8');
    s.on('data', (d) => (out += d));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    s.on('error', () => undefined);
  });
}

export interface ZooKeeperServerOptions {
  /** ms; session timeouts are clamped to [2, 20] ticks unless set below (default 500). */
  tickTime?: number;
  minSessionTimeout?: number;
  maxSessionTimeout?: number;
}

interface ZkMember {
  readonly id: number;
  readonly clientPort: number;
  readonly quorumPort: number;
  readonly electionPort: number;
}

/**
 * Runs one ZooKeeper server (QuorumPeerMain, as the Debian package's zkServer.sh does) from a
 * config written to its own temp dir: loopback only, AdminServer off, four-letter words
 * `mntr,ruok,cons,stat` allowed, no fsync (a throwaway test server). With `ensemble` it is member
 * `id` of that ensemble. Resolves once it answers `ruok` (standalone) or has joined a quorum.
 */
async function startZooKeeperMember(
  opts: ZooKeeperServerOptions,
  self: ZkMember,
  ensemble: ZkMember[] | null,
): Promise<RunningServer> {
  const java = ensureZooKeeper();
  const dir = mkdtempSync(join(tmpdir(), 'lockdeck-zookeeper-'));
  const tick = opts.tickTime ?? 500;
  const lines = [
    `tickTime=${tick}`,
    `dataDir=${join(dir, 'data')}`,
    `clientPort=${self.clientPort}`,
    'clientPortAddress=127.0.0.1',
    'initLimit=20',
    'syncLimit=10',
    `minSessionTimeout=${opts.minSessionTimeout ?? tick * 2}`,
    `maxSessionTimeout=${opts.maxSessionTimeout ?? 60_000}`,
    'admin.enableServer=false',
    '4lw.commands.whitelist=mntr,ruok,cons,stat',
    'forceSync=no',
    'maxClientCnxns=0',
  ];
  mkdirSync(join(dir, 'data'), { recursive: true });
  if (ensemble) {
    lines.push('quorumListenOnAllIPs=false', 'electionPortBindRetry=10');
    for (const m of ensemble) lines.push(`server.${m.id}=127.0.0.1:${m.quorumPort}:${m.electionPort};127.0.0.1:${m.clientPort}`);
    writeFileSync(join(dir, 'data', 'myid'), `${self.id}\n`);
  }
  const cfg = join(dir, 'zoo.cfg');
  writeFileSync(cfg, lines.join('\n') + '\n');
  // slf4j-simple (Debian libslf4j-java, a dependency of the server) writes the log to a file in
  // the temp dir; without a binding slf4j prints one warning and logs nothing.
  const simple = '/usr/share/java/slf4j-simple.jar';
  const cp = [ZOOKEEPER_JAR, ...(existsSync(simple) ? [simple] : [])].join(':');
  const log = join(dir, 'zookeeper.log');
  const proc = spawn(
    java,
    [
      '-Xms32m', '-Xmx256m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1',
      `-Dorg.slf4j.simpleLogger.logFile=${log}`, '-Dorg.slf4j.simpleLogger.defaultLogLevel=info',
      '-Dzookeeper.jmx.log4j.disable=true', '-Djava.net.preferIPv4Stack=true',
      '-cp', cp, 'org.apache.zookeeper.server.quorum.QuorumPeerMain', cfg,
    ],
    { stdio: 'ignore' },
  );
  const stop = stopper(`zookeeper-${self.id}`, proc, dir);
  const host = '127.0.0.1';
  const url = `${host}:${self.clientPort}`;
  const server: RunningServer = { name: 'zookeeper', host, port: self.clientPort, url, dir, process: proc, stop };
  if (ensemble) return server; // the caller waits for the quorum
  try {
    await waitForZooKeeper(host, self.clientPort, 30_000, proc);
  } catch (err) {
    const lost = portLost(err, proc);
    await stop();
    // Taken, or exited (typically: could not bind): the caller may retry on a fresh port.
    throw lost && !(err instanceof PortTakenError) ? new PortTakenError(`zookeeper on ${url}: ${(err as Error).message}`) : err;
  }
  return server;
}

/** Resolves once the server at host:port serves requests (`stat` answers with a Mode line). */
export async function waitForZooKeeper(host: string, port: number, timeoutMs: number, proc?: ChildProcess): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && (proc.exitCode !== null || proc.signalCode !== null)) throw new Error(`zookeeper exited (${proc.exitCode ?? proc.signalCode}) before serving on ${port}`);
    const stat = await fourLetterWord(host, port, 'stat', 1000);
    const mode = /^Mode: (\S+)/m.exec(stat)?.[1];
    if (mode) {
      if (proc) assertListener(proc, port);
      return mode;
    }
    if (Date.now() > deadline) throw new Error(`zookeeper on ${host}:${port} not serving after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A throwaway standalone ZooKeeper server. `url` is the connect string `127.0.0.1:port`.
 * Boots in 1–3 s on the 2-core box (JVM start).
 */
export async function startZooKeeper(opts: ZooKeeperServerOptions = {}, attempt = 1): Promise<RunningServer> {
  const member: ZkMember = { id: 1, clientPort: await freePort(), quorumPort: 0, electionPort: 0 };
  try {
    return await startZooKeeperMember(opts, member, null);
  } catch (err) {
    // freePort()'s port taken before the JVM bound it (see PortTakenError): fresh port, twice more.
    if (err instanceof PortTakenError && attempt < 3) return startZooKeeper(opts, attempt + 1);
    throw err;
  }
}

/**
 * An ensemble of `size` ZooKeeper servers on loopback. `url` is the connect string naming every
 * member; `members[i]` can be stopped alone to test failover.
 */
export async function startZooKeeperEnsemble(
  size = 3,
  opts: ZooKeeperServerOptions = {},
  attempt = 1,
): Promise<RunningServer & { members: RunningServer[] }> {
  const ids: ZkMember[] = [];
  for (let i = 1; i <= size; i++) ids.push({ id: i, clientPort: await freePort(), quorumPort: await freePort(), electionPort: await freePort() });
  const members: RunningServer[] = [];
  try {
    for (const m of ids) members.push(await startZooKeeperMember(opts, m, ids));
    await Promise.all(members.map((m) => waitForZooKeeper(m.host, m.port, 60_000, m.process)));
  } catch (err) {
    const lost = members.some((m) => portLost(err, m.process));
    await Promise.all(members.map((m) => m.stop()));
    // One of the 3 × size ports taken before its member bound it (see PortTakenError): fresh ports.
    if (lost && attempt < 3) return startZooKeeperEnsemble(size, opts, attempt + 1);
    throw err;
  }
  const first = members[0]!;
  return {
    ...first,
    name: 'zookeeper-ensemble',
    url: members.map((m) => `${m.host}:${m.port}`).join(','),
    members,
    stop: async () => void (await Promise.all(members.map((m) => m.stop()))),
  };
}

const starters: Record<string, () => Promise<RunningServer>> = {
  redis: () => startRedis(),
  zookeeper: () => startZooKeeper(),
  // Imported when asked for: those modules import this one.
  etcd: async () => (await import('./etcd-server')).startEtcd(),
  dynalite: async () => (await import('./dynalite-server')).startDynalite(),
};

/** The environment variable a started server's URL is published in. */
export function envName(server: string): string {
  return `LOCKDECK_TEST_${server.toUpperCase()}_URL`;
}

/**
 * Everything a fresh Debian machine needs for the whole test suite, installed up front so a
 * missing package fails fast with its name: the servers, Chromium for Playwright, and the Debian
 * Python clients used as real foreign peers in interop tests.
 */
export function ensureTestDependencies(): void {
  ensureBinary('redis-server', 'redis-server');
  ensureBinary('redis-cli', 'redis-tools');
  ensureBinary('chromium', 'chromium');
  const pyModule = (m: string) => () => spawnSync('/usr/bin/python3', ['-c', `import ${m}`], { stdio: 'ignore' }).status === 0;
  ensurePackage('python3-redis', pyModule('redis'), 'the Python module redis (for /usr/bin/python3)');
  ensureZooKeeper();
  ensurePackage('python3-kazoo', pyModule('kazoo'), 'the Python module kazoo (for /usr/bin/python3)');
  ensurePackage('libcurator-recipes-java', () => existsSync('/usr/share/java/curator-recipes.jar'), 'Apache Curator (curator-recipes.jar)');
  ensureBinary('javac', 'default-jdk-headless');
  ensureBinary('etcd', 'etcd-server');
  ensureBinary('etcdctl', 'etcd-client');
  ensurePackage('python3-etcd3', pyModule('etcd3'), 'the Python module etcd3 (for /usr/bin/python3)');
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'ensure') {
    ensureTestDependencies();
    return;
  }
  const sep = argv.indexOf('--');
  const names = sep === -1 ? argv : argv.slice(0, sep);
  const command = sep === -1 ? [] : argv.slice(sep + 1);
  const unknown = names.filter((n) => !starters[n]);
  if (names.length === 0 || unknown.length || command.length === 0) {
    console.error(`usage: tsx scripts/servers.ts <${Object.keys(starters).join('|')}>... -- <command...>`);
    if (unknown.length) console.error(`unknown server: ${unknown.join(', ')}`);
    process.exit(2);
  }
  const running: RunningServer[] = [];
  const stopAll = () => Promise.all(running.map((s) => s.stop()));
  try {
    for (const n of names) running.push(await starters[n]!());
  } catch (err) {
    await stopAll();
    throw err;
  }
  const env = { ...process.env };
  for (const s of running) env[envName(s.name)] = s.url;
  const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env });
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const code = await new Promise<number>((resolve) => child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0))));
  await stopAll();
  process.exit(code);
}

if (process.argv[1] && /servers\.[tj]s$/.test(process.argv[1])) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
