/**
 * ZooKeeper: a mutex wire-compatible with Curator's InterProcessMutex, and an inspector for the
 * lock layouts of Curator, kazoo and plain ephemeral nodes (layout.ts).
 *
 * Our mutex is Curator's recipe (curator-recipes .../locks/LockInternals.java,
 * StandardLockInternalsDriver.java):
 * - each contender creates an EPHEMERAL_SEQUENTIAL child `<path>/_c_<uuid>-lock-<seq>` (Curator's
 *   "protected" name: the uuid lets us find our node again when a create's answer is lost);
 * - the lowest sequence holds; every other contender watches only its immediate predecessor, so a
 *   release wakes exactly one waiter, in FIFO order;
 * - release deletes our node.
 * Curator and lockdeck contenders on one path exclude each other. kazoo's Lock also counts as a
 * contender for us; kazoo sees ours when created with `extra_lock_patterns=["-lock-"]`.
 *
 * Node data is JSON `{"lockdeck":1,"owner",...}`. Curator writes the client's IP as text there
 * by default and never parses it (CuratorFrameworkFactory `getLocalAddress()` as `defaultData`;
 * LockInternals only reads children names and watches with getData, discarding the bytes), so any
 * bytes are fine to Curator.
 *
 * Parents: node-zookeeper-client speaks the 3.4 protocol, which has no container nodes, so we
 * create **persistent** parents (as kazoo does; Curator would create containers that the server
 * removes when empty). Empty parents stay until someone deletes them. Deleting one restarts its
 * sequence counter, and with it the fences below: a cleanup job must only delete parents of locks
 * that are retired for good.
 *
 * Fence = the holder node's sequence number. It comes from the parent's cversion, which every child
 * create and delete increments, so it strictly increases per lock path (while the parent lives).
 *
 * Sessions: locks are bound to the ZooKeeper session (`capabilities.ttl` false: the store keeps no
 * lease clock). The handle's lease is kept locally: renewal checks that our node still exists, and a
 * handle whose lease lapses (no renewal) deletes its node, so the lock is free once its holder
 * has stopped believing in it. A dropped connection marks every held handle lost ('session-lost')
 * at once: until the session is proven alive we cannot know that the node still exists, and the
 * node is deleted as soon as the connection is back. An expired session is replaced by a new one.
 * Our holders watch their own node, so a forced release reaches them at once ('forced').
 *
 * Scheduler run records (runStore, runs.ts) are persistent nodes under `<parent>/lockdeck-runs/`
 * beside the first root. `lockdeck-runs` is a reserved name: the inspector skips nodes of that
 * name and lock names may not contain it as a segment. A scheduler occurrence lock whose holder
 * dies stays held until its session expires (not only lockAtMostForMs).
 */
import { randomUUID } from 'node:crypto';

import { AcquireTimeoutError, BackendUnavailableError, InvalidArgumentError, LockError, abortError } from '../../locks/errors';
import { ManagedHandle, type LeaseOps, type ManagedHandleInit } from '../../locks/handle';
import type {
  AcquireOptions,
  Capabilities,
  ForceReleaseExpectation,
  ForceReleaseResult,
  HolderInfo,
  ListFilter,
  LockBackend,
  LockChange,
  LockHandle,
  LockInfo,
  LockKind,
  NamedLock,
  OwnerInfo,
  ReadWriteLock,
  ReadWriteLockProvider,
  RunStore,
  RunStoreProvider,
  Unsubscribe,
  WaiterInfo,
} from '../../locks/types';
import { lockHealth } from '../../locks/health';
import { makeOwner, randomId, resolveAcquireOptions, validateName } from '../../locks/util';
import type { BackendConfig } from '../config';
import {
  arrange,
  contendersOf,
  dataText,
  CURATOR_SEMAPHORE_LEASES,
  CURATOR_SEMAPHORE_LOCKS,
  KAZOO_LEASE_NODE,
  KAZOO_SEMAPHORE_LEASE,
  mutexContenders,
  parseKazooLease,
  parseContender,
  parseLockdeckData,
  type Contender,
  type LockdeckNodeData,
} from './layout';
import { RUNS_DIR, runsPathOf, ZooKeeperRunStore } from './runs';
import { batched, CreateMode, EventType, isBadVersion, isConnectionLoss, isNoNode, unavailable, ZkSession, type NodeStat } from './session';

export type ZooKeeperBackendConfig = Extract<BackendConfig, { type: 'zookeeper' }>;

export interface ZooKeeperBackendOptions {
  /** Session timeout asked of the server (clamped by it to [2, 20] ticks; default 10000, as kazoo). */
  sessionTimeoutMs?: number;
  /** Bound of one request and of waiting for a connection (default: the session timeout). */
  opTimeoutMs?: number;
  /**
   * A parent with more children than this is not read (getChildren has no paging and the whole
   * name list comes in one reply): the inspector shows a warning entry instead. Default 50000.
   */
  maxChildren?: number;
  /** Contenders whose data the inspector reads per lock: holders plus the first waiters (default 100). */
  maxWaitersShown?: number;
  /** Upper bound of nodes the inspector visits in one list() and of parents watch() watches (default 20000). */
  maxNodes?: number;
}

const CAPABILITIES: Capabilities = Object.freeze({
  fencing: true,
  ttl: false,
  waiters: true,
  fifo: true,
  pushWatch: true,
  notifiesHolderOnForce: true,
  // No `attempt` / `lost` telemetry: there is nothing to publish through without a write (a node
  // per event), and a watcher already sees a lost holder's node vanish.
  telemetry: false,
});

const DEFAULT_LIST_LIMIT = 1000;
/** Directories list() reads at once (see list()). */
const LIST_WAVE = 256;
const FORCE_NOTE =
  'ZooKeeper cannot tell a foreign holder: its client keeps running until it looks at its node (Curator and kazoo do not). lockdeck holders watch their node and stop at once.';

/** One lock as read from the store, with what force-release needs. */
interface Scanned {
  info: LockInfo;
  /** The holder nodes, in LockInfo.holders order. */
  nodes: { path: string; version: number; fence: string; owner: string | null; ctime: number }[];
}

interface Waiter {
  kick(): void;
  cancel(err: unknown): void;
}

/**
 * What a contender is, and the node name Curator gives it (after the `_c_<uuid>-` protection
 * prefix): InterProcessMutex's "lock-", InterProcessReadWriteLock's "__READ__" / "__WRIT__".
 */
type ContenderRole = 'mutex' | 'read' | 'write';
const NODE_NAME: Record<ContenderRole, string> = { mutex: 'lock-', read: '__READ__', write: '__WRIT__' };

export function createZooKeeperBackend(
  config: ZooKeeperBackendConfig,
  opts: ZooKeeperBackendOptions = {},
): LockBackend & RunStoreProvider & ReadWriteLockProvider {
  return new ZooKeeperLockBackend(config, opts);
}

class ZooKeeperLockBackend implements LockBackend, RunStoreProvider, ReadWriteLockProvider {
  readonly type = 'zookeeper' as const;
  readonly capabilities = CAPABILITIES;
  readonly id: string;

  private readonly roots: string[];
  private readonly zk: ZkSession;
  private readonly instance = randomId(6);
  private readonly maxChildren: number;
  private readonly maxWaitersShown: number;
  private readonly maxNodes: number;
  /** Our held locks, in acquisition order (a Set keeps insertion order). */
  private readonly held = new Set<ZkLease>();
  private readonly waiters = new Set<Waiter>();
  /** Our nodes whose delete failed with the connection: retried on every reconnect (removeQuietly). */
  private readonly mustDelete = new Set<string>();
  private readonly watcher: TreeWatcher;
  /** Holder nodes this instance force-deleted recently: watch() reports them as `forced`. */
  readonly forcedNodes = new Map<string, number>();
  private closing: Promise<void> | undefined;
  /** The owner and node data of every acquire without `owner` / `labels`: the same bytes each time. */
  private readonly defaultOwner: OwnerInfo;
  private readonly defaultData: Buffer;
  /** lockPath() results by name: a name is validated and resolved once (the roots never change). */
  private readonly paths = new Map<string, string>();

  constructor(config: ZooKeeperBackendConfig, opts: ZooKeeperBackendOptions) {
    this.id = config.id;
    this.roots = config.roots.map((r) => normalizePath(r, 'root'));
    const sessionTimeoutMs = opts.sessionTimeoutMs ?? config.sessionTimeoutMs ?? 10_000;
    this.maxChildren = opts.maxChildren ?? 50_000;
    this.maxWaitersShown = opts.maxWaitersShown ?? 100;
    this.maxNodes = opts.maxNodes ?? 20_000;
    this.zk = new ZkSession(config.connect, { sessionTimeoutMs, opTimeoutMs: opts.opTimeoutMs }, {
      onDisconnected: () => this.sessionSuspended(),
      onConnected: () => {
        for (const node of [...this.mustDelete]) void this.removeQuietly(node);
        for (const w of [...this.waiters]) w.kick();
        this.watcher.rescanAll();
      },
      onExpired: () => this.sessionExpired(),
    });
    this.watcher = new TreeWatcher(this, this.zk, this.roots, this.maxNodes);
    this.defaultOwner = makeOwner(this.instance);
    this.defaultData = nodeData(this.defaultOwner, undefined);
  }

  /**
   * Lock names are ZooKeeper paths: absolute, or relative to the first root. LockInfo.key is absolute.
   * A `lockdeck-runs` segment is refused: that name is reserved for run stores (runs.ts).
   */
  lockPath(name: string): string {
    // Only valid names are cached, so a hit needs no new check (a non-string never hits).
    const known = this.paths.get(name);
    if (known !== undefined) return known;
    validateName(name);
    const path = normalizePath(name.startsWith('/') ? name : `${this.roots[0]}/${name}`, 'lock name');
    if (path.split('/').includes(RUNS_DIR)) throw new InvalidArgumentError(`lock name "${name}": the path segment "${RUNS_DIR}" is reserved for the scheduler's run records`);
    if (this.paths.size >= PATH_CACHE_SIZE) this.paths.delete(this.paths.keys().next().value!);
    this.paths.set(name, path);
    return path;
  }

  /**
   * The scheduler's run records, in persistent nodes beside the first root
   * (`<parent>/lockdeck-runs/<root name>`, see runs.ts), which the inspector never reads as locks.
   */
  runStore(opts: { retain?: number } = {}): RunStore {
    const retain = opts.retain ?? 500;
    if (!Number.isInteger(retain) || retain < 1) throw new InvalidArgumentError(`retain must be a positive integer, got ${String(retain)}`);
    // The scheduler's occurrence locks are `job/<name>/<ISO time>` (lib/scheduler).
    const occurrenceLockPath = (job: string, occurrence: number) => this.lockPath(`job/${job}/${new Date(occurrence).toISOString()}`);
    return new ZooKeeperRunStore(this.zk, runsPathOf(this.roots[0]!), retain, () => this.assertOpen(), occurrenceLockPath);
  }

  // ---- client ---------------------------------------------------------------------------------

  tryAcquire(name: string, opts?: Partial<Omit<AcquireOptions, 'waitMs'>>): Promise<LockHandle | null> {
    return this.tryAs('mutex', name, opts);
  }

  acquire(name: string, opts?: Partial<AcquireOptions>): Promise<LockHandle> {
    return this.acquireAs('mutex', name, opts);
  }

  /**
   * A read/write lock on `name` in the layout of Curator's InterProcessReadWriteLock, so that
   * lockdeck and Curator readers and writers share one queue (see {@link Role}). Not reentrant and
   * no downgrade (Curator allows both within one thread): every acquire is one more contender.
   */
  readWriteLock(name: string): ReadWriteLock {
    this.lockPath(name); // validate now, not at the first acquire
    const side = (role: ContenderRole): NamedLock => ({
      acquire: (opts) => this.acquireAs(role, name, opts),
      tryAcquire: (opts) => this.tryAs(role, name, opts),
    });
    return { name, readLock: side('read'), writeLock: side('write') };
  }

  private tryAs(role: ContenderRole, name: string, opts?: Partial<Omit<AcquireOptions, 'waitMs'>>): Promise<LockHandle | null> {
    // Not an async function (doAcquire's promise is handed on, one frame and hop less per
    // acquire), so argument errors are turned into a rejection here.
    let path: string;
    let o: AcquireOptions;
    try {
      path = this.lockPath(name);
      o = resolveAcquireOptions(opts, 0);
      this.assertOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.doAcquire(role, name, path, o, true);
  }

  private async acquireAs(role: ContenderRole, name: string, opts?: Partial<AcquireOptions>): Promise<LockHandle> {
    const path = this.lockPath(name);
    const o = resolveAcquireOptions(opts);
    this.assertOpen();
    if (o.signal?.aborted) throw abortError(o.signal);
    return this.doAcquire(role, name, path, o, false) as Promise<ManagedHandle>;
  }

  /** Queues our contender and waits for its turn; `orNull`: resolves null instead of an AcquireTimeoutError (tryAcquire). */
  private async doAcquire(role: ContenderRole, name: string, path: string, o: AcquireOptions, orNull: boolean): Promise<ManagedHandle | null> {
    let owner = this.defaultOwner;
    let data = this.defaultData;
    const labels = o.labels && Object.keys(o.labels).length ? o.labels : undefined;
    if (o.owner !== undefined || labels) {
      owner = makeOwner(this.instance, o.owner);
      data = nodeData(owner, labels);
    }
    const deadline = o.waitMs === Infinity ? Infinity : performance.now() + o.waitMs;
    const prefix = `_c_${randomUUID()}-${NODE_NAME[role]}`;
    // The first look is sent right behind the create, without waiting for its answer: ZooKeeper
    // runs a session's requests in the order they were sent ("FIFO client order"; a read after a
    // write of the same session waits in its CommitProcessor until the write is applied), so the
    // listing already holds our node. One round trip where Curator and kazoo spend two (create,
    // then getChildren); the same requests reach the server. Should the listing not show our node
    // after all, the turn reads 'gone' and waitTurn looks again, so correctness never rests on it.
    const sent = performance.now();
    const creating = this.zk.create(`${path}/${prefix}`, data, CreateMode.EPHEMERAL_SEQUENTIAL);
    let listing: Promise<string[] | null> = this.zk.childNames(path).then(
      (c) => c,
      () => null, // waitTurn looks again, and reports what still fails
    );
    let node: string;
    try {
      node = await creating;
    } catch (err) {
      node = await this.createAfter(err, path, prefix, data);
      // The pipelined listing went out before the node existed (or failed with the create).
      listing = this.zk.childNames(path).then(
        (c) => c,
        () => null,
      );
    }
    let leaseStart: number;
    try {
      // The first look without the waiting machinery (promise, listeners, watch closures): most
      // acquisitions find nobody ahead. Anything unusual (an error, a blocker) goes to waitTurn.
      const children = await listing;
      if (children) {
        const mine = node.slice(path.length + 1);
        // Alone under the parent (the usual uncontended case): our turn, without parsing names.
        const turn = children.length === 1 && children[0] === mine ? NOBODY_AHEAD : turnOf(role, mutexContenders(children), mine);
        if (turn !== 'gone' && !turn.blocker) return this.track(name, owner, node, o, sent);
        if (turn !== 'gone' && o.waitMs === 0) throw new AcquireTimeoutError(name, 0);
      }
      leaseStart = await this.waitTurn(role, name, path, node, deadline, o);
    } catch (err) {
      await this.removeQuietly(node);
      if (orNull && err instanceof AcquireTimeoutError) return null;
      throw err;
    }
    return this.track(name, owner, node, o, leaseStart);
  }

  /**
   * Our contender node, after its first create (doAcquire) failed with `err`: makes the persistent
   * parents on first use (NO_NODE). A create whose answer is lost may still have happened: like
   * Curator's protection mode, we look for our uuid (`prefix`) among the children before trying
   * again (three tries in all).
   */
  private async createAfter(err: unknown, path: string, prefix: string, data: Buffer): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      if (isNoNode(err)) {
        try {
          await this.zk.mkdirp(path);
          return await this.zk.create(`${path}/${prefix}`, data, CreateMode.EPHEMERAL_SEQUENTIAL);
        } catch (e) {
          err = e;
        }
      }
      if (!isConnectionLoss(err) || attempt >= 3) throw unavailable(err, `cannot create a lock node under ${path}`);
      try {
        const children = await this.zk.childNames(path);
        const mine = children.find((c) => c.startsWith(prefix));
        if (mine) return `${path}/${mine}`;
      } catch (e) {
        if (!isConnectionLoss(e) && !isNoNode(e)) throw unavailable(e, `cannot list ${path}`);
      }
      try {
        return await this.zk.create(`${path}/${prefix}`, data, CreateMode.EPHEMERAL_SEQUENTIAL);
      } catch (e) {
        err = e;
      }
    }
  }

  /**
   * Waits for our turn, watching one node only so that a release wakes one waiter:
   * - mutex and writer: our node must be the lowest contender; we watch our predecessor
   *   (Curator StandardLockInternalsDriver.getsTheLock with maxLeases 1);
   * - reader: no writer may be below us; we watch the lowest writer (Curator
   *   InterProcessReadWriteLock.readLockPredicate), so readers behind one writer all wake with it.
   *
   * Resolves with the moment our turn was proven (performance.now()), the start of the holder's
   * local lease: the send time of the listing that showed nobody ahead, or the arrival of the
   * blocker's delete event. Not the start of the wait: a waiter that waited longer than its TTL
   * got a handle whose lease had already run out (found by the torture net-loss cells).
   */
  private waitTurn(role: ContenderRole, name: string, path: string, node: string, deadline: number, o: AcquireOptions): Promise<number> {
    const mine = node.slice(path.length + 1);
    return new Promise<number>((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let running = false;
      let again = false;
      const finish = (err?: unknown, provenAt = performance.now()) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
        this.waiters.delete(waiter);
        if (err === undefined) resolve(provenAt);
        else reject(err);
      };
      const check = async (): Promise<void> => {
        if (settled) return;
        if (running) {
          again = true;
          return;
        }
        running = true;
        try {
          do {
            again = false;
            const sent = performance.now();
            const children = await this.zk.childNames(path);
            if (settled) return;
            const turn = turnOf(role, mutexContenders(children), mine);
            if (turn === 'gone') return finish(new BackendUnavailableError(`our contender node for "${name}" disappeared while waiting (session lost or deleted)`));
            const { blocker, onlyOne } = turn;
            if (!blocker) return finish(undefined, sent);
            if (performance.now() >= deadline) return finish(new AcquireTimeoutError(name, o.waitMs));
            const pred = `${path}/${blocker.name}`;
            // Watch only the blocker (getData, as Curator does): its delete wakes us alone.
            try {
              await this.zk.getData(pred, onBlocker(onlyOne));
            } catch (err) {
              if (isNoNode(err)) again = true; // already gone: look again
              else throw err;
            }
          } while (again && !settled);
        } catch (err) {
          if (isConnectionLoss(err) && !settled) {
            // A request that timed out on a connection that is still up (a slow or lossy link) will
            // get no reconnect to kick us: look again now, or this waiter, once first in line, would
            // hold the lock for nobody until its waitMs ran out (found by the torture net-loss
            // cells: a lock stalled 9.5 s). Otherwise retried when the connection is back
            // (onConnected kicks every waiter).
            if (this.zk.isConnected()) setImmediate(() => void check());
            return;
          }
          finish(unavailable(err, `cannot acquire "${name}"`));
        } finally {
          running = false;
        }
      };
      // When the blocker was the only node in our way, its deletion is our turn: no listing needed.
      // Nothing can have joined ahead of us since that listing (ZooKeeper's sequence numbers only
      // grow, and the listing was read after our create), so the one RTT that Curator and kazoo
      // spend re-listing children after the wake-up is saved on every handoff.
      const onBlocker = (onlyOne: boolean) => (e: { getType(): number }) => {
        if (onlyOne && e.getType() === EventType.NODE_DELETED) finish();
        else void check();
      };
      const onAbort = () => finish(abortError(o.signal!));
      const waiter: Waiter = { kick: () => void check(), cancel: (err) => finish(err) };
      this.waiters.add(waiter);
      o.signal?.addEventListener('abort', onAbort, { once: true });
      // Aborted during the create or the first look (doAcquire): the 'abort' event is gone, and
      // the wait would run to its waitMs (seen as a 10 s hang of the contract's abort test under load).
      if (o.signal?.aborted) return onAbort();
      // waitMs 0: one look (check() times out when we are not first), no timer racing it.
      if (deadline !== Infinity && o.waitMs > 0) {
        timer = setTimeout(() => finish(new AcquireTimeoutError(name, o.waitMs)), Math.max(0, deadline - performance.now()));
      }
      void check();
    });
  }

  private track(name: string, owner: OwnerInfo, node: string, o: AcquireOptions, leaseStart: number): ManagedHandle {
    const lease = new ZkLease(this.zk, name, node);
    const handle = new ZkHandle({
      backend: this.id,
      name,
      fence: fenceOf(node),
      owner,
      ttlMs: o.ttlMs,
      leaseMs: o.ttlMs,
      leaseStart,
      expiresAt: Date.now() + o.ttlMs,
      autoRenew: o.autoRenew ?? true,
      ops: lease,
      onDone: this.onHandleDone,
    }, lease);
    lease.handle = handle;
    this.held.add(lease);
    // Our holder watches its own node: a forced release (delete) reaches it at once. The watch is
    // armed on the next turn of the event loop, not with the acquire: a holder that releases before
    // then (a critical section without I/O) would pay a fourth request on top of Curator's
    // create + getChildren + delete for nothing. One that does I/O has the watch within that turn.
    // (A release in this turn also cancels the immediate: no extra event-loop round for nothing.)
    lease.arming = setImmediate(watchOwnNode, lease);
    return handle;
  }

  /** A handle was released or lost (once per handle; one function for all: no closure per acquire). */
  private readonly onHandleDone = (handle: ManagedHandle): void => {
    const lease = (handle as ZkHandle).lease;
    this.held.delete(lease);
    lease.cancelWatch();
    // Lost by our own account (lease lapsed, connection dropped): give the node up, so that the
    // lock is free once we have stopped believing in it. Queued until the connection is back.
    if (!lease.releasedByUs) void this.removeQuietly(lease.node);
  };

  /** The held handles now, in acquisition order (a copy: marking them lost removes them). */
  private heldHandles(): ManagedHandle[] {
    const out: ManagedHandle[] = [];
    for (const l of this.held) out.push(l.handle);
    return out;
  }

  /**
   * Deletes a node of ours that must go (released, lost or given up), like Curator's guaranteed
   * delete: when the connection is down, it is deleted once the connection is back, for as long
   * as the session lives (an expired session took the node with it). Found by the torture
   * checker: a release lost with a dying ZooKeeper leader left the lock held by nobody.
   */
  private async removeQuietly(node: string): Promise<void> {
    try {
      await this.zk.remove(node);
      this.mustDelete.delete(node);
    } catch (err) {
      if (isNoNode(err) || !isConnectionLoss(err) || this.closing) this.mustDelete.delete(node);
      else this.mustDelete.add(node);
    }
  }

  private sessionSuspended(): void {
    for (const handle of this.heldHandles()) {
      handle.markLost('session-lost', new BackendUnavailableError('connection to ZooKeeper lost: the session may expire'));
    }
  }

  private sessionExpired(): void {
    this.mustDelete.clear(); // the expired session's ephemeral nodes are gone already
    for (const handle of this.heldHandles()) handle.markLost('session-lost', new BackendUnavailableError('ZooKeeper session expired'));
    const err = new BackendUnavailableError('ZooKeeper session expired while waiting: the queued node is gone');
    for (const w of [...this.waiters]) w.cancel(err);
    this.watcher.rescanAll();
  }

  // ---- inspector ------------------------------------------------------------------------------

  async list(filter: ListFilter = {}): Promise<LockInfo[]> {
    this.assertOpen();
    const limit = filter.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isInteger(limit) || limit < 0) throw new InvalidArgumentError(`limit must be a non-negative integer, got ${String(limit)}`);
    const q = filter.q?.toLowerCase();
    const out: LockInfo[] = [];
    let visited = 0;
    // Directories still to read, with their child count when the parent's read told it (then
    // scanDir skips its exists(), one round trip less per directory).
    const queue: { path: string; numChildren?: number }[] = [];
    try {
      for (const root of this.roots) {
        const stat = await this.zk.exists(root);
        if (!stat) continue;
        if (stat.numChildren > this.maxChildren) {
          out.push(this.tooMany(root, stat.numChildren));
          continue;
        }
        queue.push({ path: root, numChildren: stat.numChildren });
      }
      // Breadth-first in waves of LIST_WAVE directories read at once. Each directory costs two or
      // three round trips one after the other; read one at a time, 10,000 lock parents took 7.9 s
      // (ZooKeeper answers a session's pipelined requests in order, so the waves fill the pipe).
      // A wave's results go out in queue order, so the listing is the same as a one-by-one walk.
      // In flight at most LIST_WAVE directories × READ_BATCH node reads, well inside the op
      // timeout at the ~30,000 reads/s one session gets here.
      walk: while (queue.length && out.length < limit) {
        const wave = queue.splice(0, LIST_WAVE);
        // The first directory past the bound: where the warning row goes, after the wave's locks
        // (and only if the limit did not end the walk first), as in a one-by-one walk.
        const stopAt = visited + wave.length > this.maxNodes ? wave[this.maxNodes - visited]!.path : null;
        if (stopAt !== null) wave.length = this.maxNodes - visited;
        visited += wave.length;
        const read = await Promise.all(wave.map((d) => this.scanDir(d.path, undefined, d.numChildren)));
        for (const r of read) {
          if (!r) continue;
          for (const s of r.locks) if (!q || s.info.key.toLowerCase().includes(q)) out.push(s.info);
          for (const sub of r.subdirs) {
            if (sub.numChildren === 0) continue;
            if (sub.numChildren > this.maxChildren) out.push(this.tooMany(sub.path, sub.numChildren));
            else queue.push(sub);
          }
          if (out.length >= limit) break walk;
        }
        if (stopAt !== null) {
          out.push(this.warning(stopAt, `not read: list() visited its bound of ${this.maxNodes} nodes`));
          break;
        }
      }
    } catch (err) {
      throw unavailable(err, 'cannot list locks');
    }
    return out.slice(0, limit);
  }

  async get(key: string): Promise<LockInfo | null> {
    const path = this.lockPath(key);
    this.assertOpen();
    try {
      return (await this.read(path))?.info ?? null;
    } catch (err) {
      throw unavailable(err, `cannot read "${key}"`);
    }
  }

  /** The lock at `path`: a lock parent, a kazoo semaphore, or a plain ephemeral node. */
  private async read(path: string): Promise<Scanned | null> {
    const r = await this.scanDir(path);
    if (r) {
      const found = r.locks.find((s) => s.info.key === path);
      if (found) return found;
      if (r.tooMany) return null;
    }
    // A plain ephemeral lock is a child of its directory.
    const parent = path.slice(0, path.lastIndexOf('/')) || '/';
    let got;
    try {
      got = await this.zk.getData(path);
    } catch (err) {
      if (isNoNode(err)) return null;
      throw err;
    }
    if (got.stat.session === null || parent === path) return null;
    return this.plainLock(path, got.data, got.stat);
  }

  /**
   * Reads one directory: the lock it is the parent of (if any), the kazoo semaphore it is (if any),
   * its plain ephemeral lock children, and its persistent children to descend into. Reads the whole
   * name list once (no paging exists) and the data of at most `maxWaitersShown` + holders nodes.
   */
  async scanDir(
    dir: string,
    watcher?: (e: unknown) => void,
    knownChildren?: number,
  ): Promise<{ locks: Scanned[]; subdirs: { path: string; numChildren: number }[]; tooMany?: boolean } | null> {
    let listing;
    try {
      // The child count guards against a reply over jute.maxbuffer; a caller that has the node's
      // stat already (list(): from the parent's read) passes it instead.
      const stat = watcher || knownChildren !== undefined ? null : await this.zk.exists(dir);
      if (!watcher && knownChildren === undefined && !stat) return null;
      if (stat && stat.numChildren > this.maxChildren) return { locks: [{ info: this.tooMany(dir, stat.numChildren), nodes: [] }], subdirs: [], tooMany: true };
      listing = await this.zk.getChildren(dir, watcher);
    } catch (err) {
      if (isNoNode(err)) return null;
      throw err;
    }
    if (listing.children.length > this.maxChildren) return { locks: [{ info: this.tooMany(dir, listing.children.length), nodes: [] }], subdirs: [], tooMany: true };
    // Run stores (runs.ts) are never locks: not read, not descended into, not watched.
    const { contenders: all, others } = contendersOf(listing.children.filter((c) => c !== RUNS_DIR));
    // Curator semaphore leases are shown at the semaphore's own path (the parent of `leases/`),
    // and the acquirers' queue in its `locks/` as that semaphore's waiters: see curatorSemaphore().
    const contenders = all.filter((c) => c.family !== 'curator-semaphore');
    const locks: Scanned[] = [];
    const childPath = (c: string) => (dir === '/' ? `/${c}` : `${dir}/${c}`);
    const read = await batched(others.slice(0, this.maxNodes), (c) => this.getDataOrNull(childPath(c)));
    const lease = others.includes(KAZOO_LEASE_NODE) ? read[others.indexOf(KAZOO_LEASE_NODE)] : null;
    const kazooLease = lease && lease.stat.session === null ? parseKazooLease(lease.data) : null;
    if (kazooLease) {
      // The kazoo Lock contenders beside it only guard the lease's rewrite: the lease is the lock.
      locks.push(this.kazooLease(dir, kazooLease, lease!.stat));
    } else if (contenders.length && !(await this.isSemaphoreQueue(dir))) {
      const s = await this.lockParent(dir, contenders);
      if (s) locks.push(s);
    }
    const subdirs: { path: string; numChildren: number }[] = [];
    const semaphoreLeases: { path: string; data: Buffer; stat: NodeStat }[] = [];
    let curatorSemaphore = false;
    others.slice(0, this.maxNodes).forEach((c, i) => {
      const got = read[i];
      if (!got) return;
      const path = childPath(c);
      if (kazooLease && c === KAZOO_LEASE_NODE) return;
      if (got.stat.session === null) {
        subdirs.push({ path, numChildren: got.stat.numChildren });
        if (c === CURATOR_SEMAPHORE_LEASES && got.stat.numChildren > 0) curatorSemaphore = true;
      } else if (KAZOO_SEMAPHORE_LEASE.test(c)) semaphoreLeases.push({ path, ...got });
      else locks.push(this.plainLock(path, got.data, got.stat));
    });
    if (semaphoreLeases.length) locks.push(await this.kazooSemaphore(dir, semaphoreLeases));
    if (curatorSemaphore) {
      const s = await this.curatorSemaphore(dir);
      if (s) locks.push(s);
    }
    return { locks, subdirs };
  }

  /** `<path>/locks` of a Curator semaphore (it has a `leases` sibling): its queue, not a lock. */
  private async isSemaphoreQueue(dir: string): Promise<boolean> {
    if (!dir.endsWith(`/${CURATOR_SEMAPHORE_LOCKS}`)) return false;
    return (await this.zk.exists(`${dir.slice(0, -CURATOR_SEMAPHORE_LOCKS.length)}${CURATOR_SEMAPHORE_LEASES}`)) !== null;
  }

  /**
   * A Curator InterProcessSemaphoreV2 at `dir`: every `-lease-` node in `leases/` holds (maxLeases
   * is not stored in ZooKeeper), and the contenders queued in `locks/` after its first wait. The
   * first one in `locks/` is the acquirer that already made its lease node and is checking the
   * count, so it shows among the holders.
   */
  private async curatorSemaphore(dir: string): Promise<Scanned | null> {
    const leasesDir = `${dir}/${CURATOR_SEMAPHORE_LEASES}`;
    const locksDir = `${dir}/${CURATOR_SEMAPHORE_LOCKS}`;
    const [leases, queue] = await Promise.all([
      this.zk.getChildren(leasesDir).catch((err: unknown) => (isNoNode(err) ? null : Promise.reject(err))),
      this.zk.getChildren(locksDir).catch((err: unknown) => (isNoNode(err) ? null : Promise.reject(err))),
    ]);
    if (!leases) return null;
    const held = contendersOf(leases.children).contenders.filter((c) => c.family === 'curator-semaphore');
    if (!held.length) return null;
    const queued = queue ? mutexContenders(queue.children).slice(1) : [];
    const shownHeld = held.slice(0, this.maxWaitersShown);
    const shownQueued = queued.slice(0, this.maxWaitersShown);
    const [hd, qd] = await Promise.all([
      batched(shownHeld, (c) => this.getDataOrNull(`${leasesDir}/${c.name}`)),
      batched(shownQueued, (c) => this.getDataOrNull(`${locksDir}/${c.name}`)),
    ]);
    const holders = shownHeld.flatMap((c, i) => (hd[i] ? [{ c, got: hd[i]!, d: describeNode(hd[i]!.data, hd[i]!.stat) }] : []));
    if (!holders.length) return null;
    const first = holders[0]!;
    const info: LockInfo = {
      backend: this.id,
      key: dir,
      format: 'curator-semaphore',
      kind: 'semaphore',
      owner: first.d.owner,
      holders: holders.map((h) => ({ owner: h.d.owner, fence: String(h.c.seq), acquiredAt: h.d.ctime })),
      fence: String(first.c.seq),
      acquiredAt: first.d.ctime,
      expiresAt: null,
      ttlMs: null,
      waiters: shownQueued.flatMap((c, i) => {
        const got = qd[i];
        if (!got) return [];
        const d = describeNode(got.data, got.stat);
        return [{ owner: d.owner, since: d.ctime }];
      }),
      health: first.d.session === null ? 'orphaned' : 'ok',
      meta: {
        maxLeases: 'unknown (not stored in ZooKeeper)',
        leases: held.length,
        leasesDir,
        queue: `${locksDir} (InterProcessMutex of the acquirers)`,
        fenceIs: 'the sequence of each lease node',
        session: first.d.session ? `0x${first.d.session}` : null,
      },
    };
    if (held.length > shownHeld.length) info.meta!.leasesShown = shownHeld.length;
    if (queued.length > shownQueued.length) info.meta!.waitersTotal = queued.length;
    return {
      info,
      nodes: holders.map((h) => ({ path: `${leasesDir}/${h.c.name}`, version: h.got.stat.version, fence: String(h.c.seq), owner: h.d.owner, ctime: h.d.ctime })),
    };
  }

  /** kazoo NonBlockingLease at `dir` (see parseKazooLease): expiry by the writer's clock. */
  private kazooLease(dir: string, lease: { holder: string; end: number }, stat: NodeStat): Scanned {
    const now = Date.now();
    const path = `${dir}/${KAZOO_LEASE_NODE}`;
    const info: LockInfo = {
      backend: this.id,
      key: dir,
      format: 'kazoo-lease',
      kind: 'mutex',
      owner: lease.holder,
      holders: [{ owner: lease.holder, fence: stat.czxid, acquiredAt: stat.ctime }],
      fence: stat.czxid,
      acquiredAt: stat.ctime,
      expiresAt: lease.end,
      ttlMs: lease.end - now,
      waiters: [],
      health: lockHealth({ now, expiresAt: lease.end, ttlMs: lease.end - stat.ctime }),
      meta: {
        node: path,
        expiresAtIs: "the lease's `end`, written from the holder's clock (naive UTC, whole seconds)",
        fenceIs: 'czxid of lease_holder (rewritten on every renewal)',
        sessionBound: false,
      },
    };
    return { info, nodes: [{ path, version: stat.version, fence: stat.czxid, owner: lease.holder, ctime: stat.ctime }] };
  }

  private async getDataOrNull(path: string): Promise<{ data: Buffer; stat: NodeStat } | null> {
    try {
      return await this.zk.getData(path);
    } catch (err) {
      if (isNoNode(err)) return null;
      throw err;
    }
  }

  /** The LockInfo of a lock parent from its sorted contenders. */
  private async lockParent(path: string, contenders: Contender[]): Promise<Scanned | null> {
    for (let pass = 0; pass < 3; pass++) {
      const { holders, waiters } = arrange(contenders);
      if (!holders.length) return null;
      const shown = [...holders.slice(0, this.maxWaitersShown), ...waiters.slice(0, this.maxWaitersShown)];
      const read = await batched(shown, (c) => this.getDataOrNull(`${path}/${c.name}`));
      const gone = new Set(shown.filter((_, i) => !read[i]).map((c) => c.name));
      if (gone.size) {
        // Someone left between the listing and the reads: arrange what is left.
        contenders = contenders.filter((c) => !gone.has(c.name));
        if (pass < 2) continue;
      }
      const byName = new Map(shown.map((c, i) => [c.name, read[i]!] as const));
      const h = holders.filter((c) => byName.get(c.name));
      if (!h.length) return null;
      const w = waiters.filter((c) => byName.get(c.name));
      const describe = (c: Contender) => describeNode(byName.get(c.name)!.data, byName.get(c.name)!.stat);
      const hd = h.map(describe);
      const first = hd[0]!;
      const family = h[0]!.family;
      const rw = contenders.some((c) => c.role === 'read') || family === 'curator-rwlock';
      const kind: LockKind = family === 'curator-semaphore' ? 'semaphore' : h[0]!.role === 'read' ? 'read' : rw ? 'write' : 'mutex';
      const format = first.ours ? 'lockdeck' : family === 'kazoo-lock' && rw ? 'kazoo-rwlock' : family;
      const holdersInfo: HolderInfo[] = h.map((c, i) => ({ owner: hd[i]!.owner, fence: String(c.seq), acquiredAt: hd[i]!.ctime }));
      const waitersInfo: WaiterInfo[] = w.map((c) => {
        const d = describe(c);
        return { owner: d.owner, since: d.ctime };
      });
      const meta: Record<string, string | number | boolean | null> = {
        node: h[0]!.name,
        session: first.session ? `0x${first.session}` : null,
        czxid: first.czxid,
        contenders: contenders.length,
        sessionBound: first.session !== null,
        acquiredAtIs: 'the holder node ctime (when it queued; ZooKeeper does not record when it took over)',
      };
      if (waiters.length > w.length) meta.waitersShown = w.length;
      if (waiters.length > this.maxWaitersShown) meta.waitersTotal = waiters.length;
      if (family === 'curator-semaphore') {
        meta.maxLeases = 'unknown (not stored in ZooKeeper)';
        meta.semaphore = path.slice(0, path.lastIndexOf('/')) || '/';
      }
      const info: LockInfo = {
        backend: this.id,
        key: path,
        format,
        kind,
        owner: first.owner,
        holders: holdersInfo,
        fence: String(h[0]!.seq),
        acquiredAt: first.ctime,
        expiresAt: null,
        ttlMs: null,
        waiters: waitersInfo,
        health: first.session === null ? 'orphaned' : 'ok',
        meta,
      };
      if (first.labels) info.labels = first.labels;
      const nodes = h.map((c, i) => ({
        path: `${path}/${c.name}`,
        version: byName.get(c.name)!.stat.version,
        fence: String(c.seq),
        owner: hd[i]!.owner,
        ctime: hd[i]!.ctime,
      }));
      return { info, nodes };
    }
    return null;
  }

  private plainLock(path: string, data: Buffer, stat: NodeStat): Scanned {
    const d = describeNode(data, stat);
    const info: LockInfo = {
      backend: this.id,
      key: path,
      format: 'ephemeral',
      kind: 'mutex',
      owner: d.owner,
      holders: [{ owner: d.owner, fence: stat.czxid, acquiredAt: stat.ctime }],
      fence: stat.czxid,
      acquiredAt: stat.ctime,
      expiresAt: null,
      ttlMs: null,
      waiters: [],
      health: 'ok',
      meta: {
        session: d.session ? `0x${d.session}` : null,
        fenceIs: 'czxid (the node name is reused: a delete cannot be conditioned on it, only read-checked just before)',
        sessionBound: true,
      },
    };
    return { info, nodes: [{ path, version: stat.version, fence: stat.czxid, owner: d.owner, ctime: stat.ctime }] };
  }

  private async kazooSemaphore(dir: string, leases: { path: string; data: Buffer; stat: NodeStat }[]): Promise<Scanned> {
    leases.sort((a, b) => a.stat.ctime - b.stat.ctime || a.stat.czxid.localeCompare(b.stat.czxid));
    const max = await this.getDataOrNull(dir);
    const described = leases.map((l) => describeNode(l.data, l.stat));
    const first = described[0]!;
    const info: LockInfo = {
      backend: this.id,
      key: dir,
      format: 'kazoo-semaphore',
      kind: 'semaphore',
      owner: first.owner,
      holders: leases.map((l, i) => ({ owner: described[i]!.owner, fence: l.stat.czxid, acquiredAt: l.stat.ctime })),
      fence: leases[0]!.stat.czxid,
      acquiredAt: first.ctime,
      expiresAt: null,
      ttlMs: null,
      waiters: [],
      health: 'ok',
      meta: {
        maxLeases: max ? dataText(max.data) : null,
        queue: `${dir}-__lock__ (kazoo Lock of the acquirers)`,
        fenceIs: 'czxid of each lease node',
      },
    };
    return {
      info,
      nodes: leases.map((l, i) => ({ path: l.path, version: l.stat.version, fence: l.stat.czxid, owner: described[i]!.owner, ctime: l.stat.ctime })),
    };
  }

  private warning(key: string, text: string): LockInfo {
    return {
      backend: this.id,
      key,
      format: 'unknown',
      kind: 'mutex',
      owner: null,
      holders: [],
      fence: null,
      acquiredAt: null,
      expiresAt: null,
      ttlMs: null,
      waiters: [],
      health: 'unknown',
      meta: { warning: text },
    };
  }

  private tooMany(key: string, n: number): LockInfo {
    return this.warning(
      key,
      `${n} children: over the bound of ${this.maxChildren}, not read (getChildren has no paging; one oversized reply can break clients and load the server)`,
    );
  }

  async forceRelease(key: string, expect: ForceReleaseExpectation = {}): Promise<ForceReleaseResult> {
    const path = this.lockPath(key);
    this.assertOpen();
    try {
      const s = await this.read(path);
      if (!s || !s.nodes.length) return { status: 'not-found' };
      const target = expect.fence !== undefined ? s.nodes.find((n) => n.fence === expect.fence) : s.nodes[0];
      if (!target || (expect.owner !== undefined && target.owner !== expect.owner)) {
        return { status: 'changed', lock: s.info };
      }
      try {
        // The exact node the operator saw, at the version read: never the parent, so the next
        // waiter wakes by its own watch on this node.
        await this.zk.remove(target.path, target.version);
      } catch (err) {
        if (isNoNode(err) || isBadVersion(err)) {
          const now = await this.read(path);
          return now ? { status: 'changed', lock: now.info } : { status: 'not-found' };
        }
        throw err;
      }
      this.forcedNodes.set(target.path, Date.now());
      if (this.forcedNodes.size > 1000) this.forcedNodes.delete(this.forcedNodes.keys().next().value!);
      const lock: LockInfo = { ...s.info, meta: { ...s.info.meta, forcedNode: target.path, notice: FORCE_NOTE } };
      return { status: 'released', lock };
    } catch (err) {
      throw unavailable(err, `cannot release "${key}"`);
    }
  }

  watch(onChange: (change: LockChange) => void): Unsubscribe {
    this.assertOpen();
    return this.watcher.subscribe(onChange);
  }

  async ping(): Promise<number> {
    this.assertOpen();
    const t0 = performance.now();
    try {
      await this.zk.exists('/');
    } catch (err) {
      throw unavailable(err, 'ping failed');
    }
    return performance.now() - t0;
  }

  // ---- lifecycle ------------------------------------------------------------------------------

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    const closedErr = new BackendUnavailableError(`backend "${this.id}" is closed`);
    for (const w of [...this.waiters]) w.cancel(closedErr);
    this.watcher.stop();
    await Promise.allSettled(this.heldHandles().map((handle) => handle.release()));
    for (const handle of this.heldHandles()) handle.markLost('closed');
    // Let the queued deletes of waiters that just gave up go out before the session closes.
    await new Promise((r) => setTimeout(r, 0));
    this.zk.close();
  }

  isClosed(): boolean {
    return this.closing !== undefined;
  }

  private assertOpen(): void {
    if (this.closing) throw new BackendUnavailableError(`backend "${this.id}" is closed`);
  }
}

/**
 * The store side of one held lock: the handle's LeaseOps, and the node. Methods on one object,
 * not closures made per acquire: an uncontended acquire+release is three round trips of a few
 * hundred µs, and the client work around them counts.
 */
class ZkLease implements LeaseOps {
  handle!: ManagedHandle;
  /** Our own release is deleting the node: onDone must not delete it again. */
  releasedByUs = false;
  /** The pending setImmediate that arms the watch on our node (track). */
  arming: NodeJS.Immediate | undefined;
  /** A watch on our node is set and has not fired: its deletion would reach us (extend). */
  watchArmed = false;

  constructor(
    private readonly zk: ZkSession,
    readonly name: string,
    readonly node: string,
  ) {}

  /**
   * Session-bound: nothing to extend in the store. The renewal proves the node is still ours: by
   * the watch on it while that is armed (its deletion would have been pushed, and a connection
   * loss marks the handle lost at once), else by an exists(). So renewals cost no request per
   * lock (P8; bench zookeeper renewal rows); the session's pings keep it alive.
   */
  async extend(ttlMs: number): Promise<number | null> {
    resolveAcquireOptions({ ttlMs });
    if (!this.zk.isConnected()) return null;
    if (this.watchArmed) return Date.now() + ttlMs;
    try {
      return (await this.zk.exists(this.node)) ? Date.now() + ttlMs : null;
    } catch (err) {
      throw unavailable(err, `cannot check "${this.name}"`);
    }
  }

  release(): Promise<void> {
    this.releasedByUs = true;
    this.cancelWatch();
    return this.zk.remove(this.node).then(undefined, (err: unknown) => {
      if (isNoNode(err)) return;
      // Lost with the connection (a leader that died): the session may well survive, and
      // with it our node, held by nobody. Delete it once the connection is back (onDone).
      this.releasedByUs = false;
      throw unavailable(err, `cannot release "${this.name}"`);
    });
  }

  cancelWatch(): void {
    if (this.arming === undefined) return;
    clearImmediate(this.arming);
    this.arming = undefined;
  }

  /** Watches our node while held: its deletion by someone else is a forced release. */
  watch(): void {
    this.arming = undefined;
    const handle = this.handle;
    if (!handle.held) return;
    const arm = () =>
      this.zk.exists(this.node, onNode).then(
        (stat) => {
          if (!stat && handle.held && this.zk.isConnected()) handle.markLost('forced');
          else if (stat) this.watchArmed = true;
        },
        () => undefined,
      );
    const onNode = (e: { getType(): number }) => {
      this.watchArmed = false;
      if (!handle.held) return;
      if (e.getType() === EventType.NODE_DELETED) handle.markLost('forced');
      else void arm();
    };
    void arm();
  }
}

/** Our handle: a ManagedHandle that knows its lease, so that onDone needs no lookup. */
class ZkHandle extends ManagedHandle {
  constructor(
    init: ManagedHandleInit,
    readonly lease: ZkLease,
  ) {
    super(init);
  }
}

function watchOwnNode(lease: ZkLease): void {
  lease.watch();
}

/** lockPath() results kept per backend (names beyond it are resolved again: the oldest go first). */
const PATH_CACHE_SIZE = 4096;

/** turnOf() when our node is the only contender. */
const NOBODY_AHEAD: { blocker: Contender | null; onlyOne: boolean } = Object.freeze({ blocker: null, onlyOne: false });

/** The JSON a lockdeck contender node holds (layout.ts LockdeckNodeData; read by the console and `describeNode`). */
function nodeData(owner: OwnerInfo, labels: Record<string, string> | undefined): Buffer {
  const data: LockdeckNodeData = { lockdeck: 1, owner: owner.id, host: owner.host, pid: owner.pid, instance: owner.instance };
  if (labels) data.labels = labels;
  return Buffer.from(JSON.stringify(data));
}

/**
 * watch(): one-shot child watches on the roots and every persistent node under them (lock parents
 * included, even empty ones), re-armed by the re-read that each notification triggers: the re-read
 * (getChildren with a new watch) returns the state after the change, so nothing between the event
 * and the re-arm is missed. Changes are found by diffing each directory's locks with the last read.
 * A directory's reads never overlap (a notification during a read schedules one more read); a
 * failed read is retried once a second, never in a loop.
 */
class TreeWatcher {
  private subscribers = new Set<(c: LockChange) => void>();
  private dirs = new Map<string, DirState>();
  private snapshot = new Map<string, { dir: string; scanned: Scanned; holderPath: string; acquiredEst: number }>();
  private generation = 0;

  constructor(
    private readonly backend: ZooKeeperLockBackend,
    private readonly zk: ZkSession,
    private readonly roots: string[],
    private readonly maxDirs: number,
  ) {}

  subscribe(fn: (c: LockChange) => void): Unsubscribe {
    this.subscribers.add(fn);
    if (this.subscribers.size === 1) {
      this.generation++;
      for (const r of this.roots) this.queue(r, true);
    }
    return () => {
      this.subscribers.delete(fn);
      if (this.subscribers.size === 0) this.stop();
    };
  }

  stop(): void {
    this.subscribers.clear();
    this.generation++; // pending one-shot watches fire once more and are ignored
    for (const d of this.dirs.values()) clearTimeout(d.retry);
    this.dirs.clear();
    this.snapshot.clear();
  }

  rescanAll(): void {
    if (!this.subscribers.size) return;
    for (const d of this.dirs.keys()) this.queue(d, false);
  }

  private queue(dir: string, silentFirst: boolean): void {
    if (!this.subscribers.size || this.backend.isClosed()) return;
    let d = this.dirs.get(dir);
    if (!d) {
      if (this.dirs.size >= this.maxDirs) return; // bound: see ZooKeeperBackendOptions.maxNodes
      const gen = this.generation;
      d = { first: true, silentFirst, running: false, dirty: false, retry: undefined, watch: () => gen === this.generation && this.queue(dir, false) };
      this.dirs.set(dir, d);
    }
    if (d.running) {
      d.dirty = true;
      return;
    }
    void this.scan(dir, d);
  }

  private async scan(dir: string, d: DirState): Promise<void> {
    d.running = true;
    const gen = this.generation;
    try {
      const r = await this.backend.scanDir(dir, d.watch);
      if (gen !== this.generation) return;
      const silent = d.first && d.silentFirst;
      d.first = false;
      if (!r) {
        if (this.roots.includes(dir)) {
          const stat = await this.zk.exists(dir, d.watch); // wait for the root to be created
          if (stat) d.dirty = true;
        } else this.dirs.delete(dir);
        this.diff(dir, [], silent);
        return;
      }
      // Warning entries (a parent over the children bound) are for list(), not events.
      this.diff(dir, r.locks.filter((s) => s.info.format !== 'unknown'), silent);
      // A Curator semaphore's lock is read at its own path from leases/ and locks/ (scanDir).
      const base = dir.slice(dir.lastIndexOf('/') + 1);
      if (!silent && (base === CURATOR_SEMAPHORE_LEASES || base === CURATOR_SEMAPHORE_LOCKS)) {
        const parent = dir.slice(0, dir.lastIndexOf('/')) || '/';
        if (this.dirs.has(parent)) this.queue(parent, false);
      }
      for (const sub of r.subdirs) if (!this.dirs.has(sub.path)) this.queue(sub.path, silent);
    } catch {
      if (gen !== this.generation) return;
      clearTimeout(d.retry);
      d.retry = setTimeout(() => this.queue(dir, false), 1000);
      d.retry.unref?.();
    } finally {
      d.running = false;
      if (d.dirty && gen === this.generation) {
        d.dirty = false;
        this.queue(dir, false);
      }
    }
  }

  private diff(dir: string, locks: Scanned[], silent: boolean): void {
    const now = Date.now();
    const current = new Map(locks.map((s) => [s.info.key, s] as const));
    const keys = new Set<string>(current.keys());
    for (const [k, v] of this.snapshot) if (v.dir === dir) keys.add(k);
    for (const key of keys) {
      const prev = this.snapshot.get(key);
      const cur = current.get(key);
      const holderPath = cur?.nodes[0]?.path ?? '';
      if (prev && (!cur || prev.holderPath !== holderPath)) {
        const forced = this.backend.forcedNodes.has(prev.holderPath);
        if (!silent) this.emit({ type: forced ? 'forced' : 'released', backend: this.backend.id, key, lock: prev.scanned.info, at: now, heldMs: Math.max(0, now - prev.acquiredEst) });
      }
      if (!cur) {
        this.snapshot.delete(key);
        continue;
      }
      const ctime = cur.nodes[0]?.ctime ?? now;
      if (!prev || prev.holderPath !== holderPath) {
        // A holder that took over from another one got the lock about now; a first holder when it
        // queued (its ctime). Approximate: ZooKeeper records neither.
        const acquiredEst = prev ? Math.max(ctime, now) : Math.min(ctime, now);
        this.snapshot.set(key, { dir, scanned: cur, holderPath, acquiredEst });
        if (!silent) this.emit({ type: 'acquired', backend: this.backend.id, key, lock: cur.info, at: now, waitedMs: Math.max(0, acquiredEst - ctime) });
      } else {
        const changed = JSON.stringify(prev.scanned.info.waiters) !== JSON.stringify(cur.info.waiters) || prev.scanned.info.holders.length !== cur.info.holders.length;
        this.snapshot.set(key, { ...prev, scanned: cur });
        if (changed && !silent) this.emit({ type: 'changed', backend: this.backend.id, key, lock: cur.info, at: now });
      }
    }
  }

  private emit(c: LockChange): void {
    for (const s of [...this.subscribers]) {
      try {
        s(c);
      } catch {
        // One failing subscriber must not starve the others.
      }
    }
  }
}

interface DirState {
  first: boolean;
  silentFirst: boolean;
  running: boolean;
  dirty: boolean;
  retry: NodeJS.Timeout | undefined;
  watch: () => void;
}

function describeNode(data: Buffer, stat: NodeStat) {
  const ours = parseLockdeckData(data);
  const text = ours ? ours.owner : dataText(data);
  const owner = ours ? ours.owner : text && stat.session ? `${text} (session 0x${stat.session})` : text ?? (stat.session ? `session 0x${stat.session}` : null);
  return { ours: ours !== null, owner, session: stat.session, ctime: stat.ctime, czxid: stat.czxid, labels: ours?.labels };
}

/**
 * Whose deletion our contender `mine` waits for: for a mutex or a writer its predecessor, for a
 * reader the first writer below it (null: our turn); `onlyOne` when that blocker is the only
 * node in our way. 'gone': our node is not among the contenders (session lost, or deleted).
 */
function turnOf(role: ContenderRole, sorted: Contender[], mine: string): { blocker: Contender | null; onlyOne: boolean } | 'gone' {
  const idx = sorted.findIndex((c) => c.name === mine);
  if (idx < 0) return 'gone';
  const ahead = role === 'read' ? sorted.slice(0, idx).filter((c) => c.role === 'write') : sorted.slice(0, idx);
  const blocker = (role === 'read' ? ahead[0] : ahead[ahead.length - 1]) ?? null;
  return { blocker, onlyOne: ahead.length === 1 };
}

/** The fence of a sequential node: its sequence number, as a decimal integer. */
function fenceOf(node: string): string {
  // Our mutex nodes end in `-lock-` and ZooKeeper's ten digits: read those without a regex.
  const n = node.length;
  if (n > 16 && node.endsWith('-lock-', n - 10)) {
    let digits = true;
    for (let i = n - 10; i < n && digits; i++) {
      const ch = node.charCodeAt(i);
      digits = ch >= 0x30 && ch <= 0x39;
    }
    if (digits) return String(Number(node.slice(n - 10)));
  }
  const c = parseContender(node.slice(node.lastIndexOf('/') + 1));
  if (!c) throw new LockError(`not a sequential lock node: ${node}`);
  return String(c.seq);
}

/** Validates a ZooKeeper path (absolute, no empty, "." or ".." segments, no trailing slash). */
function normalizePath(p: string, what: string): string {
  if (!p.startsWith('/')) throw new InvalidArgumentError(`${what} must be an absolute ZooKeeper path, got "${p}"`);
  if (p === '/') return p;
  const segs = p.slice(1).split('/');
  for (const s of segs) {
    if (s === '' || s === '.' || s === '..') throw new InvalidArgumentError(`${what} "${p}" has an empty, "." or ".." segment`);
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f-\u009f\ud800-\uf8ff\ufff0-\uffff]/.test(s)) throw new InvalidArgumentError(`${what} "${p}" has a character ZooKeeper refuses`);
  }
  return p;
}


