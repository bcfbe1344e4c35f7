/**
 * Fault injection for the torture runner, as Jepsen's nemeses do on one host
 * (jepsen-io/etcd `--nemesis pause,kill,clock,partition`):
 *
 *  - pause:        SIGSTOP a current lock holder for longer than its claim on the store lasts (TTL,
 *                  or the ZooKeeper session), then SIGCONT: it wakes up believing it holds the lock.
 *  - kill:         SIGKILL a current holder (a fresh worker replaces it): liveness = how long until
 *                  someone else gets its lock.
 *  - server-kill:  SIGKILL the one server, restart it on the same port with its data.
 *  - member-kill:  SIGKILL one member of a quorum (a Redlock master; the ZooKeeper leader), restart it.
 *  - failover:     Sentinel: SIGKILL the primary, the replica is promoted.
 *  - delay:        the proxied half of the workers (odd ids) sees every byte to and from the store
 *                  and the register 0.4 × TTL later, for 3 × TTL (proxy.ts; `tc netem` is not
 *                  available in this kernel).
 *  - clock-jump:   a waiting worker's wall clock (Date.now()) jumps 3 × TTL forward and back, through
 *                  libfaketime, while its monotonic clock runs true.
 *  - partition:    the proxied half is cut off from the store and the register for longer than its
 *                  claim lasts; held bytes are delivered on heal (late writes must be refused).
 *
 * Kernel network faults on ONE current lock holder (each worker in its own network namespace,
 * torture/netns.ts; nft rules on its veth in the runner's namespace, both directions):
 *
 *  - net-partition: every packet to and from the holder is dropped for longer than its claim lasts
 *                  (TTL, or the ZooKeeper session), then healed. This is a real partition of one
 *                  client from the store AND the register: its TCP stacks retransmit with backoff,
 *                  the store expires its lease/session, a waiter takes the lock; on heal the
 *                  holder's retransmitted or late writes reach the register, which must refuse them
 *                  by fence, and the holder must learn (signal) that it lost the lock.
 *  - net-loss:     25 % of the holder's packets are dropped, each independently, in both
 *                  directions (nft `numgen random mod 100 < 25 drop`), for 3 × TTL: a lossy link
 *                  (TCP retransmissions: 200 ms minimum RTO, doubling) that slows renewals and
 *                  register calls without cutting them.
 *
 * What cannot be emulated here: delay, jitter, reordering, duplication and rate limits need the
 * `netem` qdisc (CONFIG_NET_SCH_NETEM is not set in this kernel; `tc qdisc add ... netem`:
 * "Specified qdisc kind is unknown"); nftables can only drop (or accept) a packet, not hold it.
 * Delay therefore stays the proxy's `delay` (per chunk, order kept, not per packet). Loss-induced
 * retransmission already makes a byte stream arrive late, which is the closest kernel analogue.
 *
 * Each fault logs a `fault` begin/end pair to the runner's history.
 */
import { existsSync, writeFileSync } from 'node:fs';

import type { Deployment, Restartable } from './backends';
import type { FaultKind as HistoryFaultKind } from './history';
import type { NetLab } from './netns';
import { configPorts, type FaultProxy } from './proxy';

/** Faults that need each worker in its own network namespace (torture/netns.ts). */
export const NET_FAULTS = ['net-partition', 'net-loss'] as const;
export type NetFaultKind = (typeof NET_FAULTS)[number];
/** Every fault the runner knows (history.ts's FaultKind plus the namespace faults). */
export type FaultKind = HistoryFaultKind | NetFaultKind;

export const isNetFault = (k: string): k is NetFaultKind => (NET_FAULTS as readonly string[]).includes(k);

/** Share of packets net-loss drops, each direction. */
export const NET_LOSS_PERCENT = 25;

export interface Holder {
  w: string;
  pid: number;
  lock: string;
}

/** What the faults need from the runner. */
export interface FaultHost {
  deployment: Deployment;
  ttlMs: number;
  /** Workers holding a lock right now (not paused). */
  holders(): Holder[];
  /** A worker was killed: start a replacement. */
  replace(w: string): void;
  /** Marks a worker paused (faults must not pick it again) or running. */
  setPaused(w: string, paused: boolean): void;
  log(kind: FaultKind, phase: 'begin' | 'end', target: string, detail?: string): void;
  /** Resolves after ms, or early when the run is stopping. */
  sleep(ms: number): Promise<void>;
  /** The proxies between the odd workers and the servers (delay, partition). */
  proxies: FaultProxy[];
  /** Every live worker and what it holds. */
  workers(): Array<{ w: string; lock: string | null }>;
  /** The libfaketime offset file of a worker (clock-jump), when the run was started with it. */
  clockFile(w: string): string | undefined;
  /** The workers' network namespaces (net-partition, net-loss), when the run has them. */
  net?: NetLab;
}

/** libfaketime from Debian's `faketime` package: per-process wall-clock offsets (clock-jump). */
export const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1';

/**
 * Environment that gives a worker a wall clock we can move: libfaketime reads the offset from
 * `file` at every call (FAKETIME_NO_CACHE) and leaves CLOCK_MONOTONIC alone, so `performance.now()`
 * and `process.hrtime` (the history's clock) keep running true while `Date.now()` jumps.
 */
export function faketimeEnv(file: string): Record<string, string> {
  return { LD_PRELOAD: FAKETIME_LIB, FAKETIME_TIMESTAMP_FILE: file, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
}

export const ALL_FAULTS: FaultKind[] = ['pause', 'kill', 'server-kill', 'member-kill', 'failover', 'delay', 'partition', 'clock-jump', ...NET_FAULTS];

/**
 * Why a fault cannot run on a deployment, or null when it can. `netProblem`: why this runner has
 * no per-worker network namespaces (null when it has them).
 */
export function unsupported(kind: FaultKind, d: Deployment, netProblem: string | null = 'no network namespaces'): string | null {
  switch (kind) {
    case 'net-partition':
    case 'net-loss':
      // SQLite: the lock is a file every worker opens directly; a packet fault cannot separate a
      // holder from it (it would only cut the holder off from the register, which tests nothing
      // about the lock).
      if (!configPorts(d.config).length) return 'embedded store: the lock is a local file, no network between a holder and it';
      return netProblem;
    case 'pause':
    case 'kill':
      return null;
    case 'server-kill':
      return d.server ? null : 'no single server to kill (embedded store or quorum: use member-kill)';
    case 'member-kill':
      return d.members?.length ? null : 'not a quorum deployment';
    case 'failover':
      return d.failover ? null : 'no replica to fail over to (use the sentinel deployment)';
    case 'delay':
    case 'partition':
      if (d.proxyable === false) return 'clients find the servers through a discovery service the proxy cannot rewrite';
      return configPorts(d.config).length ? null : 'embedded store: no network to fault';
    case 'clock-jump':
      return existsSync(FAKETIME_LIB) ? null : `needs libfaketime (${FAKETIME_LIB}): apt-get install faketime`;
  }
}

const pick = <T>(xs: T[]): T | undefined => xs[Math.floor(Math.random() * xs.length)];

async function waitForHolder(host: FaultHost, ok: (h: Holder) => boolean = () => true, tries = 200): Promise<Holder | undefined> {
  for (let i = 0; i < tries; i++) {
    const h = pick(host.holders().filter(ok));
    if (h) return h;
    await host.sleep(25);
  }
  return undefined;
}

async function bounce(host: FaultHost, kind: FaultKind, victim: Restartable, downMs: number): Promise<void> {
  host.log(kind, 'begin', victim.name, `pid ${victim.pid() ?? '?'} SIGKILL, down ${downMs} ms`);
  await victim.kill();
  await host.sleep(downMs);
  await victim.restart();
  host.log(kind, 'end', victim.name, 'restarted');
}

/** Runs one fault to completion. */
export async function inject(kind: FaultKind, host: FaultHost): Promise<void> {
  const d = host.deployment;
  switch (kind) {
    case 'pause': {
      const h = await waitForHolder(host);
      if (!h) return host.log('pause', 'end', '-', 'no holder to pause within 5 s');
      // Past the holder's claim on the store, plus a random extra so the resume lands anywhere in
      // the successor's critical section.
      const ms = Math.round(d.pauseMs + Math.random() * host.ttlMs);
      host.setPaused(h.w, true);
      host.log('pause', 'begin', h.w, `SIGSTOP pid ${h.pid} holding ${h.lock} for ${ms} ms`);
      try {
        process.kill(h.pid, 'SIGSTOP');
        await host.sleep(ms);
      } finally {
        try {
          process.kill(h.pid, 'SIGCONT');
        } catch {
          // Already gone.
        }
        host.log('pause', 'end', h.w, 'SIGCONT');
        host.setPaused(h.w, false);
      }
      return;
    }
    case 'kill': {
      const h = await waitForHolder(host);
      if (!h) return host.log('kill', 'end', '-', 'no holder to kill within 5 s');
      host.log('kill', 'begin', h.w, `SIGKILL pid ${h.pid} holding ${h.lock}`);
      try {
        process.kill(h.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
      host.replace(h.w);
      host.log('kill', 'end', h.w);
      return;
    }
    case 'server-kill':
      return bounce(host, kind, d.server!, host.ttlMs);
    case 'member-kill': {
      const victim = d.nextVictim ? await d.nextVictim() : pick(d.members!)!;
      // Long enough that locks are taken and renewed by the remaining majority.
      return bounce(host, kind, victim, host.ttlMs * 2);
    }
    case 'failover': {
      host.log('failover', 'begin', 'primary');
      const detail = await d.failover!();
      host.log('failover', 'end', 'primary', detail);
      return;
    }
    case 'delay': {
      const ms = Math.round(host.ttlMs * 0.4);
      host.log('delay', 'begin', 'odd workers', `+${ms} ms each way for ${host.ttlMs * 3} ms`);
      for (const p of host.proxies) p.setDelay(ms);
      await host.sleep(host.ttlMs * 3);
      for (const p of host.proxies) p.setDelay(0);
      host.log('delay', 'end', 'odd workers');
      return;
    }
    case 'partition': {
      const ms = Math.round(d.pauseMs + Math.random() * host.ttlMs);
      host.log('partition', 'begin', 'odd workers', `cut off from store and register for ${ms} ms`);
      for (const p of host.proxies) p.partition();
      try {
        await host.sleep(ms);
      } finally {
        for (const p of host.proxies) p.heal();
        host.log('partition', 'end', 'odd workers', 'healed, held bytes delivered');
      }
      return;
    }
    case 'net-partition':
    case 'net-loss': {
      const net = host.net;
      if (!net) throw new Error(`${kind}: the run has no network namespaces (unsupported() should have said so)`);
      const h = await waitForHolder(host, (x) => net.has(x.w));
      if (!h) return host.log(kind, 'end', '-', 'no holder to cut off within 5 s');
      const partition = kind === 'net-partition';
      // Partition: past the holder's claim on the store, plus a random extra so the heal lands
      // anywhere in the successor's critical section (as pause does).
      const ms = partition ? Math.round(d.pauseMs + Math.random() * host.ttlMs) : host.ttlMs * 3;
      const pct = partition ? 100 : NET_LOSS_PERCENT;
      host.setPaused(h.w, true); // not picked again by another fault meanwhile
      host.log(kind, 'begin', h.w, `holding ${h.lock}: nft drops ${pct}% of its packets both ways for ${ms} ms`);
      let dropped = -1;
      try {
        net.drop(h.w, pct);
        await host.sleep(ms);
        dropped = net.dropped(h.w);
      } finally {
        net.heal();
        host.setPaused(h.w, false);
        host.log(kind, 'end', h.w, `healed${dropped >= 0 ? `, ${dropped} packets dropped` : ''}`);
      }
      return;
    }
    case 'clock-jump': {
      // Jump the wall clock of a worker that does not hold a lock (a waiter, the one that would
      // take a lock too early if a store trusted its clock) forward by 3 × TTL, hold it there for
      // 3 × TTL, then back (a backward step).
      const candidates = host.workers().filter((x) => x.lock === null);
      const target = pick(candidates.length ? candidates : host.workers());
      const file = target && host.clockFile(target.w);
      if (!target || !file) return;
      const jumpMs = host.ttlMs * 3;
      host.log('clock-jump', 'begin', target.w, `wall clock +${jumpMs} ms`);
      writeFileSync(file, `+${(jumpMs / 1000).toFixed(3)}\n`);
      try {
        await host.sleep(host.ttlMs * 3);
      } finally {
        writeFileSync(file, '+0\n');
        host.log('clock-jump', 'end', target.w, 'wall clock back');
      }
      return;
    }
  }
}
