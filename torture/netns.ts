/**
 * Per-worker network namespaces for the torture runner, so that network faults are real kernel
 * packet drops on one lock holder's traffic (torture/faults.ts `net-partition`, `net-loss`) rather
 * than a userspace proxy in front of half of the workers (torture/proxy.ts).
 *
 * Why not `tc netem`: this kernel has no sch_netem (CONFIG_NET_SCH_NETEM is not set, no modprobe),
 * so there is no delay, jitter or reordering qdisc. It does have nf_tables with `numgen`
 * (CONFIG_NF_TABLES, CONFIG_NFT_NUMGEN) and veth pairs, which is enough to drop all or a random
 * fraction of one namespace's packets.
 *
 * Topology (only namespaces we create; nothing is added to the root namespace):
 *
 *   root ns ── (nothing) ──
 *   ld-t<pid>-host   the runner re-executes itself here (`nsenter --net`): servers and the
 *                    register listen on 127.0.0.1 as always. nft: prerouting DNAT of whatever
 *                    arrives on a worker's veth to 127.0.0.1 (needs route_localnet=1).
 *   ld-t<pid>-w<n>   one per worker, joined to the host namespace by a veth pair on a private /30
 *                    (10.213.0.0/16: host end .1, worker end .2). nft: output DNAT of 127.0.0.0/8
 *                    to the host end + masquerade (route_localnet=1 here too, so a packet still
 *                    carrying 127.0.0.1 as its source may leave on the veth before SNAT).
 *
 * So worker code, server URLs, the addresses Redis Sentinel announces and ZooKeeper ensemble lists
 * all stay 127.0.0.1:port, and every packet between a worker and anything it talks to (store,
 * register) crosses its own veth, where the host namespace's `inet lockdeck_fault` table can drop
 * it in both directions (prerouting: from the worker; postrouting: to the worker).
 *
 * Worker namespaces are created with `ip netns add` by the runner inside the host namespace; it
 * entered that one with `nsenter --net` (network namespace only) rather than `ip netns exec`,
 * because the latter also gives the process a private mount namespace where new /run/netns
 * entries would be invisible to `ip netns list` outside and to the cleanup. The outer process
 * (root namespace) deletes every `ld-t<pid>-*` namespace when the inner runner exits, also after
 * Ctrl-C or a crash.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';

import { ensureBinary } from '../scripts/servers';

/** Set (to the namespace-name prefix) in the runner re-executed inside its host namespace. */
export const NETNS_ENV = 'LOCKDECK_TORTURE_NETNS';
/** Set when namespaces were asked for but could not be made: the reason, for `unsupported()`. */
export const NETNS_ERROR_ENV = 'LOCKDECK_TORTURE_NETNS_ERROR';

/** Private range of the worker veth /30s (16,384 workers per run). */
const NET = [10, 213];

function run(cmd: string, args: string[], input?: string): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim()}`);
  return r;
}

/**
 * Why per-worker namespaces cannot be made here, or null when they can. Installs iproute2 and
 * nftables from Debian when missing and we are root (as scripts/servers.ts does for servers).
 */
export function netnsProblem(): string | null {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network namespaces and nft rules need root (ip netns add, nft): run the torture as root';
  try {
    ensureBinary('ip', 'iproute2');
    ensureBinary('nft', 'nftables');
    ensureBinary('nsenter', 'util-linux');
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  return null;
}

/** Names of the namespaces of the run with `prefix` that exist now. */
export function listNamespaces(prefix: string): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return (r.stdout ?? '')
    .split('\n')
    .map((l) => l.split(' ')[0]!.trim())
    .filter((n) => n.startsWith(`${prefix}-`));
}

/**
 * Deletes a namespace we made, after SIGKILLing any process still inside it (our workers or
 * servers, when the runner died without stopping them). Deleting the namespace removes its veths.
 */
export function deleteNamespace(ns: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
  for (const p of pids.split('\n').map(Number).filter((n) => n > 1 && n !== process.pid)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

/**
 * The outer runner: creates the host namespace, re-executes `script argv` inside it, forwards
 * Ctrl-C / SIGTERM, and deletes every namespace of the run once the inner runner is gone.
 * Resolves to the inner runner's exit code; throws (having removed what it made) when the host
 * namespace cannot be set up.
 */
export async function runInHostNamespace(script: string, argv: string[], cwd: string): Promise<number> {
  const prefix = `ld-t${process.pid}`;
  const host = `${prefix}-host`;
  try {
    run('ip', ['netns', 'add', host]);
    run('ip', ['-n', host, 'link', 'set', 'lo', 'up']);
    // Packets from the workers' veths are DNATed to 127.0.0.1, which the kernel drops as martians
    // on a non-loopback interface unless route_localnet is on.
    run('ip', ['netns', 'exec', host, 'sh', '-c', 'sysctl -qw net.ipv4.conf.all.route_localnet=1 && nft -f -'], HOST_RULES);
  } catch (err) {
    deleteNamespace(host);
    throw err;
  }
  const nsPath = `/run/netns/${host}`;
  if (!existsSync(nsPath)) {
    deleteNamespace(host);
    throw new Error(`${nsPath} is missing after ip netns add`);
  }
  // A process group of its own: a terminal Ctrl-C reaches only us, and we forward it once, so the
  // inner runner can stop its cell cleanly (workers, servers) before we delete the namespaces.
  const child = spawn('nsenter', [`--net=${nsPath}`, '--', process.execPath, '--import', 'tsx', script, ...argv], {
    cwd,
    env: { ...process.env, [NETNS_ENV]: prefix },
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true,
  });
  // A terminal Ctrl-C reaches us twice (directly, and relayed by the tsx CLI that started us):
  // forward one signal per second, so the inner runner's "second signal: exit at once" means a
  // second Ctrl-C of the user.
  let lastForward = 0;
  const forward = (sig: NodeJS.Signals) => () => {
    if (performance.now() - lastForward < 1000) return;
    lastForward = performance.now();
    try {
      child.kill(sig);
    } catch {
      // Gone.
    }
  };
  const handlers: Array<[NodeJS.Signals, () => void]> = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((s) => [s, forward(s)]);
  for (const [s, h] of handlers) process.on(s, h);
  try {
    return await new Promise<number>((resolve) => {
      child.on('error', (err) => {
        process.stderr.write(`cannot start the runner inside ${host}: ${err.message}\n`);
        resolve(2);
      });
      child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0)));
    });
  } finally {
    for (const [s, h] of handlers) process.off(s, h);
    for (const ns of listNamespaces(prefix)) deleteNamespace(ns);
    const left = listNamespaces(prefix);
    if (left.length) process.stderr.write(`could not delete network namespaces: ${left.join(', ')} (ip netns del <name>)\n`);
  }
}

/** nat in the host namespace: whatever a worker sends to its veth's host end goes to 127.0.0.1. */
const HOST_RULES = `
table ip lockdeck {
  chain pre {
    type nat hook prerouting priority dstnat;
    iifname "lw*" dnat to 127.0.0.1
  }
}
table inet lockdeck_fault {
  chain from_worker {
    type filter hook prerouting priority raw;
  }
  chain to_worker {
    type filter hook postrouting priority 300;
  }
}
`;

function workerRules(hostAddr: string): string {
  return `
table ip lockdeck {
  chain out {
    type nat hook output priority -100;
    ip daddr 127.0.0.0/8 dnat to ${hostAddr}
  }
  chain post {
    type nat hook postrouting priority 100;
    oifname "v0" masquerade
  }
}
`;
}

let serial = 0;

/**
 * The workers' namespaces of one cell, seen from inside the host namespace (the runner after its
 * re-exec), and the packet faults on their veths.
 */
export class NetLab {
  private readonly ns = new Map<string, { ns: string; hostIf: string }>();
  private readonly faulted = new Set<string>();

  constructor(readonly prefix: string) {}

  /** From the environment of a re-executed runner, or null outside one. */
  static fromEnv(): NetLab | null {
    const p = process.env[NETNS_ENV];
    return p ? new NetLab(p) : null;
  }

  /**
   * Creates worker `w`'s namespace and veth pair; returns the command prefix that runs a program
   * inside it (`ip netns exec <ns>`, which keeps inherited fds such as the Node IPC channel).
   */
  addWorker(w: string): { ns: string; wrap: string[] } {
    const n = serial++;
    if (n >= 16384) throw new Error('more than 16,384 worker namespaces in one run');
    const ns = `${this.prefix}-w${n}`;
    const hostIf = `lw${n}`;
    const base = n * 4;
    const net = `${NET[0]}.${NET[1]}.${base >> 8}.${base & 255}`;
    const hostAddr = `${NET[0]}.${NET[1]}.${base >> 8}.${(base & 255) + 1}`;
    const workerAddr = `${NET[0]}.${NET[1]}.${base >> 8}.${(base & 255) + 2}`;
    try {
      run('ip', ['netns', 'add', ns]);
      this.ns.set(w, { ns, hostIf });
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      // We are in the host namespace: the host end stays here, the peer goes to the worker's.
      run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'v0', 'netns', ns]);
      run('ip', ['addr', 'add', `${hostAddr}/30`, 'dev', hostIf]);
      run('ip', ['link', 'set', hostIf, 'up']);
      run('ip', ['-n', ns, 'addr', 'add', `${workerAddr}/30`, 'dev', 'v0']);
      run('ip', ['-n', ns, 'link', 'set', 'v0', 'up']);
      run('ip', ['netns', 'exec', ns, 'sh', '-c', 'sysctl -qw net.ipv4.conf.all.route_localnet=1 && nft -f -'], workerRules(hostAddr));
    } catch (err) {
      throw new Error(`setting up network namespace ${ns} (${net}/30) for worker ${w}: ${err instanceof Error ? err.message : String(err)}`);
    }
    return { ns, wrap: ['ip', 'netns', 'exec', ns] };
  }

  has(w: string): boolean {
    return this.ns.has(w);
  }

  /**
   * Drops `percent` % of the packets to and from worker w's namespace (100: a partition), both
   * directions, each packet independently (`numgen random mod 100 < p`).
   */
  drop(w: string, percent: number): void {
    const x = this.ns.get(w);
    if (!x) throw new Error(`worker ${w} has no network namespace`);
    const p = Math.round(percent);
    if (!(p >= 1 && p <= 100)) throw new Error(`drop percent must be 1..100, got ${percent}`);
    const cond = p >= 100 ? '' : `numgen random mod 100 < ${p} `;
    run('nft', ['-f', '-'], [
      `add rule inet lockdeck_fault from_worker iifname "${x.hostIf}" ${cond}counter drop comment "${w}"`,
      `add rule inet lockdeck_fault to_worker oifname "${x.hostIf}" ${cond}counter drop comment "${w}"`,
    ].join('\n') + '\n');
    this.faulted.add(w);
  }

  /** Packets dropped so far by the rules of worker w (both directions), from the nft counters. */
  dropped(w: string): number {
    const out = run('nft', ['list', 'table', 'inet', 'lockdeck_fault']).stdout;
    let n = 0;
    for (const line of out.split('\n')) {
      if (!line.includes(`comment "${w}"`)) continue;
      const m = /counter packets (\d+)/.exec(line);
      if (m) n += Number(m[1]);
    }
    return n;
  }

  /** Removes every drop rule (faults run one at a time). */
  heal(): void {
    run('nft', ['-f', '-'], 'flush chain inet lockdeck_fault from_worker\nflush chain inet lockdeck_fault to_worker\n');
    this.faulted.clear();
  }

  /** Deletes this cell's worker namespaces (and their veths). */
  close(): void {
    try {
      this.heal();
    } catch {
      // The host namespace's table is gone already.
    }
    for (const { ns } of this.ns.values()) deleteNamespace(ns);
    this.ns.clear();
  }
}
