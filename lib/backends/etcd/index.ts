/**
 * etcd v3: a mutex wire-compatible with Go's `concurrency.Mutex` (and so with `etcdctl lock` and
 * the server's v3lock service), and an inspector for the etcd lock layouts of layout.ts.
 *
 * The transport is the `etcd3` npm package (KV, Lease, Watch RPCs). Its own `Lock` is a different
 * layout that never waits (node_modules/etcd3/lib/lock.js), so the mutex is ours. Go's recipe
 * (etcd-io/etcd client/v3/concurrency/mutex.go, key.go `waitDeletes`):
 * - each contender puts `<name>/<lease hex>` on its session lease, in one Txn that also reads the
 *   first-created key under `<name>/`; the lowest create revision holds;
 * - a waiter waits for the deletion of the key created just before its own, then looks again;
 * - release deletes the key.
 * Go, etcdctl and lockdeck contenders on one name therefore exclude each other and queue in order.
 *
 * Where we differ from Go, compatibly:
 * - The acquire Txn reads the newest keys under `<name>/` *before* its put (Go reads the first one
 *   after): none means we hold, else the newest direct one is our predecessor, so a waiter needs
 *   no Range before it waits.
 * - Fast handoff: Go opens its watch at the Range's header revision. etcd serves a watch that
 *   starts at or below the current revision as an "unsynced" watcher, caught up by a loop every
 *   100 ms (server/mvcc/watchable_store.go `syncWatchersLoop`), so a release soon after a waiter
 *   starts costs up to 100 ms. We watch the predecessor key (deletes only) from the current
 *   revision, which etcd keeps synced, and when the store has moved since the predecessor was
 *   seen, one Range covers what happened in between. The handoff is the delete event plus one
 *   Range; a release wakes only the next waiter (bench: 2 unary requests per handoff, 1 watch
 *   notification per release, for 2 to 128 waiters). (Option `goStyleWatch` reproduces Go's
 *   way, for the benchmark.)
 * - Contenders are the direct children `<name>/<hex>` only (layout.ts `isDirectContender`): Go
 *   would also count the keys of lock `<name>/x`.
 * - Our keys carry a JSON value (owner, labels, queue time) that Go ignores.
 *
 * Sessions (session.ts): one lease per backend instance and TTL (the acquire ttlMs rounded up to
 * whole seconds, at least the server's minimum), shared by every lock of that TTL and kept alive
 * over one keepalive stream; a handle's renewal is a keepalive of its session (batched). A lock
 * whose handle lapses (not renewed) deletes its key, so a sub-second ttlMs still frees the lock in
 * time; a process that dies loses the lease after the session TTL.
 *
 * Fence: the holder key's create revision (cluster-wide, strictly increasing). The holder watches
 * its key (from 50 ms after it got the lock, so short holds cost no watch): a deletion it did not
 * make fires the handle's signal (`forced`, or `session-lost` when the lease is gone), as does the
 * loss of the session lease. A watch etcd refuses (compacted start revision) or the client resumes
 * after a disconnect is checked with a Range of the key rather than trusted.
 *
 * LockInfo.key: the mutex name (Go's prefix without the `/` it appends); single-key layouts: the
 * key. A lock is listed when its key lies under one of the configured `prefixes` (byte prefixes).
 */
import { ConsecutiveBreaker, circuitBreaker, handleWhen } from 'cockatiel';
import { Etcd3, isRecoverableError, type IKeyValue, type IRangeResponse, type IRequestOp, type ITxnResponse, type Watcher } from 'etcd3';

import { AcquireTimeoutError, BackendUnavailableError, InvalidArgumentError, LockError, abortError } from '../../locks/errors';
import { ManagedHandle } from '../../locks/handle';
import { lockHealth } from '../../locks/health';
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
  OwnerInfo,
  Unsubscribe,
} from '../../locks/types';
import { makeOwner, randomId, resolveAcquireOptions, validateName } from '../../locks/util';
import type { BackendConfig } from '../config';
import {
  contenderKey,
  contenderNameOf,
  isDirectContender,
  leaseHex,
  parseLockdeckValue,
  parsePythonUuid,
  parseShedLock,
  prefixEnd,
  type LockdeckValue,
} from './layout';
import { LeaseKeeper, Session } from './session';

export type EtcdBackendConfig = Extract<BackendConfig, { type: 'etcd' }>;

export interface EtcdBackendOptions {
  /** Bound of one request (default 5000 ms). */
  opTimeoutMs?: number;
  /**
   * Open each wait's watch at the Range's header revision, as Go's `waitDeletes` does, instead of
   * the Txn revision + 1. Only for measuring the difference (bench/etcd.ts); never faster.
   */
  goStyleWatch?: boolean;
  /** Keys one list() reads per prefix at most (default 100000); beyond it a warning entry is shown. */
  maxKeys?: number;
  /** Range page size (default 1000). */
  pageSize?: number;
  /** A session with no lock for this long is revoked (default 60000 ms). */
  sessionIdleMs?: number;
}

/** What `revokeLease` answers: the lock as seen, and every key the revoked lease carried. */
export type RevokeLeaseResult =
  | { status: 'revoked'; lock: LockInfo; lease: string; keys: string[] }
  | { status: 'changed'; lock: LockInfo }
  | { status: 'not-found' };

const CAPABILITIES: Capabilities = Object.freeze({
  fencing: true,
  ttl: true,
  waiters: true,
  fifo: true,
  pushWatch: true,
  notifiesHolderOnForce: true,
  // No `attempt` / `lost` telemetry: publishing it would take a write per event.
  telemetry: false,
});

const DEFAULT_LIST_LIMIT = 1000;
/** Holder-lease lookups (LeaseTimeToLive) in flight at once when describing many locks. */
const LEASE_BATCH = 256;
const HOLDER_WATCH_DELAY_MS = 50;
const FORCE_NOTE =
  'Deleted the holder key only (compare on its create revision). A Go/etcdctl holder is not told unless it checks IsOwner() or watches its key; lockdeck holders watch theirs and stop at once.';

type Kv = Pick<IKeyValue, 'create_revision' | 'mod_revision' | 'lease' | 'value'> & { key: string };

interface Scanned {
  info: LockInfo;
  holderKey: string;
  holderCreate: string;
  holderLease: string;
  /** Our metadata's queue time of the holder, when ours. */
  since: number | null;
}

interface LeaseFacts {
  ttlS: number;
  grantedS: number;
  /** The keys on the lease: asked for only where the layout needs them (see leaseFacts). */
  keys?: string[];
}

interface Held {
  handle: ManagedHandle;
  key: string;
}

interface Waiter {
  cancel(err: unknown): void;
}

export function createEtcdBackend(config: EtcdBackendConfig, opts: EtcdBackendOptions = {}): EtcdLockBackend {
  return new EtcdLockBackend(config, opts);
}

const enc = (s: string) => Buffer.from(s, 'utf8');
/** range_end of every key under `<name>/`: `<name>0` ('0' is the byte after '/'). */
const childrenEnd = (name: string) => Buffer.from(`${name}0`, 'utf8');
const toKv = (kv: IKeyValue): Kv => ({ key: kv.key.toString('utf8'), create_revision: kv.create_revision, mod_revision: kv.mod_revision, lease: kv.lease, value: kv.value });

export class EtcdLockBackend implements LockBackend {
  readonly type = 'etcd' as const;
  readonly capabilities = CAPABILITIES;
  readonly id: string;

  readonly client: Etcd3;
  private readonly prefixes: string[];
  private readonly keeper: LeaseKeeper;
  private readonly opTimeoutMs: number;
  private readonly goStyleWatch: boolean;
  private readonly maxKeys: number;
  private readonly pageSize: number;
  private readonly sessionIdleMs: number;
  private readonly instance = randomId(6);
  private readonly sessions = new Map<number, Session[]>();
  private readonly held = new Set<Held>();
  private readonly waiters = new Set<Waiter>();
  /** Holder keys (key@createRevision) this instance force-deleted recently: watch() says `forced`. */
  readonly forcedKeys = new Map<string, number>();
  private readonly watcher: PrefixWatcher;
  private idleTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;

  constructor(config: EtcdBackendConfig, opts: EtcdBackendOptions) {
    this.id = config.id;
    this.prefixes = config.prefixes;
    this.opTimeoutMs = opts.opTimeoutMs ?? 5000;
    this.goStyleWatch = opts.goStyleWatch ?? false;
    this.maxKeys = opts.maxKeys ?? 100_000;
    this.pageSize = opts.pageSize ?? 1000;
    this.sessionIdleMs = opts.sessionIdleMs ?? 60_000;
    const timeout = this.opTimeoutMs;
    this.client = new Etcd3({
      hosts: config.endpoints,
      // Unary calls are bounded; streams (watch, keepalive) are not.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
      // etcd3's default per-host breaker opens for 5 s after 3 failures: after a server restart
      // every call was refused ~3 s longer than etcd was down (torture etcd × server-kill). Same
      // breaker (cockatiel, as etcd3 itself uses), half-open after at most 1 s.
      faultHandling: {
        host: () => circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: Math.min(timeout, 1000), breaker: new ConsecutiveBreaker(3) }),
      },
    });
    this.keeper = new LeaseKeeper(this.client, this.opTimeoutMs);
    this.watcher = new PrefixWatcher(this);
  }

  // ---- client ---------------------------------------------------------------------------------

  async tryAcquire(name: string, opts?: Partial<Omit<AcquireOptions, 'waitMs'>>): Promise<LockHandle | null> {
    validateName(name);
    const o = resolveAcquireOptions({ ...opts, waitMs: 0 });
    this.assertOpen();
    try {
      return await this.doAcquire(name, o);
    } catch (err) {
      if (err instanceof AcquireTimeoutError) return null;
      throw err;
    }
  }

  async acquire(name: string, opts?: Partial<AcquireOptions>): Promise<LockHandle> {
    validateName(name);
    const o = resolveAcquireOptions(opts);
    this.assertOpen();
    if (o.signal?.aborted) throw abortError(o.signal);
    return this.doAcquire(name, o);
  }

  /**
   * A session of this TTL with no key for `name` yet (Go's layout has one key per session and
   * name), reserving `name` on it; a new one when every session of that TTL has one.
   */
  private async sessionFor(ttlMs: number, name: string): Promise<Session> {
    const ttlS = Math.max(1, Math.ceil(ttlMs / 1000));
    let list = this.sessions.get(ttlS);
    if (!list) this.sessions.set(ttlS, (list = []));
    let s = list.find((x) => !x.dead && !x.names.has(name));
    if (!s) {
      s = new Session(this.client, this.keeper, ttlS);
      const made = s;
      list.push(made);
      made.onLost((err) => this.sessionLost(made, err));
    }
    s.names.add(name);
    try {
      await s.ready;
    } catch (err) {
      s.names.delete(name);
      throw unavailable(err, `cannot start an etcd session (lease of ${ttlS} s)`);
    }
    return s;
  }

  private unreserve(s: Session, name: string): void {
    s.names.delete(name);
    if (!s.names.size) s.idleSince = performance.now();
    this.scheduleIdleSweep();
  }

  private scheduleIdleSweep(): void {
    if (this.idleTimer || this.closing) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      const now = performance.now();
      let pending = false;
      for (const [ttl, list] of this.sessions) {
        const keep = list.filter((s) => {
          if (!s.dead && (s.names.size || now - s.idleSince < this.sessionIdleMs)) return true;
          if (!s.dead) void s.revoke();
          return false;
        });
        if (keep.length) this.sessions.set(ttl, keep);
        else this.sessions.delete(ttl);
        if (keep.some((s) => !s.names.size)) pending = true;
      }
      if (pending) this.scheduleIdleSweep();
    }, this.sessionIdleMs);
    this.idleTimer.unref?.();
  }

  private sessionLost(s: Session, err: Error): void {
    for (const h of [...this.held]) if (h.key.endsWith(`/${s.hex}`)) h.handle.markLost('session-lost', err);
    const list = this.sessions.get(s.ttlS);
    if (list) this.sessions.set(s.ttlS, list.filter((x) => x !== s));
  }

  private async doAcquire(name: string, o: AcquireOptions): Promise<ManagedHandle> {
    const owner = makeOwner(this.instance, o.owner);
    const leaseStart = performance.now();
    const deadline = o.waitMs === Infinity ? Infinity : leaseStart + o.waitMs;
    const session = await this.sessionFor(o.ttlMs, name);
    // "Expires ttlMs after acquisition": a shared session may be up to a third of its TTL into its
    // keepalive period, so top its lease up now (not awaited; batched with any other keepalive).
    if (performance.now() - session.lastAliveAt > session.grantedTtlS * 100) void session.refresh().catch(() => undefined);
    const key = contenderKey(name, session.id);
    let myRev = '';
    let provenAt: string;
    try {
      const value: LockdeckValue = { lockdeck: 1, owner: owner.id, host: owner.host, pid: owner.pid, instance: owner.instance, since: Date.now(), ttlMs: o.ttlMs };
      if (o.labels && Object.keys(o.labels).length) value.labels = o.labels;
      const res = await this.txnAcquire(name, key, session.id, Buffer.from(JSON.stringify(value)));
      // Known predecessor (the newest direct contender created before our put), or null when
      // none was, or undefined when the Txn could not tell (a retried Txn; 16 nested keys).
      let pred: string | null | undefined;
      if (res.succeeded) {
        myRev = res.header.revision;
        const before = res.responses[0]!.response_range;
        const p = before.kvs.find((kv) => isDirectContender(name, kv.key.toString('utf8')));
        pred = p ? p.key.toString('utf8') : before.more ? undefined : null;
      } else {
        myRev = res.responses[0]!.response_range.kvs[0]!.create_revision;
      }
      if (pred === null) provenAt = myRev;
      else {
        if (o.waitMs === 0 && pred !== undefined) throw new AcquireTimeoutError(name, 0);
        provenAt = await this.waitTurn(name, key, myRev, pred === undefined ? null : { pred, rev: res.header.revision }, session, deadline, o);
        // The handle's lease will count from the last keepalive that got through (below). After a
        // wait in which keepalives were late or failed (server or member restart, a busy event
        // loop), more than half of it may be gone: prove the lease alive now, rather than hand
        // out a lock that expires in a few milliseconds.
        if (performance.now() - Math.max(leaseStart, session.lastAliveAt) > o.ttlMs / 2 && !(await session.refresh())) {
          throw new BackendUnavailableError(`lease ${session.hex} ended while waiting for "${name}"`);
        }
      }
    } catch (err) {
      if (myRev) await this.deleteKey(key, myRev).catch(() => undefined);
      // The Txn failed with no answer (timeout, connection lost): it may still have put our key,
      // which would queue (or hold!) for us until the session ends. Only this session writes that
      // key and the name is still reserved on it, so a plain Delete is safe; awaited, so that it
      // cannot land after a later acquire of the name on this session.
      else await this.client.kv.deleteRange({ key: enc(key) }).catch(() => undefined);
      this.unreserve(session, name);
      throw err;
    }
    // The handle's lease counts from the last keepalive of our lease that got through (its send
    // time), not from the start of the call: a wait longer than the TTL would otherwise hand back
    // a lock that has "expired" at birth (lost within milliseconds, its key deleted, the next
    // waiter let in while we are already inside). Sound: etcd keeps the lease, and so our key,
    // for at least its granted TTL (≥ ttlMs) after any keepalive it received.
    return this.track(name, owner, key, myRev, session, o, Math.max(leaseStart, session.lastAliveAt), provenAt);
  }

  /**
   * Go's tryAcquire Txn (put our key if absent) that also reads, *before* the put, the newest keys
   * under `<name>/`: the newest direct one is our predecessor, none means we hold. (Ops in a Txn
   * run in order on one revision, so a Range before the Put does not see it.) Go reads the
   * first-created key after its put instead; both decide the same way, and this one also names
   * the key to wait for, which saves the waiter a Range.
   */
  private async txnAcquire(name: string, key: string, lease: string, value: Buffer): Promise<ITxnResponse> {
    const k = enc(key);
    try {
      return await this.client.kv.txn({
        compare: [{ key: k, target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [
          { request_range: { key: enc(`${name}/`), range_end: childrenEnd(name), sort_order: 'Descend', sort_target: 'Create', keys_only: true, limit: 16 } },
          { request_put: { key: k, value, lease } },
        ],
        // Our key exists: a retried Txn whose first answer was lost (we never share a session
        // between two locks of one name), so it is ours; its create revision is our place.
        failure: [{ request_range: { key: k, keys_only: true } }],
      });
    } catch (err) {
      throw unavailable(err, `cannot acquire "${name}"`);
    }
  }

  /**
   * Waits until no direct contender created before ours is left; resolves to the revision at
   * which a Range proved it (with our key still there).
   *
   * One watch, on the predecessor key only, so a release wakes exactly one waiter (a watch on the
   * whole prefix would send every waiter every deletion). It starts at the store's current
   * revision, so etcd keeps it "synced" (events at once); when its creation shows the store moved
   * past the revision at which the key was seen (the Txn's, or the Range's), one Range covers the
   * gap. When the key is
   * deleted, one Range of the contenders created up to ours, newest first, tells whether we hold
   * now (and that our key still exists) or names the next key to wait for (its holder gave up).
   * Go (`goStyleWatch`) instead Ranges first and watches from the Range's header revision.
   */
  private waitTurn(name: string, key: string, myRev: string, known: { pred: string; rev: string } | null, session: Session, deadline: number, o: AcquireOptions): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let running = false;
      let again = false;
      let watched: string | null = null;
      let watch: DeleteWatch | undefined;
      let watchErrors = 0;
      const finish = (err: unknown, provenAt?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
        offLost();
        this.waiters.delete(waiter);
        watch?.cancel();
        watch = undefined;
        if (err === undefined) resolve(provenAt!);
        else reject(err);
      };
      const follow = (p: string, from: bigint) => {
        watch?.cancel();
        watched = p;
        // From the store's current revision (not `from`): etcd serves a watch that starts below it
        // as "unsynced", its events up to 100 ms late (server/mvcc/watchable_store.go
        // syncWatchersLoop), and under contention the store has nearly always moved on by then.
        // What happened between `from` and the watch's start is read once instead (created).
        // Go's mode keeps its own start revision: it is the baseline.
        watch = new DeleteWatch(this.client, p, this.goStyleWatch ? from : 0n, {
          deleted: () => void check(),
          // Refused or cancelled by etcd (e.g. resumed at a compacted revision): look again and
          // watch afresh, a few times in a row at most.
          error: (err) => {
            watch = undefined;
            watched = null;
            if (++watchErrors > 5) return finish(unavailable(err, `watch on "${p}" failed while waiting`));
            void check();
          },
          // The etcd3 client resumes a watch from the last revision it saw a header for, which
          // can skip events (lib/watch.js updateRevision): look again instead of trusting it.
          reconnected: () => void check(),
          // The store moved past the revision at which the predecessor was seen before the watch
          // started: it may be gone already (under contention it often took the lock and let it
          // go meanwhile). One Range tells; the common case (nothing written since) costs nothing.
          created: (headerRev) => {
            if (headerRev >= from && !this.goStyleWatch) void check();
          },
        });
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
            const { found, pred: p, header } = await this.predecessor(name, key, myRev);
            if (settled) return;
            if (!found) return finish(new BackendUnavailableError(`our contender key for "${name}" is gone (session lost or force-released)`));
            if (p === null) {
              if (this.goStyleWatch) {
                // Go's Lock ends with Get(myKey): a round trip our Range already did.
                const g = await this.client.kv.range({ key: enc(key), keys_only: true });
                if (settled) return;
                if (!g.kvs.length) return finish(new BackendUnavailableError(`our contender key for "${name}" is gone (session lost)`));
              }
              return finish(undefined, header);
            }
            if (performance.now() >= deadline) return finish(new AcquireTimeoutError(name, o.waitMs));
            // key.go waitDeletes watches from the Range's header revision (an "unsynced" start).
            if (this.goStyleWatch) follow(p, BigInt(header));
            else if (p !== watched) follow(p, BigInt(header) + 1n);
          } while (again && !settled);
        } catch (err) {
          finish(unavailable(err, `cannot acquire "${name}"`));
        } finally {
          running = false;
        }
      };
      const onAbort = () => finish(abortError(o.signal!));
      const offLost = session.onLost((err) => finish(err));
      const waiter: Waiter = { cancel: (err) => finish(err) };
      this.waiters.add(waiter);
      o.signal?.addEventListener('abort', onAbort, { once: true });
      // Aborted while our Txn was on its way: the listener above came too late to hear it.
      if (o.signal?.aborted) return onAbort();
      if (deadline !== Infinity) timer = setTimeout(() => finish(new AcquireTimeoutError(name, o.waitMs)), Math.max(0, deadline - performance.now()));
      if (known && !this.goStyleWatch) follow(known.pred, BigInt(known.rev) + 1n);
      else void check();
    });
  }

  /**
   * The direct contender created just before ours (null: none, we hold the lock), and whether our
   * key still exists: one Range of `<name>/` with create revision ≤ ours, newest first, paged.
   */
  private async predecessor(name: string, key: string, myRev: string): Promise<{ found: boolean; pred: string | null; header: string }> {
    const pfx = enc(`${name}/`);
    const end = childrenEnd(name);
    let max = myRev;
    let found = false;
    let header = '';
    for (;;) {
      const r = await this.client.kv.range({
        key: pfx, range_end: end, max_create_revision: max, sort_order: 'Descend', sort_target: 'Create', keys_only: true, limit: 64,
        ...(header ? { revision: header } : {}),
      });
      header ||= r.header.revision;
      for (const kv of r.kvs) {
        const k = kv.key.toString('utf8');
        if (k === key) {
          found = true;
          continue;
        }
        if (!found) return { found: false, pred: null, header };
        if (isDirectContender(name, k)) return { found, pred: k, header };
      }
      if (!r.more || !r.kvs.length) return { found, pred: null, header };
      max = String(BigInt(r.kvs[r.kvs.length - 1]!.create_revision) - 1n);
    }
  }

  /**
   * Deletes our contender key after a failed release or a loss we learned of ourselves, retrying
   * while etcd cannot be reached (a server or member restart): our session's keepalives would
   * otherwise keep the key, and so the lock, alive for as long as this process keeps the session
   * (seen by the torture runner: a release caught by `server-kill` left the lock taken for good).
   * The name stays reserved on the session until the key is gone, so a new acquire of it here
   * takes another session rather than reusing this key (which the delete would then remove).
   */
  private giveUp(key: string, createRev: string, session: Session, name: string): void {
    let retryMs = 100;
    const attempt = (): void => {
      this.deleteKey(key, createRev).then(
        () => this.unreserve(session, name),
        () => {
          // A dead session's lease ends by itself, taking the key with it; close() revokes them.
          if (session.dead || this.closing) return this.unreserve(session, name);
          const t = setTimeout(attempt, retryMs);
          t.unref?.();
          retryMs = Math.min(retryMs * 2, 2000);
        },
      );
    };
    attempt();
  }

  /** Deletes our contender key if it is still the one we created. */
  private async deleteKey(key: string, createRev: string): Promise<void> {
    await this.client.kv.txn({
      compare: [{ key: enc(key), target: 'Create', result: 'Equal', create_revision: createRev }],
      success: [{ request_delete_range: { key: enc(key) } }],
      failure: [],
    });
  }

  /**
   * The handle of a lock we hold since revision `provenAt` (our key, created at `myRev`, was the
   * first direct contender then).
   */
  private track(name: string, owner: OwnerInfo, key: string, myRev: string, session: Session, o: AcquireOptions, leaseStart: number, provenAt: string): ManagedHandle {
    let releasedByUs = false;
    let releaseFailed = false;
    let entry: Held;
    const guard = new HolderGuard(this.client, key, myRev, session);
    const handle = new ManagedHandle({
      backend: this.id,
      name,
      fence: myRev,
      owner,
      ttlMs: o.ttlMs,
      leaseMs: o.ttlMs,
      leaseStart,
      expiresAt: Date.now() + o.ttlMs,
      autoRenew: o.autoRenew ?? true,
      ops: {
        // The session's keepalive is the renewal, shared by every lock on the session: a keepalive
        // sent less than half a lease ago proves the lock as well as a new one would (the lease
        // lives grantedTtl ≥ ttlMs from it), so the handle counts its lease from then and sends
        // nothing. The session beats every grantedTtl/3, so its locks' renewals cost no traffic
        // of their own (P8: ≤ 1 keepalive per session per TTL/3; bench etcd renewal rows).
        extend: async (ttlMs) => {
          resolveAcquireOptions({ ttlMs });
          if (session.dead || guard.gone) return null;
          const age = performance.now() - session.lastAliveAt;
          if (age < ttlMs / 2 && session.lastAliveAt > 0) {
            return { expiresAt: Date.now() - age + ttlMs, provenAt: session.lastAliveAt };
          }
          try {
            return (await session.refresh()) && !guard.gone ? Date.now() + ttlMs : null;
          } catch (err) {
            throw unavailable(err, `cannot renew "${name}"`);
          }
        },
        release: async () => {
          releasedByUs = true;
          guard.stop();
          try {
            // A plain Delete, as Go's Unlock: the key name carries our lease, so only this session
            // can have written it, and it holds no other lock of this name meanwhile.
            await this.client.kv.deleteRange({ key: enc(key) });
          } catch (err) {
            releaseFailed = true;
            throw unavailable(err, `cannot release "${name}"`);
          }
        },
      },
      onDone: () => {
        this.held.delete(entry);
        guard.stop();
        // Lost by our own account (lease lapsed locally), or a release that did not get through:
        // give the key up, so the lock is free as soon as we have stopped believing in it.
        if (!releasedByUs || releaseFailed) this.giveUp(key, myRev, session, name);
        else this.unreserve(session, name);
      },
    });
    entry = { handle, key };
    this.held.add(entry);
    guard.start(handle, provenAt);
    return handle;
  }

  // ---- inspector ------------------------------------------------------------------------------

  /** Every key under `prefix`, paged, all pages at one revision. */
  async readPrefix(prefix: string): Promise<{ kvs: Kv[]; revision: string; truncated: number }> {
    const start = enc(prefix);
    const end = prefixEnd(start);
    const kvs: Kv[] = [];
    let from = start;
    let revision = '';
    let total = 0;
    for (;;) {
      const r: IRangeResponse = await this.client.kv.range({ key: from, range_end: end, limit: this.pageSize, ...(revision ? { revision } : {}) });
      if (!revision) {
        revision = r.header.revision;
        total = Number(r.count);
      }
      for (const kv of r.kvs) kvs.push(toKv(kv));
      if (!r.more || !r.kvs.length || kvs.length >= this.maxKeys) break;
      from = Buffer.concat([r.kvs[r.kvs.length - 1]!.key, Buffer.from([0])]);
    }
    return { kvs, revision, truncated: Math.max(0, total - kvs.length) };
  }

  /**
   * The keys of the first `want` locks under `prefix` (in key order, byte-wise, among the groups
   * `keep` accepts), all read at one revision, without reading the whole prefix when that is safe
   * (perf-reliability-anchors D4: a first page of 100 among 10,000 locks near one Range).
   *
   * Pages are read in key order until more than `want` locks are seen. Key order is not quite lock
   * order: the contenders of lock `a` (`a/<hex>`) sort after `a-b/…` ('-' < '/'), and those of a
   * lock `jobs` after `jobs/a…`. Only a lock whose name is the want-th lock's name cut before a
   * byte below '0' (or that name itself) can still have keys past the last one read — any other
   * lock before the want-th has all its keys before it — and such keys lie in `<p>/0`…`<p>/g` (a
   * contender's last segment is lowercase hex), when that can be under `prefix` at all. One Txn
   * counts those few ranges (count_only, at the same revision); when all are empty the first
   * `want` locks are complete, else the rest of the prefix is read as before (e.g. page 1 ends at
   * `jobs/cache-9` and there is a `jobs/d…` after it: it could be a contender of a lock `jobs`).
   * `truncated` counts keys left unread because of maxKeys only.
   */
  async readFirstGroups(
    prefix: string, want: number, keep: (g: Group) => boolean, leases?: Map<string, Promise<LeaseFacts | null>>,
  ): Promise<{ kvs: Kv[]; truncated: number }> {
    if (want <= 0) return { kvs: [], truncated: 0 };
    const start = enc(prefix);
    const end = prefixEnd(start);
    const kvs: Kv[] = [];
    // A lock is one key, or a few with waiters: a first page a little over `want` keys usually
    // ends the read (etcd 3.4 walks the whole range to count it for every limited Range, so each
    // page costs O(prefix) on the server: fewer pages matter more than smaller ones).
    let limit = Math.min(this.pageSize, Math.max(32, want + 17));
    let from = start;
    let revision = '';
    let total = 0;
    let settled = false;
    for (;;) {
      const r: IRangeResponse = await this.client.kv.range({ key: from, range_end: end, limit, ...(revision ? { revision } : {}) });
      if (!revision) {
        revision = r.header.revision;
        total = Number(r.count);
      }
      for (const kv of r.kvs) kvs.push(toKv(kv));
      if (!r.more || !r.kvs.length) return { kvs, truncated: 0 };
      if (kvs.length >= this.maxKeys) return { kvs, truncated: Math.max(0, total - kvs.length) };
      from = Buffer.concat([r.kvs[r.kvs.length - 1]!.key, Buffer.from([0])]);
      // No more than `want` locks can lie in `want` keys: nothing to decide yet (a full listing,
      // want = 10,001, never groups here).
      if (settled || kvs.length <= want) continue;
      const groups = groupLocks(kvs).filter(keep).map((g) => ({ g, k: enc(g.key) })).sort((a, b) => Buffer.compare(a.k, b.k));
      // The want-th distinct name (a single-key lock and a Go-layout lock may share one).
      let nth: Buffer | undefined;
      for (let i = 0, n = 0; i < groups.length && !nth; i++) if ((i === 0 || !groups[i]!.k.equals(groups[i - 1]!.k)) && ++n === want) nth = groups[i]!.k;
      if (!nth || !groups.some((x) => Buffer.compare(x.k, nth!) > 0)) continue;
      if (nth.some((b) => b >= 0xef)) {
        // Names are decoded keys: a key that is not valid UTF-8 further on decodes to U+FFFD
        // (EF BF BD) and can sort before a name with a 4-byte character (F0…) or U+FFFD itself,
        // out of etcd's byte order. Rare enough to read everything (found in review).
        settled = true;
        limit = this.pageSize;
        continue;
      }
      const success: IRequestOp[] = [];
      for (let i = 0; i <= nth.length; i++) {
        if (i < nth.length && nth[i]! >= 0x30) continue;
        const p = nth.subarray(0, i);
        if (!mayHoldContenders(start, p)) continue;
        const lo = Buffer.concat([p, Buffer.from('/0')]);
        const hi = Buffer.concat([p, Buffer.from('/g')]);
        const a = Buffer.compare(lo, from) > 0 ? lo : from;
        const b = Buffer.compare(hi, end) < 0 ? hi : end;
        if (Buffer.compare(a, b) < 0) success.push({ request_range: { key: a, range_end: b, revision, count_only: true } });
      }
      // The holder leases of the first locks are looked up meanwhile (list() needs them either way).
      const prefetch = leases ? this.prefetchLeases(groups.filter((x) => Buffer.compare(x.k, nth!) <= 0).map((x) => x.g), leases) : undefined;
      if (success.length) {
        const [t] = await Promise.all([this.client.kv.txn({ compare: [], success, failure: [] }), prefetch]);
        if (t.responses.some((x) => Number(x.response_range.count) > 0)) {
          // Keys that may belong to the first locks lie further on: read the rest, in full pages.
          settled = true;
          limit = this.pageSize;
          continue;
        }
      } else await prefetch;
      return { kvs, truncated: 0 };
    }
  }

  /**
   * How many keys lie under each configured prefix, counted by etcd (`count_only` Range: one
   * request per prefix, no key or value sent back), for a console that wants the size of a
   * keyspace before it lists it.
   */
  async countKeys(): Promise<{ prefix: string; keys: number; revision: string }[]> {
    this.assertOpen();
    try {
      return await Promise.all(
        this.prefixes.map(async (prefix) => {
          const start = enc(prefix);
          const r = await this.client.kv.range({ key: start, range_end: prefixEnd(start), count_only: true });
          return { prefix, keys: Number(r.count), revision: r.header.revision };
        }),
      );
    } catch (err) {
      throw unavailable(err, 'cannot count keys');
    }
  }

  async list(filter: ListFilter = {}): Promise<LockInfo[]> {
    this.assertOpen();
    const limit = filter.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isInteger(limit) || limit < 0) throw new InvalidArgumentError(`limit must be a non-negative integer, got ${String(limit)}`);
    const q = filter.q?.toLowerCase();
    const out: LockInfo[] = [];
    const now = Date.now();
    const leases = new Map<string, Promise<LeaseFacts | null>>();
    try {
      for (const prefix of this.prefixes) {
        const keep = (g: Group) => !q || g.key.toLowerCase().includes(q);
        const { kvs, truncated } = await this.readFirstGroups(prefix, limit - out.length, keep, leases);
        if (truncated) out.push(this.warning(prefix, `${kvs.length + truncated} keys under this prefix: only the first ${kvs.length} were read (maxKeys)`));
        // Byte order, as etcd orders keys (readFirstGroups relies on it).
        const groups = groupLocks(kvs).filter(keep).map((g) => ({ g, k: enc(g.key) })).sort((a, b) => Buffer.compare(a.k, b.k)).map((x) => x.g);
        const chosen = groups.slice(0, limit - out.length);
        await this.prefetchLeases(chosen, leases);
        for (const g of chosen) out.push((await this.describe(g, now, leases)).info);
        if (out.length >= limit) break;
      }
    } catch (err) {
      throw unavailable(err, 'cannot list locks');
    }
    return out.slice(0, limit);
  }

  async get(key: string): Promise<LockInfo | null> {
    validateName(key);
    this.assertOpen();
    try {
      return (await this.read(key))?.info ?? null;
    } catch (err) {
      throw unavailable(err, `cannot read "${key}"`);
    }
  }

  /** The lock named `key`: the Go-layout contenders `<key>/<hex>`, else the single key `<key>`. */
  private async read(key: string): Promise<Scanned | null> {
    const pfx = enc(`${key}/`);
    const kvs: Kv[] = [];
    let from = pfx;
    let revision = '';
    let single: Kv | null = null;
    for (let page = 0; ; page++) {
      const r = await this.client.kv.txn({
        compare: [],
        success: [
          { request_range: { key: from, range_end: prefixEnd(pfx), limit: this.pageSize, ...(revision ? { revision } : {}) } },
          ...(page === 0 ? [{ request_range: { key: enc(key) } }] : []),
        ],
        failure: [],
      });
      revision ||= r.header.revision;
      const range = r.responses[0]!.response_range;
      for (const kv of range.kvs) {
        const k = toKv(kv);
        if (contenderNameOf(k.key, k.lease) === key) kvs.push(k);
      }
      if (page === 0) single = r.responses[1]!.response_range.kvs.map(toKv)[0] ?? null;
      if (!range.more || !range.kvs.length || page * this.pageSize > this.maxKeys) break;
      from = Buffer.concat([range.kvs[range.kvs.length - 1]!.key, Buffer.from([0])]);
    }
    const groups = groupLocks(single ? [...kvs, single] : kvs).filter((g) => g.key === key);
    const g = groups.find((x) => x.contenders.length > 0) ?? groups[0];
    if (!g) return null;
    return this.describe(g, Date.now(), new Map());
  }

  /**
   * A lease's TTL, and its keys when `withKeys`. The keys are asked for only for single-key locks
   * (an etcd3 npm Lock is the one key on its lease): a Go-layout holder's lease is often a session
   * lease that carries every lock of its process, and listing 10,000 keys to describe one lock
   * made a first page of 100 locks cost 30 single-key Ranges (bench scale, etcd first page).
   */
  private leaseFacts(lease: string, cache: Map<string, Promise<LeaseFacts | null>>, withKeys: boolean): Promise<LeaseFacts | null> {
    const id = withKeys ? `${lease}+keys` : lease;
    let p = cache.get(id);
    if (!p) {
      p = this.client.leaseClient.leaseTimeToLive({ ID: lease, keys: withKeys }).then(
        (r) => ({ ttlS: Number(r.TTL), grantedS: Number(r.grantedTTL), ...(withKeys ? { keys: r.keys.map((k) => k.toString('utf8')) } : {}) }),
        () => null,
      );
      cache.set(id, p);
    }
    return p;
  }

  /**
   * Looks up the holder leases of `groups` together, LEASE_BATCH at a time, so that describe()
   * finds them in `cache`. One lookup per distinct lease either way, but not one round trip after
   * another: python-etcd3, the etcd3 npm Lock and etcdctl give every lock a lease of its own, and
   * describing 10,000 of those one by one took a round trip each.
   */
  async prefetchLeases(groups: Iterable<Group>, cache: Map<string, Promise<LeaseFacts | null>>): Promise<void> {
    const wanted = new Map<string, [lease: string, withKeys: boolean]>();
    for (const g of groups) {
      const lease = (g.contenders[0] ?? g.single)?.lease;
      const withKeys = !g.contenders.length;
      if (lease && lease !== '0') wanted.set(withKeys ? `${lease}+keys` : lease, [lease, withKeys]);
    }
    const all = [...wanted].filter(([id]) => !cache.has(id)).map(([, v]) => v);
    for (let i = 0; i < all.length; i += LEASE_BATCH) {
      await Promise.all(all.slice(i, i + LEASE_BATCH).map(([lease, withKeys]) => this.leaseFacts(lease, cache, withKeys)));
    }
  }

  /** A group's LockInfo, with the holder lease's remaining TTL. */
  async describe(g: Group, now: number, cache: Map<string, Promise<LeaseFacts | null>>): Promise<Scanned> {
    const holder = g.contenders[0] ?? g.single!;
    const facts = holder.lease !== '0' ? await this.leaseFacts(holder.lease, cache, !g.contenders.length) : null;
    let expiresAt: number | null = null;
    let health: LockInfo['health'] = 'unknown';
    if (holder.lease === '0') health = 'orphaned';
    else if (facts && facts.ttlS < 0) health = 'expired';
    else if (facts) {
      // etcd reports whole seconds left, truncated ("expires in under TTL+1 s"): the upper bound,
      // capped at the granted TTL, is the honest expiry.
      expiresAt = now + Math.min(facts.ttlS + 1, facts.grantedS) * 1000;
      health = lockHealth({ now, expiresAt, ttlMs: facts.grantedS * 1000 });
    }
    // Built field by field, not with spreads: on this V8 (Node 20) `{ ...a, b: 1 }` takes the
    // runtime's slow path (~1.4 µs against ~0.02 µs for a plain literal), and describe() runs once
    // per lock of a listing — the spreads were most of list()'s client time at 10,000 locks.
    const meta: Record<string, string | number | boolean | null> = {
      lease: holder.lease === '0' ? null : leaseHex(holder.lease),
      grantedTtlS: facts?.grantedS ?? null,
      leaseKeys: facts?.keys ? facts.keys.length : null,
      createRevision: holder.create_revision,
      modRevision: holder.mod_revision,
      ttlIs: 'upper bound: etcd reports the whole seconds left',
      holderKey: holder.key,
    };
    const info: LockInfo = {
      backend: this.id,
      key: g.key,
      format: 'unknown',
      kind: 'mutex',
      owner: null,
      holders: [],
      fence: holder.create_revision,
      acquiredAt: null,
      expiresAt,
      ttlMs: expiresAt === null ? null : expiresAt - now,
      waiters: [],
      health,
      meta,
    };
    let since: number | null = null;
    if (g.contenders.length) {
      const described = g.contenders.map((kv) => {
        const ours = parseLockdeckValue(kv.value);
        const hex = leaseHex(kv.lease);
        const text = kv.value.length && !ours ? kv.value.toString('utf8') : null;
        return { ours, owner: ours ? ours.owner : text ? `${text} (lease ${hex})` : `lease ${hex}`, since: ours?.since ?? null };
      });
      const h = described[0]!;
      since = h.since;
      const election = !h.ours && holder.value.length > 0;
      info.format = h.ours ? 'lockdeck' : election ? 'etcd-election' : 'etcd-mutex';
      info.owner = h.owner;
      info.holders = [{ owner: h.owner, fence: holder.create_revision, acquiredAt: h.since }];
      info.acquiredAt = h.since;
      info.waiters = described.slice(1).map((d) => ({ owner: d.owner, since: d.since }));
      meta.contenders = g.contenders.length;
      meta.layout = 'Go concurrency.Mutex (etcdctl lock, v3lock): <name>/<lease hex>, lowest create revision holds';
      meta.acquiredAtIs = h.ours ? 'when the holder queued (its client clock; etcd stores no time)' : 'unknown: etcd stores no time';
      if (h.ours?.labels) info.labels = h.ours.labels;
    } else {
      const kv = g.single!;
      const py = parsePythonUuid(kv.key, kv.value);
      const shed = py ? null : parseShedLock(kv.value);
      const owner = py ? `uuid1 ${py.uuid}` : shed ? shed.host : `lease ${leaseHex(kv.lease)}`;
      const format = py ? 'python-etcd3-lock' : shed ? 'shedlock' : facts?.keys?.length === 1 ? 'etcd3-npm-lock' : 'etcd-leased-key';
      if (py) {
        meta.uuidCreatedAt = py.createdAt;
        meta.uuidNode = py.node;
        meta.note = 'python-etcd3 does not keep its lease alive: the holder must call refresh()';
      }
      if (format === 'etcd3-npm-lock') meta.note = 'microsoft/etcd3 Lock: its holder releases by revoking the lease (revokeLease does the same)';
      info.format = format;
      info.owner = owner;
      info.holders = [{ owner, fence: kv.create_revision, acquiredAt: shed?.lockedAt ?? null }];
      info.acquiredAt = shed?.lockedAt ?? null;
    }
    return { info, holderKey: holder.key, holderCreate: holder.create_revision, holderLease: holder.lease, since };
  }

  private warning(key: string, text: string): LockInfo {
    return {
      backend: this.id, key, format: 'unknown', kind: 'mutex', owner: null, holders: [], fence: null,
      acquiredAt: null, expiresAt: null, ttlMs: null, waiters: [], health: 'unknown', meta: { warning: text },
    };
  }

  /**
   * Deletes the holder key the operator saw, compared on its create revision (= the fence), so
   * nothing newer is ever deleted; the next waiter wakes by its own watch on that deletion.
   */
  async forceRelease(key: string, expect: ForceReleaseExpectation = {}): Promise<ForceReleaseResult> {
    validateName(key);
    this.assertOpen();
    try {
      const s = await this.read(key);
      if (!s) return { status: 'not-found' };
      if ((expect.fence !== undefined && expect.fence !== s.holderCreate) || (expect.owner !== undefined && expect.owner !== s.info.owner)) {
        return { status: 'changed', lock: s.info };
      }
      const r = await this.client.kv.txn({
        compare: [{ key: enc(s.holderKey), target: 'Create', result: 'Equal', create_revision: s.holderCreate }],
        success: [{ request_delete_range: { key: enc(s.holderKey) } }],
        failure: [],
      });
      if (!r.succeeded) {
        const now = await this.read(key);
        return now ? { status: 'changed', lock: now.info } : { status: 'not-found' };
      }
      this.noteForced(s.holderKey, s.holderCreate);
      return { status: 'released', lock: { ...s.info, meta: { ...s.info.meta, forcedKey: s.holderKey, notice: FORCE_NOTE } } };
    } catch (err) {
      throw unavailable(err, `cannot release "${key}"`);
    }
  }

  /**
   * Revokes the holder's lease: etcd deletes **every** key on it (other locks of that session,
   * elections, application data), and the holder's keepalive fails, so a Go session's Done() fires
   * and an etcd3 npm Lock's lease emits `lost`. The lease is read first; the revoke happens only if
   * the holder still has the create revision (`expect.fence`) and owner the operator saw. That check
   * and the revoke are two requests (etcd has no conditional revoke): if the holder released in
   * between, the lease revoked is still the one that holder's session had.
   */
  async revokeLease(key: string, expect: ForceReleaseExpectation = {}): Promise<RevokeLeaseResult> {
    validateName(key);
    this.assertOpen();
    try {
      const s = await this.read(key);
      if (!s) return { status: 'not-found' };
      if ((expect.fence !== undefined && expect.fence !== s.holderCreate) || (expect.owner !== undefined && expect.owner !== s.info.owner)) {
        return { status: 'changed', lock: s.info };
      }
      if (s.holderLease === '0') throw new InvalidArgumentError(`"${key}" is on no lease: use forceRelease`);
      const facts = await this.client.leaseClient.leaseTimeToLive({ ID: s.holderLease, keys: true });
      await this.client.leaseClient.leaseRevoke({ ID: s.holderLease });
      this.noteForced(s.holderKey, s.holderCreate);
      return { status: 'revoked', lock: s.info, lease: leaseHex(s.holderLease), keys: facts.keys.map((k) => k.toString('utf8')) };
    } catch (err) {
      if (err instanceof LockError) throw err;
      throw unavailable(err, `cannot revoke the lease of "${key}"`);
    }
  }

  private noteForced(key: string, create: string): void {
    this.forcedKeys.set(`${key}@${create}`, Date.now());
    if (this.forcedKeys.size > 1000) this.forcedKeys.delete(this.forcedKeys.keys().next().value!);
  }

  watch(onChange: (change: LockChange) => void): Unsubscribe {
    this.assertOpen();
    return this.watcher.subscribe(onChange);
  }

  /** A serializable Range of one key: one round trip to the nearest member, no quorum. */
  async ping(): Promise<number> {
    this.assertOpen();
    const t0 = performance.now();
    try {
      await this.client.kv.range({ key: enc('\u0000lockdeck-ping'), serializable: true, count_only: true });
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
    clearTimeout(this.idleTimer);
    await Promise.allSettled([...this.held].map(({ handle }) => handle.release()));
    for (const { handle } of [...this.held]) handle.markLost('closed');
    // Revoking the sessions deletes any key left on them (a waiter's, a lost holder's).
    await Promise.allSettled([...this.sessions.values()].flat().map((s) => s.revoke()));
    this.sessions.clear();
    this.keeper.close();
    this.client.close();
  }

  isClosed(): boolean {
    return this.closing !== undefined;
  }

  get prefixList(): readonly string[] {
    return this.prefixes;
  }

  /** How many times watch() has re-read a prefix to recover its watch (diagnostics). */
  get watchRelists(): number {
    return this.watcher.relists;
  }

  private assertOpen(): void {
    if (this.closing) throw new BackendUnavailableError(`backend "${this.id}" is closed`);
  }
}

/** One lock's keys: Go-layout contenders sorted by create revision, or one single-key lock. */
export interface Group {
  key: string;
  contenders: Kv[];
  single?: Kv;
}

/**
 * Whether a key `<p>/<hex>` (a Go-layout contender of lock `p`) can lie under `prefix`: either the
 * prefix ends within `<p>/`, or it runs on into the last segment, which then must be hex so far.
 */
function mayHoldContenders(prefix: Buffer, p: Buffer): boolean {
  const dir = Buffer.concat([p, Buffer.from('/')]);
  if (dir.length >= prefix.length) return dir.subarray(0, prefix.length).equals(prefix);
  if (!prefix.subarray(0, dir.length).equals(dir)) return false;
  return /^[0-9a-f]*$/.test(prefix.subarray(dir.length).toString('latin1'));
}

/** Groups raw keys into locks (layout.ts); keys that match no lock layout are left out. */
export function groupLocks(kvs: Kv[]): Group[] {
  const byName = new Map<string, Group>();
  const singles: Group[] = [];
  for (const kv of kvs) {
    const name = contenderNameOf(kv.key, kv.lease);
    if (name !== null) {
      let g = byName.get(name);
      if (!g) byName.set(name, (g = { key: name, contenders: [] }));
      g.contenders.push(kv);
      continue;
    }
    const leased = kv.lease !== '0';
    if (parsePythonUuid(kv.key, kv.value) || (leased && (kv.value.length === 0 || parseShedLock(kv.value)))) {
      singles.push({ key: kv.key, contenders: [], single: kv });
    }
  }
  for (const g of byName.values()) g.contenders.sort((a, b) => cmpRev(a.create_revision, b.create_revision));
  return [...byName.values(), ...singles];
}

function cmpRev(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * A holder's watch on its own key: a deletion it did not make (forced release, lease gone) marks
 * the handle lost. Armed only HOLDER_WATCH_DELAY_MS after the lock was got, from the revision
 * after the one that proved it held, so no deletion is missed and short holds cost no watch create
 * and cancel (nor, for the etcd3 client, a watch stream set-up when it has no other watcher); a
 * forced release in the first moments is reported when the watch catches up. Everything here is
 * made when armed, not per acquire.
 */
class HolderGuard {
  gone = false;
  private handle: ManagedHandle | undefined;
  private watch: DeleteWatch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private errors = 0;
  private stopped = false;

  constructor(
    private readonly client: Etcd3,
    private readonly key: string,
    private readonly myRev: string,
    private readonly session: Session,
  ) {}

  start(handle: ManagedHandle, provenAt: string): void {
    this.handle = handle;
    this.timer = setTimeout(armGuard, HOLDER_WATCH_DELAY_MS, this, provenAt);
    this.timer.unref?.();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.watch?.cancel();
    this.watch = undefined;
  }

  private get live(): boolean {
    return !this.stopped && !this.gone && this.handle !== undefined && this.handle.held;
  }

  arm(from: bigint): void {
    if (!this.live) return;
    this.watch = new DeleteWatch(this.client, this.key, from, {
      deleted: () => this.onGone(),
      // A watch etcd keeps refusing leaves the holder blind to a forced release: count it lost.
      error: () => void (++this.errors > 5 ? this.onGone() : this.verify(true)),
      reconnected: () => void this.verify(false),
    });
  }

  /** Deleted under us: by an operator (forced), or with the lease (session lost). */
  private onGone(): void {
    if (!this.live) return;
    this.gone = true;
    const handle = this.handle!;
    // One keepalive tells which; without an answer we say forced, which is what a deletion usually is.
    const settle = (alive: boolean) => handle.markLost(alive ? 'forced' : 'session-lost');
    if (this.session.dead) return settle(false);
    const t = setTimeout(() => settle(true), 500);
    this.session.refresh().then(
      (alive) => {
        clearTimeout(t);
        settle(alive);
      },
      () => undefined,
    );
  }

  /**
   * Looks at the key itself, when the watch could not say: etcd refused or cancelled it (start
   * revision compacted), or the client resumed it after a disconnect (possibly skipping events).
   */
  private async verify(rearm: boolean): Promise<void> {
    if (!this.live) return;
    if (rearm) {
      this.watch?.cancel();
      this.watch = undefined;
    }
    try {
      const r = await this.client.kv.range({ key: enc(this.key), keys_only: true });
      if (!this.live) return;
      if (r.kvs[0]?.create_revision !== this.myRev) return this.onGone();
      if (rearm) this.arm(BigInt(r.header.revision) + 1n);
    } catch {
      this.timer = setTimeout(() => void this.verify(rearm), 500);
      this.timer.unref?.();
    }
  }
}

function armGuard(g: HolderGuard, provenAt: string): void {
  g.arm(BigInt(provenAt) + 1n);
}

/**
 * A watch for the deletion of one key (puts filtered out by the server), from a given revision.
 * `deleted` fires once; `error` when etcd refuses or cancels the watch (e.g. its start revision
 * was compacted); `reconnected` when the client resumed it after its stream broke.
 */
class DeleteWatch {
  private watcher: Watcher | undefined;
  private cancelled = false;
  private fired = false;
  private disconnected = false;
  private created = false;

  constructor(
    client: Etcd3,
    key: string,
    startRev: bigint,
    private readonly on: { deleted: () => void; error: (err: unknown) => void; reconnected?: () => void; created?: (headerRev: bigint) => void },
  ) {
    // `only('delete')` sends the server's NOPUT filter. (etcd3 1.1.2's `ignore(op)` is the same
    // call as `only(op)`, so `ignore('put')` would drop the deletes: lib/watch.js WatchBuilder.)
    // startRev 0: from the store's current revision (etcd keeps such a watcher "synced").
    const b = client.watch().key(key).only('delete');
    const w = (startRev > 0n ? b.startRevision(String(startRev)) : b).watcher();
    this.watcher = w;
    w.on('data', (res) => {
      if (this.cancelled || this.fired) return;
      if (res.events.some((ev) => ev.type === 'Delete' && ev.kv.key.toString('utf8') === key)) {
        this.fired = true;
        this.on.deleted();
      }
    });
    w.on('disconnected', () => (this.disconnected = true));
    w.on('connected', (res: { header?: { revision?: string } }) => {
      if (this.cancelled) return;
      if (!this.created) {
        this.created = true;
        if (res?.header?.revision !== undefined) this.on.created?.(BigInt(res.header.revision));
        return;
      }
      if (!this.disconnected) return;
      this.disconnected = false;
      this.on.reconnected?.();
    });
    w.on('error', (err) => {
      if (this.cancelled) return;
      // etcd3 has dropped the watcher already; cancelling it again would send a cancel whose
      // answer the client cannot match to any watcher (it throws from its stream handler).
      this.cancelled = true;
      this.watcher = undefined;
      this.on.error(err);
    });
  }

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    void this.watcher?.cancel().catch(() => undefined);
    this.watcher = undefined;
  }
}

interface Snap {
  scanned: Scanned;
  acquiredEst: number;
}

/**
 * watch(): per configured prefix, a full read at revision R, then one watch on the prefix from
 * R + 1, so nothing between the read and the watch is missed. Each event updates the key map; the
 * locks it touches are rebuilt and diffed with the last snapshot. Event handling is serialised (the
 * lease look-ups are asynchronous).
 *
 * When the watch cannot go on from where it was, the prefix is read again and the new listing is
 * diffed with the snapshot, so a change made meanwhile is reported once (as released / acquired /
 * changed) and an unchanged lock not at all. That happens when etcd refuses the watch (its start
 * revision was compacted while the client was away, or the server cancelled it), and when the
 * etcd3 client would resume it from a revision past the last one we were sent (it resumes from
 * the last header it saw, lib/watch.js `updateRevision`, which for a watcher created "unsynced"
 * is ahead of the events still to come).
 */
class PrefixWatcher {
  private subscribers = new Set<(c: LockChange) => void>();
  private generation = 0;
  private watchers: Watcher[] = [];
  private keys = new Map<string, Kv>();
  private snapshot = new Map<string, Snap>();
  private firstSeen = new Map<string, number>();
  /** Prefixes listed at least once in this generation: a later listing is diffed, not silent. */
  private listed = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  private retries = new Set<NodeJS.Timeout>();
  /** Full reads of a prefix after the first one (for tests and diagnostics). */
  relists = 0;

  constructor(private readonly backend: EtcdLockBackend) {}

  subscribe(fn: (c: LockChange) => void): Unsubscribe {
    this.subscribers.add(fn);
    if (this.subscribers.size === 1) this.start();
    return () => {
      this.subscribers.delete(fn);
      if (this.subscribers.size === 0) this.stop();
    };
  }

  stop(): void {
    this.subscribers.clear();
    this.generation++;
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
    for (const w of this.watchers) void w.cancel().catch(() => undefined);
    this.watchers = [];
    this.keys.clear();
    this.snapshot.clear();
    this.firstSeen.clear();
    this.listed.clear();
  }

  private start(): void {
    const gen = ++this.generation;
    for (const prefix of this.backend.prefixList) void this.startPrefix(prefix, gen);
  }

  private async startPrefix(prefix: string, gen: number): Promise<void> {
    try {
      const { kvs, revision } = await this.backend.readPrefix(prefix);
      if (gen !== this.generation) return;
      const relist = this.listed.has(prefix);
      if (relist) this.relists++;
      const touched = new Set(groupLocks(kvs).map((g) => g.key));
      // A lock gone while we were not watching is only in the snapshot.
      if (relist) for (const k of this.snapshot.keys()) if (k.startsWith(prefix)) touched.add(k);
      for (const k of [...this.keys.keys()]) if (k.startsWith(prefix)) this.keys.delete(k);
      for (const kv of kvs) this.keys.set(kv.key, kv);
      await this.enqueue(() => this.rebuild(touched, !relist, prefix));
      if (gen !== this.generation) return;
      this.listed.add(prefix);
      this.watchFrom(prefix, gen, BigInt(revision) + 1n);
    } catch {
      if (gen === this.generation) this.retryLater(prefix, gen);
    }
  }

  private watchFrom(prefix: string, gen: number, from: bigint): void {
    const w = this.backend.client.watch().prefix(prefix).startRevision(String(from)).watcher();
    this.watchers.push(w);
    // Every event up to this revision has been handled (a response's header revision: etcd has
    // sent this watcher everything up to it).
    let seen = from - 1n;
    let resumeUnsafe = false;
    const drop = (cancel: boolean) => {
      this.watchers = this.watchers.filter((x) => x !== w);
      if (cancel) void w.cancel().catch(() => undefined);
    };
    w.on('data', (res) => {
      if (gen !== this.generation) return;
      const touched = new Set<string>();
      const now = Date.now();
      for (const ev of res.events) {
        const kv = toKv(ev.kv);
        const name = contenderNameOf(kv.key, kv.lease) ?? kv.key;
        if (ev.type === 'Delete') {
          const prev = this.keys.get(kv.key);
          this.keys.delete(kv.key);
          this.firstSeen.delete(kv.key);
          touched.add(prev ? (contenderNameOf(prev.key, prev.lease) ?? prev.key) : kv.key);
          // A deleted key's lease is unknown in the event: its lock may be either name.
          const slash = kv.key.lastIndexOf('/');
          if (slash > 0) touched.add(kv.key.slice(0, slash));
        } else {
          this.keys.set(kv.key, kv);
          if (!this.firstSeen.has(kv.key)) this.firstSeen.set(kv.key, now);
          touched.add(name);
        }
      }
      const h = BigInt(res.header.revision);
      if (h > seen) seen = h;
      if (touched.size) void this.enqueue(() => this.rebuild(touched, false, prefix));
    });
    w.on('disconnected', () => {
      // Where the client will resume: past `seen + 1` only on a header we got no events for.
      const resume = BigInt(w.lastRevision() ?? String(from));
      resumeUnsafe = resume > seen + 1n;
    });
    w.on('connected', () => {
      if (!resumeUnsafe || gen !== this.generation) return;
      resumeUnsafe = false;
      drop(true);
      void this.startPrefix(prefix, gen);
    });
    w.on('error', () => {
      if (gen !== this.generation) return;
      drop(false); // etcd3 dropped it already (see DeleteWatch)
      this.retryLater(prefix, gen);
    });
  }

  private retryLater(prefix: string, gen: number): void {
    const t = setTimeout(() => {
      this.retries.delete(t);
      void this.startPrefix(prefix, gen);
    }, 1000);
    t.unref?.();
    this.retries.add(t);
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(fn, fn).catch(() => undefined);
    return this.chain;
  }

  /** Rebuilds the locks named in `touched` from the key map and emits the differences. */
  private async rebuild(touched: Set<string>, silent: boolean, prefix: string): Promise<void> {
    const gen = this.generation;
    const now = Date.now();
    const relevant: Kv[] = [];
    for (const kv of this.keys.values()) {
      const name = contenderNameOf(kv.key, kv.lease) ?? kv.key;
      if (touched.has(name)) relevant.push(kv);
    }
    const groups = new Map(groupLocks(relevant).map((g) => [g.key, g] as const));
    const cache = new Map<string, Promise<LeaseFacts | null>>();
    await this.backend.prefetchLeases(groups.values(), cache);
    if (gen !== this.generation) return;
    for (const key of touched) {
      if (!key.startsWith(prefix) && !this.snapshot.has(key)) continue;
      const prev = this.snapshot.get(key);
      const g = groups.get(key);
      const cur = g ? await this.backend.describe(g, now, cache) : undefined;
      if (gen !== this.generation) return;
      const at = Date.now();
      const holderChanged = !prev || !cur || prev.scanned.holderKey !== cur.holderKey || prev.scanned.holderCreate !== cur.holderCreate;
      if (prev && holderChanged) {
        const forced = this.backend.forcedKeys.has(`${prev.scanned.holderKey}@${prev.scanned.holderCreate}`);
        if (!silent) this.emit({ type: forced ? 'forced' : 'released', backend: this.backend.id, key, lock: prev.scanned.info, at, heldMs: Math.max(0, at - prev.acquiredEst) });
      }
      if (!cur) {
        this.snapshot.delete(key);
        continue;
      }
      if (holderChanged) {
        // When the holder queued: our metadata, else when this watcher first saw its key.
        const queued = cur.since ?? this.firstSeen.get(cur.holderKey) ?? null;
        // A holder that took over from another got the lock about now; a first holder when it queued.
        const acquiredEst = prev ? at : Math.min(queued ?? at, at);
        this.snapshot.set(key, { scanned: cur, acquiredEst });
        if (!silent) {
          const c: LockChange = { type: 'acquired', backend: this.backend.id, key, lock: cur.info, at };
          if (queued !== null) c.waitedMs = Math.max(0, acquiredEst - queued);
          this.emit(c);
        }
      } else {
        const changed = JSON.stringify(prev.scanned.info.waiters) !== JSON.stringify(cur.info.waiters);
        this.snapshot.set(key, { ...prev, scanned: cur });
        if (changed && !silent) this.emit({ type: 'changed', backend: this.backend.id, key, lock: cur.info, at });
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

function unavailable(err: unknown, what: string): Error {
  if (err instanceof LockError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new BackendUnavailableError(`${what}: ${msg}`, { cause: err });
}
