/**
 * What the single-server and Redlock backends share: options, the waiting loop, handles, the
 * process channel and the watch.
 */
import { randomUUID } from 'node:crypto';

import type { RedisOptions } from 'ioredis';

import { abortError, AcquireTimeoutError, InvalidArgumentError, ReplicationError } from '../../locks/errors';
import { driftMs, ManagedHandle, type LeaseOps } from '../../locks/handle';
import type {
  AcquireOptions,
  Capabilities,
  ForceReleaseExpectation,
  ForceReleaseResult,
  ListFilter,
  LockBackend,
  LockChange,
  LockHandle,
  LockInfo,
  LostReason,
  OwnerInfo,
  RunStore,
  RunStoreProvider,
  Unsubscribe,
  WatchOptions,
} from '../../locks/types';
import { makeOwner, randomId, resolveAcquireOptions, validateName } from '../../locks/util';
import type { RedisBackendConfig } from '../config';
import { DISCOVERY_DEFAULTS, discoveryWarning, ForeignDiscovery, type DiscoveryOptions, type DiscoveryStatus } from './discovery';
import { DEFAULT_MATCH, forceReleaseForeign, inspectForeignKey, matchesAnyGlob, readForeignKeys, validateMatchGlob } from './formats';
import { RedisNode, type NodeTarget, type ReplicaWait } from './node';
import { RedisRunStore } from './runs';

export interface RedisBackendOptions {
  /** Longest a waiter goes without re-checking the lock (covers lost pub/sub messages). */
  recheckMs: number;
  /** First lease of a lock handed to a waiter; the waiter tops it up to its TTL at once. */
  handoffTtlMs: number;
  /** Per-command timeout: a slow or dead server fails calls instead of hanging them. */
  commandTimeoutMs: number;
  /** Extra ioredis options (TLS, username...). Never taken from a request. */
  redisOptions: RedisOptions;
  /** Background discovery of foreign locks (discovery.ts): pass interval, SCAN COUNT, pacing. */
  discovery?: Partial<DiscoveryOptions>;
}

export const DEFAULTS: Readonly<RedisBackendOptions> = Object.freeze({
  recheckMs: 2000,
  handoffTtlMs: 5000,
  commandTimeoutMs: 5000,
  redisOptions: {},
});

interface Renewal {
  ttlMs: number;
  /** performance.now() at which the next renewal is due. */
  dueAt: number;
  /** How much earlier than due it may be renewed to join another lock's batch. */
  earlyMs: number;
  /** The last renewal failed in transport: retry exactly when due, not early. */
  failing: boolean;
  inflight: boolean;
}

/** What one acquisition attempt returned. */
export type Attempt =
  | {
      ok: true; fence: string; expiresAt: number; leaseMs: number; leaseStart: number;
      /** With waitReplicas: replicas that acknowledged this attempt's own grant; absent when a release handed it to us. */
      acked?: number;
    }
  | {
      ok: false;
      retryInMs: number;
      /**
       * The server's clock (ms) in its reply, and our performance.now() before the request was
       * sent: the server read that time no earlier than `sentAt` on our clock. Lets a waiter bound
       * when a later grant was made (see acquire).
       */
      clock?: { serverMs: number; sentAt: number };
    };

interface PendingWait {
  name: string;
  /** A release handed us the lock (single server). */
  onGrant(fence: string, expiresAt: number, leaseMs: number): void;
  /** Something about the lock changed: try again now (Redlock). */
  onWake(): void;
}

/**
 * What the single-server and Redlock backends share: the waiting loop, handles, the process
 * channel, the watch. Subclasses say how to attempt, renew, release and inspect.
 */
export abstract class RedisBackendBase implements LockBackend, RunStoreProvider {
  readonly type = 'redis' as const;
  abstract readonly capabilities: Capabilities;
  readonly id: string;
  protected readonly prefix: string;
  protected readonly instance = randomId(9);
  protected readonly owner: OwnerInfo;
  /** Our process channel: grants for our waiters, lost-lock notices for our holders. */
  protected readonly channel: string;
  protected readonly match: string[];
  protected abstract readonly nodes: RedisNode[];
  private readonly pending = new Map<string, PendingWait>();
  private readonly held = new Map<string, ManagedHandle>(); // `${name}\n${fence}` -> handle
  /** Auto-renewed handles and when each is next due (performance.now() ms); see runRenewals. */
  private readonly renewals = new Map<ManagedHandle, Renewal>();
  private renewTimer: NodeJS.Timeout | undefined;
  private renewTimerAt = Infinity;
  /**
   * Whether a waiter re-tries when a `released` event for its lock arrives. Redlock: yes, that is
   * how its waiters hear of a release. Single server: no — the server hands the lock to the head
   * waiter itself, so waking the others (when this process also watches) would only be a herd of
   * useless re-checks (anchors §5.1 P6: at most one waiter woken per release).
   */
  protected readonly wakeOnReleaseEvents: boolean = false;
  private readonly watchers = new Set<(c: LockChange) => void>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private nextSweepAt = Infinity;
  private readonly recentEvents = new Map<string, number>();
  /**
   * Per-key order of watch events: an `acquired` needs a read of the lock (async), and the
   * `released` that follows it on the channel must not overtake it, or a watcher would see the
   * lock come back after its release (and keep it until the next reconcile).
   */
  private readonly eventChains = new Map<string, Promise<void>>();
  protected closed = false;

  constructor(
    protected readonly config: RedisBackendConfig,
    protected readonly opts: RedisBackendOptions,
  ) {
    this.id = config.id;
    this.prefix = config.prefix ?? 'lockdeck';
    this.owner = makeOwner(this.instance);
    this.channel = `${this.prefix}:proc:${this.instance}`;
    this.match = (config.match ?? [...DEFAULT_MATCH]).map(validateMatchGlob);
    // 0 is how the scripts know a Redlock master (no server-side handoff, plain fence counter:
    // scripts.ts nextFence), so a single server must have a positive first lease.
    if (!Number.isInteger(opts.handoffTtlMs) || opts.handoffTtlMs < 1) {
      throw new InvalidArgumentError(`redis "${config.id}": handoffTtlMs must be a positive integer (ms), got ${String(opts.handoffTtlMs)}`);
    }
    if (config.waitReplicas !== undefined) {
      const timeoutMs = config.waitTimeoutMs ?? 1000;
      if (config.urls) {
        throw new InvalidArgumentError(`redis "${config.id}": waitReplicas does not apply to Redlock (urls): its masters are independent, with no replicas to wait for`);
      }
      if (!Number.isInteger(config.waitReplicas) || config.waitReplicas < 1 || !Number.isInteger(timeoutMs) || timeoutMs < 1) {
        throw new InvalidArgumentError(`redis "${config.id}": waitReplicas and waitTimeoutMs must be positive integers`);
      }
      // WAIT blocks the connection's reply for up to its timeout: it must end before ioredis gives
      // the command up, or every unconfirmed write would look like a dead server.
      if (timeoutMs >= opts.commandTimeoutMs) {
        throw new InvalidArgumentError(`redis "${config.id}": waitTimeoutMs (${timeoutMs}) must be below the command timeout (${opts.commandTimeoutMs} ms)`);
      }
      this.replicaWait = { replicas: config.waitReplicas, timeoutMs };
    }
  }

  /** Config `waitReplicas` / `waitTimeoutMs` (node.ts, ReplicaWait); undefined when off. */
  protected readonly replicaWait: ReplicaWait | undefined;

  /**
   * With waitReplicas: the lock is returned only once its grant is on enough replicas.
   * `acked` is what the WAIT pipelined with our own grant said; undefined when a release handed us
   * the lock — the releaser's connection wrote that grant, so no WAIT of ours has covered it yet:
   * then an EXTEND by our token and WAIT (node.confirmGrant; offsets are monotonic, so it covers
   * the earlier grant). We confirm on the waiter's side rather than having the releaser WAIT
   * before it publishes the grant: the releaser cannot take the grant back if replicas lag (the
   * release script already made it), a releaser may not use WAIT at all (another process, another
   * configuration, a forced release from the console), and only the waiter knows whether it is
   * still waiting. Resolves to the lease to count on, null when the lock is not ours any more;
   * rejects with ReplicationError after giving the lock back (compare-and-delete by our token, so
   * nothing else is released) when too few replicas acknowledged.
   */
  private async confirmGrant(
    name: string, token: string, ttlMs: number,
    lease: { fence: string; expiresAt: number; leaseMs: number; leaseStart: number }, acked: number | undefined,
  ): Promise<{ fence: string; expiresAt: number; leaseMs: number; leaseStart: number } | null> {
    const w = this.replicaWait!;
    const node = this.nodes[0]!;
    let out = lease;
    try {
      if (acked === undefined) {
        const start = performance.now();
        const c = await node.confirmGrant(name, token, ttlMs);
        if (!c) return null;
        acked = c.acked;
        out = { ...lease, expiresAt: c.expiresAt, leaseMs: ttlMs, leaseStart: start };
      }
    } catch (err) {
      await node.release(name, token, this.opts.handoffTtlMs, false).catch(() => undefined);
      throw err;
    }
    if (acked >= w.replicas) return out;
    await node.release(name, token, this.opts.handoffTtlMs, false).catch(() => undefined);
    throw new ReplicationError(name, 'acquire', acked, w.replicas, w.timeoutMs, 'the lock was given back (by its token) and is not held');
  }

  protected makeNode(label: string, target: NodeTarget): RedisNode {
    return new RedisNode(label, target, {
      prefix: this.prefix,
      commandTimeoutMs: this.opts.commandTimeoutMs,
      redisOptions: this.opts.redisOptions,
      onMessage: (ch, msg) => this.onMessage(ch, msg),
      onPatternMessage: (_pattern, ch, msg) => this.onKeyspaceEvent(ch, msg),
      ...(this.replicaWait ? { wait: this.replicaWait } : {}),
    });
  }

  /** One attempt: take the lock, or (with a waiter id) join/refresh the queue. */
  protected abstract attempt(name: string, token: string, owner: OwnerInfo, o: AcquireOptions, labels: string, waiterId: string, waitedMs: number): Promise<Attempt>;
  /** Leave the queue after giving up; pass the lock on if it was handed to us meanwhile. */
  protected abstract cancel(name: string, waiterId: string, token: string): Promise<void>;
  protected abstract leaseOps(name: string, token: string): LeaseOps;
  protected abstract readOwn(names: string[] | null, now: number, q?: string, limit?: number): Promise<LockInfo[]>;
  protected abstract forceOwn(key: string, expect: ForceReleaseExpectation): Promise<ForceReleaseResult>;
  /** Subscriptions a waiter needs before it queues (its grant channel, or release events). */
  protected abstract waiterSubscriptions(): Promise<void>;

  // ---------------------------------------------------------------- client face

  tryAcquire(name: string, opts?: Partial<Omit<AcquireOptions, 'waitMs'>>): Promise<LockHandle | null> {
    validateName(name);
    const o = resolveAcquireOptions(opts, 0);
    o.signal?.throwIfAborted();
    return this.acquireOnce(name, o);
  }

  /**
   * One attempt, no queue (tryAcquire, waitMs 0): the uncontended acquire's whole client path, so
   * it is kept short — between a reply and the next request, every microsecond of client work
   * also makes the server's next wake-up dearer on a busy host. Null when the lock is taken.
   */
  private async acquireOnce(name: string, o: AcquireOptions): Promise<LockHandle | null> {
    // Holders listen on our channel too, so a forced release reaches them at once. Not awaited:
    // until it is up, a failed renewal is the (slower) way they learn.
    if (!this.processChannelReady) void this.subscribeProcessChannel().catch(() => undefined);
    const token = randomUUID();
    const owner = o.owner ? makeOwner(this.instance, o.owner) : this.owner;
    const r = await this.attempt(name, token, owner, o, o.labels ? JSON.stringify(o.labels) : '{}', '', 0);
    return r.ok ? this.keep(name, token, owner, o, r, r.acked) : null;
  }

  /**
   * A lease we were granted, as a handle; or null after giving it back (by its token) when it is
   * no lock any more. A lease whose end, on our clock, has passed by the time we learn of it is no
   * lock: another client may hold it already. (Found by the torture checker under network delay:
   * a grant that arrived later than the lease lasted was returned as held.) With waitReplicas the
   * grant must also be confirmed on the replicas first (confirmGrant).
   */
  private async keep(
    name: string, token: string, owner: OwnerInfo, o: AcquireOptions,
    lease: { fence: string; expiresAt: number; leaseMs: number; leaseStart: number }, acked: number | undefined,
  ): Promise<ManagedHandle | null> {
    if (!lapsed(lease.leaseStart, lease.leaseMs)) {
      const c = this.replicaWait ? await this.confirmGrant(name, token, o.ttlMs, lease, acked) : lease;
      if (c && !lapsed(c.leaseStart, c.leaseMs)) return this.makeHandle(name, token, owner, o, c.fence, c.expiresAt, c.leaseMs, c.leaseStart);
    }
    await this.leaseOps(name, token).release().catch(() => undefined); // ours only by token
    return null;
  }

  async acquire(name: string, partial?: Partial<AcquireOptions>): Promise<LockHandle> {
    validateName(name);
    const o = resolveAcquireOptions(partial);
    o.signal?.throwIfAborted();
    if (o.waitMs === 0) {
      const h = await this.acquireOnce(name, o);
      if (!h) throw new AcquireTimeoutError(name, 0);
      return h;
    }
    const token = randomUUID();
    const owner = o.owner ? makeOwner(this.instance, o.owner) : this.owner;
    const labels = o.labels ? JSON.stringify(o.labels) : '{}';
    const waiterId = randomUUID();
    const startedAt = performance.now();
    const deadline = startedAt + o.waitMs; // Infinity stays Infinity

    let granted: { fence: string; expiresAt: number; leaseMs: number; at: number } | undefined;
    let wake: (() => void) | undefined;
    // Subscribe before queueing, so a grant published right after we join cannot be missed.
    await this.waiterSubscriptions();
    this.pending.set(waiterId, {
      name,
      onGrant: (fence, expiresAt, leaseMs) => {
        granted = { fence, expiresAt, leaseMs, at: performance.now() };
        wake?.();
      },
      onWake: () => {
        if (this.wakeOnReleaseEvents) wake?.();
      },
    });
    let clock: { serverMs: number; sentAt: number } | undefined;
    try {
      for (;;) {
        o.signal?.throwIfAborted();
        let retryInMs = 0; // a lapsed lease: look again at once
        if (!granted) {
          const r = await this.attempt(name, token, owner, o, labels, waiterId, performance.now() - startedAt);
          if (r.ok) {
            const h = await this.keep(name, token, owner, o, r, r.acked);
            if (h) return h; // else given back: look again at once
          } else {
            retryInMs = r.retryInMs;
            if (r.clock) clock = r.clock;
          }
        }
        if (granted) {
          const g = granted as { fence: string; expiresAt: number; leaseMs: number; at: number };
          // When was the grant made, on our clock? The message says when on the server's (its
          // expiry minus its lease); our last refused attempt pairs a server time with a local
          // time no later than it. So the grant was made no earlier than
          // sentAt + (grant time − that server time): the lease starts there, not when the
          // message arrived, however late it was.
          const leaseStart = clock ? Math.min(g.at, clock.sentAt + (g.expiresAt - g.leaseMs - clock.serverMs)) : g.at;
          // A handed-over grant was written by the releaser's connection: no WAIT of ours covers it.
          const h = await this.keep(name, token, owner, o, { fence: g.fence, expiresAt: g.expiresAt, leaseMs: g.leaseMs, leaseStart }, undefined);
          if (h) return h;
          granted = undefined;
          continue; // queue again
        }
        const now = performance.now();
        if (now >= deadline) throw new AcquireTimeoutError(name, Math.round(now - startedAt));
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(done, Math.max(0, Math.min(retryInMs, this.opts.recheckMs, deadline - now)));
          const onAbort = () => done(abortError(o.signal!));
          function done(err?: unknown) {
            clearTimeout(timer);
            o.signal?.removeEventListener('abort', onAbort);
            wake = undefined;
            if (err) reject(err);
            else resolve();
          }
          wake = () => done();
          o.signal?.addEventListener('abort', onAbort, { once: true });
          if (o.signal?.aborted) onAbort();
          else if (granted) done();
        });
      }
    } catch (err) {
      if (!granted) await this.cancel(name, waiterId, token).catch(() => undefined);
      throw err;
    } finally {
      this.pending.delete(waiterId);
    }
  }

  private makeHandle(
    name: string, token: string, owner: OwnerInfo, o: AcquireOptions,
    fence: string, expiresAt: number, leaseMs: number, leaseStart: number,
  ): ManagedHandle {
    // The handle keeps its expiry timer and lost signal, but renewals are ours (runRenewals): one
    // timer and one pipeline per backend for all its held locks, not one timer and request each.
    const autoRenew = o.autoRenew ?? true;
    const handle: ManagedHandle = new ManagedHandle({
      backend: this.id,
      name,
      fence,
      owner,
      ttlMs: o.ttlMs,
      leaseMs,
      leaseStart,
      expiresAt,
      autoRenew: false,
      onDone: this.onHandleDone,
      onLost: this.onHandleLost,
      ops: this.leaseOps(name, token),
    });
    this.held.set(`${name}\n${fence}`, handle);
    if (autoRenew) {
      // Same rule as ManagedHandle's own: renew a third of the way into the lease; a short first
      // lease (a lock handed to a waiter) is topped up a third of the way into it, not at once.
      const intervalMs = Math.min(leaseMs, o.ttlMs) / 3;
      this.renewals.set(handle, { ttlMs: o.ttlMs, dueAt: leaseStart + intervalMs, earlyMs: intervalMs / 2, failing: false, inflight: false });
      this.scheduleRenewals();
    }
    return handle;
  }

  /** A handle's end (release or loss): made once, not a closure per acquire. */
  private readonly onHandleDone = (h: ManagedHandle): void => {
    this.held.delete(`${h.name}\n${h.fence}`);
    this.renewals.delete(h);
  };

  private readonly onHandleLost = (reason: LostReason, h: ManagedHandle): void => this.publishLost(h.name, h.fence, h.owner, reason);

  /**
   * One renewal finished and is next due at `at`: make sure the timer fires by then. O(1), so
   * that thousands of renewals completing in one tick do not each rescan every held lock.
   */
  private armRenewalAt(at: number): void {
    if (this.closed || (this.renewTimer && this.renewTimerAt <= at)) return;
    clearTimeout(this.renewTimer);
    this.renewTimerAt = at;
    this.renewTimer = setTimeout(() => this.runRenewals(), Math.max(0, at - performance.now()));
    this.renewTimer.unref?.();
  }

  /** Arms the one renewal timer for the earliest due handle. */
  private scheduleRenewals(): void {
    if (this.closed) return;
    let at = Infinity;
    for (const r of this.renewals.values()) if (!r.inflight && r.dueAt < at) at = r.dueAt;
    if (at === Infinity) {
      clearTimeout(this.renewTimer);
      this.renewTimer = undefined;
      this.renewTimerAt = Infinity;
      return;
    }
    if (this.renewTimer && this.renewTimerAt <= at) return;
    clearTimeout(this.renewTimer);
    this.renewTimerAt = at;
    this.renewTimer = setTimeout(() => this.runRenewals(), Math.max(0, at - performance.now()));
    this.renewTimer.unref?.();
  }

  /**
   * Renews every held lock that is due, plus those due within half their renewal interval: locks
   * renewed together are next due together, so after one early renewal all of a process's locks
   * with the same TTL share one tick, and their EXTENDs go out in the same tick as one pipeline
   * (node.ts, extend). Renewing early is always safe (it only moves the expiry later, on the
   * token's compare); steady state stays at one renewal per lock per TTL/3.
   */
  private runRenewals(): void {
    this.renewTimer = undefined;
    this.renewTimerAt = Infinity;
    const now = performance.now();
    for (const [h, r] of this.renewals) {
      if (r.inflight || r.dueAt > now + (r.failing ? 0 : r.earlyMs)) continue;
      r.inflight = true;
      const start = performance.now();
      h.extend(r.ttlMs).then(
        () => {
          r.inflight = false;
          r.failing = false;
          r.dueAt = start + r.ttlMs / 3;
          r.earlyMs = r.ttlMs / 6;
          this.armRenewalAt(r.dueAt);
        },
        () => {
          r.inflight = false;
          // Lost (not ours any more, or released meanwhile): the handle has said so already.
          if (!h.held) {
            this.renewals.delete(h);
          } else {
            // A transport error: try again soon; the handle's expiry timer ends it at its deadline.
            r.failing = true;
            r.dueAt = performance.now() + Math.min(Math.max(r.ttlMs / 10, 20), 1000);
            this.armRenewalAt(r.dueAt);
          }
        },
      );
    }
    this.scheduleRenewals();
  }

  /**
   * Tells watchers that one of our holders lost its lock: a `lost` event on the events channel of
   * the first node, in publishEvent's line format with the reason in the `ms` slot. Fire and
   * forget: it never throws, nor waits.
   */
  private publishLost(name: string, fence: string, owner: OwnerInfo, reason: string): void {
    try {
      const node = this.nodes[0];
      if (!node || this.closedConnections) return;
      void node.cmd.publish(node.eventsChannel, `lost\n${Date.now()}\n${fence}\n${owner.id}\n${reason}\n${name}`).catch(() => undefined);
    } catch {
      // A closed connection: nobody is left to tell.
    }
  }

  private closedConnections = false;

  private processChannelReady = false;

  protected subscribeProcessChannel(): Promise<void> {
    return Promise.all(this.nodes.map((n) => n.subscribe(this.channel))).then(() => {
      this.processChannelReady = true;
    });
  }

  private onMessage(channel: string, message: string): void {
    if (channel === this.channel) {
      if (message.startsWith('g|')) {
        const [, waiterId, fence, exp, lease] = message.split('|');
        this.pending.get(waiterId!)?.onGrant(fence!, Number(exp), Number(lease));
      } else if (message.startsWith('l|')) {
        const i = message.indexOf('|', 2);
        const fence = message.slice(2, i);
        const name = message.slice(i + 1);
        this.held.get(`${name}\n${fence}`)?.markLost('forced');
      }
    } else if (channel === `${this.prefix}:events`) {
      this.onEvent(message);
    }
  }

  // ---------------------------------------------------------------- inspector face

  /**
   * The scheduler's run records, on the (first) server. With Redlock they live on the first
   * master only: they are a record of what ran, not part of the lock's safety.
   */
  runStore(opts: { retain?: number } = {}): RunStore {
    return new RedisRunStore(this.nodes[0]!.cmd, this.prefix, opts.retain ?? 500);
  }

  async ping(): Promise<number> {
    const times = await Promise.all(this.nodes.map((n) => n.ping()));
    return Math.max(...times);
  }

  /** Foreign-lock discovery, started by the first list() (a process that only takes locks never scans). */
  private discovery: ForeignDiscovery | undefined;

  private foreignDiscovery(): ForeignDiscovery {
    if (!this.discovery) {
      // On the first server: as before, foreign locks are looked for there (a node-redlock lock
      // is on every master, so one master shows it).
      this.discovery = new ForeignDiscovery(this.nodes[0]!.cmd, { backendId: this.id, match: this.match, ownPrefix: this.prefix }, this.opts.discovery);
      if (this.closed) this.discovery.stop();
    }
    this.discovery.start();
    return this.discovery;
  }

  /**
   * Where foreign-lock discovery stands: how old what it knows is (`lastPassAgeMs`), how long a
   * pass takes, how many foreign locks it knows. Null before the first list() or without `match`.
   */
  discoveryStatus(): DiscoveryStatus | null {
    return this.discovery?.status() ?? null;
  }

  /** Runs a discovery pass now and resolves when it is complete (tests, benchmarks, a "rescan" button). */
  async rediscover(timeoutMs = Infinity): Promise<DiscoveryStatus | null> {
    if (this.match.length === 0 || this.closed) return null;
    await this.foreignDiscovery().passNow(timeoutMs);
    return this.discovery!.status();
  }

  /**
   * Our locks from the index, and the foreign locks the background discovery knows, each re-read
   * now (so a lock released since the last pass is not shown). No SCAN here: a foreign lock taken
   * since the last pass appears after the next one (see discovery.ts); a warning row says so when
   * the discovery is behind (first pass not done yet, or passes failing).
   */
  async list(filter: ListFilter = {}): Promise<LockInfo[]> {
    const limit = Math.max(1, Math.min(filter.limit ?? 10_000, 100_000));
    const node = this.nodes[0]!;
    const now = await node.serverNow();
    if (this.match.length === 0) return this.readOwn(null, now, filter.q?.toLowerCase(), limit);
    const discovery = this.foreignDiscovery();
    // The first listing waits for the first pass (bounded): on an ordinary keyspace it completes in
    // well under the bound, and the answer is complete from the start; on a huge one the listing
    // is not held up longer than firstWaitMs, and the warning row says the foreign part is partial.
    const readForeign = async () => {
      await discovery.ensureFresh(this.opts.discovery?.firstWaitMs ?? DISCOVERY_DEFAULTS.firstWaitMs);
      const known = discovery.read(filter.q, limit, this.id, now);
      // A search for one exact key (an operator pasting a key) is answered now, not after the next
      // pass: that key is read too. Outside the globs only a structurally certain layout (a
      // Redisson hash) is recognised, as in get().
      const probe = filter.q && !filter.q.startsWith(`${this.prefix}:`) ? filter.q : null;
      const direct = probe !== null && matchesAnyGlob(probe, this.match);
      const probed = probe ? readForeignKeys(node.cmd, [{ key: probe, direct }], this.id, now) : Promise.resolve([]);
      const [found, extra] = await Promise.all([known, probed]);
      const p = extra[0];
      if (!p || found.some((l) => l.key === p.key)) return found;
      discovery.note(p.key, direct);
      return [...found, p];
    };
    // Both halves at once: the foreign re-read does not wait for the own read's round trips.
    const [own, foreignRaw] = await Promise.all([this.readOwn(null, now, filter.q?.toLowerCase(), limit), readForeign()]);
    if (own.length >= limit) return own;
    const foreign = foreignRaw.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const out = [...own, ...foreign.slice(0, limit - own.length)];
    const s = discovery.status();
    let warning: string | null = null;
    if (s.passes === 0) {
      warning = `foreign-lock discovery in progress (first pass: ${s.keysExamined.toLocaleString('en')} keys examined so far${s.lastError ? `; last error: ${s.lastError}` : ''}): foreign locks further in the keyspace are not shown yet`;
    } else if (s.full) {
      warning = `more foreign locks than discovery remembers (${s.known.toLocaleString('en')}): some are not shown; narrow "match" in the configuration`;
    } else if ((s.lastPassAgeMs ?? 0) > s.staleAfterMs) {
      warning = `foreign-lock discovery is behind: the last complete pass started ${Math.round((s.lastPassAgeMs ?? 0) / 1000)} s ago${s.lastError ? ` (${s.lastError})` : ''}: foreign locks taken since then are not shown`;
    }
    if (warning && out.length < limit) out.push(discoveryWarning(this.id, this.match, warning, s));
    return out;
  }

  async get(key: string): Promise<LockInfo | null> {
    const node = this.nodes[0]!;
    const now = await node.serverNow();
    const [own] = await this.readOwn([key], now);
    if (own) return own;
    // Only keys under the configured globs: a request must not turn any key into a "lock".
    return inspectForeignKey(node.cmd, this.id, key, now, { match: this.match, ownPrefix: this.prefix });
  }

  async forceRelease(key: string, expect: ForceReleaseExpectation = {}): Promise<ForceReleaseResult> {
    validateName(key);
    const own = await this.forceOwn(key, expect);
    if (own.status !== 'not-found') return own;
    // A foreign lock on several masters (node-redlock) must be released on every one of them
    // (lock-formats.md §7.3.4), each by its own compare-and-delete.
    const results = await Promise.allSettled(
      this.nodes.map(async (n) => forceReleaseForeign(n.cmd, this.id, key, expect, await n.serverNow(), { match: this.match, ownPrefix: this.prefix })),
    );
    const outcomes = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (outcomes.length === 0) throw (results[0] as PromiseRejectedResult).reason;
    return (
      outcomes.find((o) => o.status === 'released') ?? outcomes.find((o) => o.status === 'changed') ?? { status: 'not-found' }
    );
  }

  watch(onChange: (change: LockChange) => void, opts: WatchOptions = {}): Unsubscribe {
    // Client telemetry (attempt, lost) only for watchers that asked for it.
    const fn = opts.telemetry ? onChange : (c: LockChange) => (c.type === 'attempt' || c.type === 'lost' ? undefined : onChange(c));
    this.watchers.add(fn);
    if (this.watchers.size === 1) {
      for (const n of this.nodes) this.keepTrying(() => n.subscribe(n.eventsChannel));
      void this.watchForeign(true);
      this.scheduleSweep(0);
    }
    return () => {
      this.watchers.delete(fn);
      if (this.watchers.size === 0) {
        clearTimeout(this.sweepTimer);
        this.sweepTimer = undefined;
        this.nextSweepAt = Infinity;
        for (const n of this.nodes) void n.unsubscribe(n.eventsChannel);
        void this.watchForeign(false);
      }
    };
  }

  /**
   * Retries a watch subscription until it succeeds or nobody watches any more: a watch opened
   * while Redis is down must start working when Redis comes back. (Once subscribed, ioredis
   * re-subscribes by itself after a reconnect.)
   */
  private keepTrying(subscribe: () => Promise<void>, delayMs = 250): void {
    subscribe().catch(() => {
      if (this.watchers.size === 0 || this.closed) return;
      setTimeout(() => this.keepTrying(subscribe, Math.min(delayMs * 2, 5000)), delayMs).unref?.();
    });
  }

  /** Keyspace patterns we listen on for foreign locks, per node (empty when events are off). */
  private foreignPatterns: { node: RedisNode; patterns: string[] }[] = [];
  /** Foreign locks the watch has reported as held, to tell acquired from changed and released. */
  private readonly foreignKnown = new Set<string>();
  private readonly foreignPending = new Map<string, string>();

  /**
   * Foreign clients publish nothing of their own; where the server emits keyspace notifications
   * for the configured globs, they tell us within a round trip. Otherwise the console's periodic
   * reconcile finds foreign changes.
   */
  private async watchForeign(on: boolean): Promise<void> {
    if (!on) {
      const subs = this.foreignPatterns;
      this.foreignPatterns = [];
      await Promise.all(subs.flatMap(({ node, patterns }) => patterns.map((p) => node.punsubscribe(p))));
      return;
    }
    for (const node of this.nodes) {
      // Retried like the events channel (keepTrying): a server that could not be asked, or a
      // subscription that failed, must not leave the watch without foreign events for good.
      this.keepTrying(async () => {
        const prefix = await node.keyspaceChannelPrefix();
        if (!prefix || this.watchers.size === 0) return;
        const patterns = this.match.map((g) => prefix + g);
        await Promise.all(patterns.map((p) => node.psubscribe(p)));
        if (this.watchers.size > 0 && !this.foreignPatterns.some((f) => f.node === node)) this.foreignPatterns.push({ node, patterns });
      });
    }
  }

  private onKeyspaceEvent(channel: string, event: string): void {
    const key = channel.slice(channel.indexOf('__:') + 3);
    if (!key || key.startsWith(`${this.prefix}:`)) return;
    // A burst of commands on one key (SET then PEXPIRE, or a Redisson HINCRBY + PEXPIRE) is one change.
    const first = !this.foreignPending.has(key);
    this.foreignPending.set(key, event);
    if (!first) return;
    setTimeout(() => {
      const last = this.foreignPending.get(key) ?? event;
      this.foreignPending.delete(key);
      void this.get(key)
        .catch(() => undefined)
        .then((lock) => {
          if (lock === undefined || this.watchers.size === 0) return;
          const at = Date.now();
          if (lock) {
            // Pushed to discovery too, so list() shows it before the next pass.
            if (lock.format !== 'lockdeck') this.discovery?.note(key, matchesAnyGlob(key, this.match));
            const known = this.foreignKnown.has(key);
            this.foreignKnown.add(key);
            this.emit({ type: known ? 'changed' : 'acquired', backend: this.id, key, lock, at });
          } else if (this.foreignKnown.delete(key) || ['del', 'expired', 'evicted'].includes(last)) {
            this.emit({ type: last === 'expired' ? 'expired' : 'released', backend: this.id, key, lock: null, at });
          }
        });
    }, 5);
  }

  private emit(change: LockChange): void {
    for (const w of this.watchers) {
      try {
        w(change);
      } catch {
        // A watcher's bug must not stop the others.
      }
    }
  }

  /**
   * Whether one renewal event tells the whole new state: on one server (plain or behind Sentinel)
   * it does. Not with several masters (Redlock: each master's event has its own clock, and a fence
   * raised after the quorum differs from the one its `acquired` carried) or in a Cluster (each
   * shard's clock): there a renewal is read back, as before.
   */
  private get renewalsCarryTruth(): boolean {
    return this.nodes.length === 1 && !this.nodes[0]!.isCluster;
  }

  private onEvent(message: string): void {
    // type, at, fence, owner, ms, name, one per line (scripts.ts publishEvent); the name is last.
    // `attempt` and `lost` carry text in the ms slot (a mode and id, a reason); older consoles
    // ignore those types, so the format stays what it was.
    const parts = message.split('\n');
    if (parts.length < 6) return;
    const text = parts[4]!;
    const ms = text === '' || !/^-?\d+(\.\d+)?$/.test(text) ? undefined : Number(text);
    const ev = { type: parts[0]!, at: Number(parts[1]), fence: parts[2] || undefined, owner: parts[3] || undefined, ms, key: parts.slice(5).join('\n') };
    if (ev.type === 'released' || ev.type === 'forced') {
      for (const p of this.pending.values()) if (p.name === ev.key) p.onWake();
    }
    if (this.watchers.size === 0) return;
    // With several masters every change arrives once per master: pass it on once.
    // An attempt has no fence: its id (in the text slot) tells two attempts apart.
    const id = `${ev.type}|${ev.key}|${ev.fence ?? ''}${ev.type === 'attempt' ? `|${text}` : ''}`;
    const now = Date.now();
    if ((this.recentEvents.get(id) ?? 0) > now - 1000) return;
    this.recentEvents.set(id, now);
    if (this.recentEvents.size > 1000) for (const [k, t] of this.recentEvents) if (t < now - 1000) this.recentEvents.delete(k);
    const inOrder = (fn: () => void | Promise<void>) => {
      const prev = this.eventChains.get(ev.key);
      if (!prev) {
        // Nothing in flight for this key: synchronous events go out at once.
        const r = fn();
        if (!r) return;
        const chain = r.finally(() => {
          if (this.eventChains.get(ev.key) === chain) this.eventChains.delete(ev.key);
        });
        this.eventChains.set(ev.key, chain);
        return;
      }
      const chain = prev.then(fn).finally(() => {
        if (this.eventChains.get(ev.key) === chain) this.eventChains.delete(ev.key);
      });
      this.eventChains.set(ev.key, chain);
    };
    if (ev.type === 'renewed' && ev.ms !== undefined && this.renewalsCarryTruth) {
      // The renewal carries its new expiry (scripts.ts EXTEND): nothing to read back. Reading the
      // lock for every renewal was a read script per renewal per watching process: with 10,000
      // held locks, ~1,000 a second from the console alone (20,000 in 21 s, INFO commandstats).
      const expiresAt = ev.ms;
      inOrder(() => {
        this.emit({ type: 'changed', backend: this.id, key: ev.key, lock: null, at: ev.at, renewal: { fence: ev.fence ?? null, expiresAt } });
        this.scheduleSweep(Math.max(0, expiresAt - ev.at));
      });
    } else if (ev.type === 'acquired' || ev.type === 'renewed') {
      // 'renewed' without an expiry (an older lockdeck client), or from several servers (renewalsCarryTruth).
      inOrder(() =>
        this.get(ev.key)
          .catch(() => null)
          .then((read) => {
            // Released (or taken over) before the read: what the event itself says, so that the
            // watcher sees acquired, then the release queued behind this.
            const lock = read && (!ev.fence || read.fence === ev.fence) ? read : eventLock(this.id, ev.key, ev.owner ?? null, ev.fence ?? null);
            const change: LockChange = { type: ev.type === 'acquired' ? 'acquired' : 'changed', backend: this.id, key: ev.key, lock, at: ev.at };
            if (ev.type === 'acquired' && ev.ms !== undefined) change.waitedMs = ev.ms;
            this.emit(change);
            if (read?.expiresAt) this.scheduleSweep(Math.max(0, read.expiresAt - ev.at));
          }),
      );
    } else if (ev.type === 'released' || ev.type === 'forced') {
      // The lock as it was, as far as the event tells: who held it and with which fence.
      const lock = eventLock(this.id, ev.key, ev.owner ?? null, ev.fence ?? null);
      const type = ev.type;
      inOrder(() => this.emit({ type, backend: this.id, key: ev.key, lock, at: ev.at, ...(ev.ms !== undefined ? { heldMs: ev.ms } : {}) }));
    } else if (ev.type === 'lost') {
      // What the holder knew: its owner and fence. The lock itself is gone or someone else's.
      const owner = ev.owner ?? null;
      const fence = ev.fence ?? null;
      const lock: LockInfo = {
        backend: this.id, key: ev.key, format: 'lockdeck', kind: 'mutex', owner, fence,
        holders: [{ owner, fence, acquiredAt: null }], acquiredAt: null, expiresAt: null, ttlMs: null, waiters: [], health: 'unknown',
      };
      this.emit({ type: 'lost', backend: this.id, key: ev.key, lock, at: ev.at, ...(text ? { reason: text } : {}) });
    } else if (ev.type === 'attempt') {
      this.emit({ type: 'attempt', backend: this.id, key: ev.key, lock: null, at: ev.at });
    }
  }

  /**
   * Our locks expire silently (Redis publishes nothing unless keyspace notifications are on), so
   * the watch sweeps the index at the earliest expiry it knows, and at least every 5 s.
   */
  private scheduleSweep(inMs: number): void {
    const delayMs = Math.min(inMs + 5, 5000);
    const at = Date.now() + delayMs;
    if (this.sweepTimer && this.nextSweepAt <= at) return;
    clearTimeout(this.sweepTimer);
    this.nextSweepAt = at;
    this.sweepTimer = setTimeout(() => void this.sweep(), delayMs);
    this.sweepTimer.unref?.();
  }

  private async sweep(): Promise<void> {
    this.sweepTimer = undefined;
    this.nextSweepAt = Infinity;
    if (this.watchers.size === 0 || this.closed) return;
    const node = this.nodes[0]!;
    try {
      const now = await node.serverNow();
      const { due, next } = await node.dueNames(now);
      const infos = await this.readOwn(due, now);
      const alive = new Set(infos.map((l) => l.key));
      const gone = due.filter((n) => !alive.has(n));
      await node.dropFromIndex(gone);
      for (const key of gone) this.emit({ type: 'expired', backend: this.id, key, lock: null, at: now });
      this.scheduleSweep(next === null ? 5000 : Math.max(0, next - now));
    } catch {
      this.scheduleSweep(2000);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.discovery?.stop();
    clearTimeout(this.sweepTimer);
    clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    await Promise.allSettled([...this.held.values()].map((h) => h.release()));
    this.closedConnections = true;
    for (const n of this.nodes) n.close();
  }
}

/** A lockdeck lock as far as an event line tells: its holder's owner and fence. */
function eventLock(backend: string, key: string, owner: string | null, fence: string | null): LockInfo {
  return {
    backend, key, format: 'lockdeck', kind: 'mutex', owner, fence,
    holders: [{ owner, fence, acquiredAt: null }], acquiredAt: null, expiresAt: null, ttlMs: null, waiters: [], health: 'unknown',
  };
}

/** Has a lease that started at `leaseStart` (performance.now()) run out on our clock, drift allowed? */
function lapsed(leaseStart: number, leaseMs: number): boolean {
  return performance.now() >= leaseStart + leaseMs - driftMs(leaseMs);
}
