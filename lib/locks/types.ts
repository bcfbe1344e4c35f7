/**
 * The one interface every lock store implements.
 *
 * A backend has two faces:
 *  - the client face (`acquire`, `tryAcquire`) that applications and the scheduler use to take
 *    locks, returning a {@link LockHandle};
 *  - the inspector face (`list`, `get`, `forceRelease`, `watch`) that the console uses to show
 *    every held lock — ours and those written by foreign clients — as a {@link LockInfo}.
 *
 * What differs between stores is said by {@link Capabilities}, never by `instanceof`.
 * Durations are integer milliseconds (names end in `Ms`); times are epoch milliseconds.
 */

export type BackendType = 'redis' | 'zookeeper' | 'etcd' | 'dynamodb' | 'sqlite';

/** Who holds (or waits for) a lock. Written with the lock so the console can show it. */
export interface OwnerInfo {
  /** Human-readable owner id, `host:pid/instance` unless the caller chose one. */
  readonly id: string;
  readonly host: string;
  readonly pid: number;
  /** Random id of the backend instance (one per process and backend object). */
  readonly instance: string;
}

export interface AcquireOptions {
  /** Lease length. The lock expires this long after acquisition or the last renewal. */
  ttlMs: number;
  /**
   * How long to wait for a held lock. 0 = try once. `Infinity` = until `signal` aborts.
   * `acquire` throws {@link AcquireTimeoutError} when it runs out.
   */
  waitMs: number;
  /** Aborts the wait (never a held lock: use the handle for that). */
  signal?: AbortSignal;
  /** Overrides the owner id written with the lock (default: `host:pid/instance`). */
  owner?: string;
  /** Free-form labels shown in the console (job name, run URL...). Small strings only. */
  labels?: Record<string, string>;
  /**
   * Renew the lease automatically at ttlMs/3 while the handle is held (default true).
   * When renewal fails the handle's `signal` aborts with a {@link LockLostError}.
   */
  autoRenew?: boolean;
}

export type LostReason = 'renewal-failed' | 'forced' | 'expired' | 'session-lost' | 'closed';

/** A held lock. Release it, or let `await using` do it. */
export interface LockHandle extends AsyncDisposable {
  readonly backend: string;
  readonly name: string;
  /**
   * Fencing token: a decimal integer, strictly increasing across holders of the same lock name.
   * Pass it to the protected resource and have it refuse writes with an older fence
   * (compare with {@link compareFences}).
   */
  readonly fence: string;
  readonly owner: OwnerInfo;
  /** Epoch ms at which the lease runs out unless renewed, by the backend's clock where it has one. */
  readonly expiresAt: number;
  /** Aborts (with a {@link LockLostError} as reason) once the lock is known or presumed lost. */
  readonly signal: AbortSignal;
  /** True until released or lost. */
  readonly held: boolean;
  /** Extends the lease to `ttlMs` from now (default: the acquire ttl). Throws LockLostError if lost. */
  extend(ttlMs?: number): Promise<void>;
  /** Releases the lock. Idempotent; never throws for a lock that was already lost. */
  release(): Promise<void>;
}

export type LockKind = 'mutex' | 'read' | 'write' | 'semaphore';
export type LockHealth = 'ok' | 'expiring' | 'expired' | 'orphaned' | 'unknown';

export interface HolderInfo {
  owner: string | null;
  fence: string | null;
  acquiredAt: number | null;
}

export interface WaiterInfo {
  owner: string | null;
  since: number | null;
}

/**
 * One held lock as the console shows it (see contract.md, "LockInfo").
 * `null` means unknown; `[]` means none.
 */
export interface LockInfo {
  backend: string;
  key: string;
  /** Which layout it was recognised as; "lockdeck" for our own. */
  format: string;
  kind: LockKind;
  owner: string | null;
  holders: HolderInfo[];
  fence: string | null;
  acquiredAt: number | null;
  expiresAt: number | null;
  ttlMs: number | null;
  waiters: WaiterInfo[];
  health: LockHealth;
  /**
   * Extra facts the layout carries, for the detail view. Never a holder's secret token: at most
   * a short hash of it (see `tokenHash`).
   */
  meta?: Record<string, string | number | boolean | null>;
  /** Labels written by lockdeck clients (job name, run URL...). */
  labels?: Record<string, string>;
}

export interface ListFilter {
  /** Case-insensitive substring of the key. Plain text, never a glob. */
  q?: string;
  limit?: number;
}

export interface ForceReleaseExpectation {
  /** Release only if this fence still holds the lock. */
  fence?: string;
  /** Release only if this owner still holds the lock. */
  owner?: string;
}

export type ForceReleaseResult =
  | { status: 'released'; lock: LockInfo }
  | { status: 'changed'; lock: LockInfo }
  | { status: 'not-found' };

/**
 * `attempt` and `lost` are telemetry of lockdeck's own clients (see {@link Capabilities.telemetry}):
 * they change no lock. `attempt`: a client was refused (tryAcquire) or joined the queue (once per
 * acquire). `lost`: a holder learned that its lock is gone (`reason`), published by its process.
 */
export type LockEventType = 'acquired' | 'released' | 'expired' | 'forced' | 'changed' | 'attempt' | 'lost';

export interface LockChange {
  type: LockEventType;
  backend: string;
  key: string;
  /**
   * The lock as it is now (acquired/changed), or as it was (released/expired/forced); for `lost`,
   * what the holder knew (owner, fence); null or partial for `attempt`.
   */
  lock: LockInfo | null;
  at: number;
  /** `acquired` by a lockdeck client: how long it waited for the lock (contention statistics). */
  waitedMs?: number;
  /** `released` / `forced` / `expired`: how long the holder had it. */
  heldMs?: number;
  /** `lost`: why the holder lost it (a {@link LostReason}). */
  reason?: string;
  /**
   * `changed` that only renewed the holder's lease: its fence and the new expiry (epoch ms, the
   * store's clock). `lock` may then be null: nothing else changed, and a backend that pushes
   * renewals does not read the lock back for each (10,000 held locks renew ~1,000 times a second).
   */
  renewal?: { fence: string | null; expiresAt: number };
}

export interface Capabilities {
  /** The backend has a fencing token for its own locks. */
  fencing: boolean;
  /** Leases expire by the store's clock (false: session-bound, e.g. ZooKeeper). */
  ttl: boolean;
  /** Waiters are recorded where the inspector can see them. */
  waiters: boolean;
  /** Waiters get the lock in the order they started waiting (false: whoever retries first). */
  fifo: boolean;
  /** watch() pushes changes (false: the console has to poll). */
  pushWatch: boolean;
  /** A forced release tells our own holder at once (not only at its next renewal). */
  notifiesHolderOnForce: boolean;
  /**
   * lockdeck's clients publish `attempt` and `lost` changes through the store (absent: true where
   * the backend predates the field, i.e. Redis; false: ZooKeeper, which has nothing to publish
   * through without a write).
   */
  telemetry?: boolean;
  /**
   * The backend also offers {@link LeaseRevoker.revokeLease}: ending the holder's whole lease
   * (etcd), which frees every key on it, not only this lock. Set by the console from the method's
   * presence; backends need not declare it.
   */
  leaseRevocation?: boolean;
}

export type Unsubscribe = () => void;

export interface WatchOptions {
  /** Also deliver lockdeck clients' `attempt` and `lost` changes (default false). */
  telemetry?: boolean;
}

export interface LockClient {
  /** Acquires `name`, waiting up to `waitMs`. Throws AcquireTimeoutError / AbortError. */
  acquire(name: string, opts?: Partial<AcquireOptions>): Promise<LockHandle>;
  /** One attempt, no waiting: the handle, or null when someone else holds it. */
  tryAcquire(name: string, opts?: Partial<Omit<AcquireOptions, 'waitMs'>>): Promise<LockHandle | null>;
}

export interface LockInspector {
  /** Every held lock this backend can see, ours and foreign. */
  list(filter?: ListFilter): Promise<LockInfo[]>;
  /** One lock by its key (as LockInfo.key), or null when nothing holds it. */
  get(key: string): Promise<LockInfo | null>;
  /**
   * Releases the lock the operator saw and nothing else: with `fence`/`owner` it is a
   * compare-and-delete, answering `changed` (and releasing nothing) when someone else holds it now.
   * Uses the layout's own wake-up so its waiters move on.
   */
  forceRelease(key: string, expect?: ForceReleaseExpectation): Promise<ForceReleaseResult>;
  /**
   * Pushes changes as they happen. The returned function stops watching. Client telemetry
   * (`attempt`, `lost`) only with `opts.telemetry`, so watchers written for lock changes alone see
   * nothing new.
   */
  watch(onChange: (change: LockChange) => void, opts?: WatchOptions): Unsubscribe;
  /** One trivial round trip; resolves to its latency in ms, rejects when the store is down. */
  ping(): Promise<number>;
  /**
   * The background discovery behind list(), where the backend runs one (Redis with `match`);
   * null before the first list() started it.
   */
  discoveryStatus?(): ForeignDiscoveryStatus | null;
}

/**
 * A background walk that finds locks no index lists (Redis: foreign clients' keys, found by a
 * paced SCAN): how fresh what it knows is. The console shows it per backend (/api/backends,
 * metrics) so an operator can tell "no foreign lock" from "not looked yet".
 */
export interface ForeignDiscoveryStatus {
  /** 'scanning' while a pass is under way, 'idle' between passes, 'stopped' after close(). */
  state: 'idle' | 'scanning' | 'stopped';
  /** Complete passes so far. */
  passes: number;
  /** Local epoch ms when the last complete pass started (locks taken before it are known), or null. */
  lastPassStartedAt: number | null;
  /** How long ago the last complete pass started (ms): the age of what discovery knows. */
  lastPassAgeMs: number | null;
  /** How long the last complete pass took (ms). */
  lastPassMs: number | null;
  /** Keyspace entries returned so far by the pass under way. */
  keysExamined: number;
  /** Foreign lock keys remembered. */
  known: number;
  /**
   * Past this age of the last complete pass something is wrong (passes failing while Redis is
   * away, say): list() adds a warning row saying that foreign locks taken since are not shown.
   */
  staleAfterMs: number;
  /** The last error of a pass (Redis down...), cleared by the next complete pass. */
  lastError: string | null;
  /** More foreign locks than `maxLocks`: the rest are not remembered. */
  full: boolean;
}

/** What {@link LeaseRevoker.revokeLease} answers: the lock as seen, and every key the lease carried. */
export type RevokeLeaseResult =
  | { status: 'revoked'; lock: LockInfo; lease: string; keys: string[] }
  | { status: 'changed'; lock: LockInfo }
  | { status: 'not-found' };

/**
 * A backend whose locks sit on leases that an operator may end as a whole (etcd). A separate,
 * clearly labelled action from forceRelease: it drops every key on the holder's lease.
 */
export interface LeaseRevoker {
  revokeLease(key: string, expect?: ForceReleaseExpectation): Promise<RevokeLeaseResult>;
}

/** One side of a read/write lock: acquire and tryAcquire with the name fixed. */
export interface NamedLock {
  acquire(opts?: Partial<AcquireOptions>): Promise<LockHandle>;
  tryAcquire(opts?: Partial<Omit<AcquireOptions, 'waitMs'>>): Promise<LockHandle | null>;
}

/**
 * A shared/exclusive lock: any number of readers together, or one writer alone. Waiters keep
 * their order across both sides (a reader that comes after a waiting writer waits for it).
 */
export interface ReadWriteLock {
  readonly name: string;
  readonly readLock: NamedLock;
  readonly writeLock: NamedLock;
}

/** A backend with read/write locks (ZooKeeper, in Curator's InterProcessReadWriteLock layout). */
export interface ReadWriteLockProvider {
  readWriteLock(name: string): ReadWriteLock;
}

export interface LockBackend extends LockClient, LockInspector {
  readonly id: string;
  readonly type: BackendType;
  readonly capabilities: Capabilities;
  /** Closes connections. Held handles are released first where possible. */
  close(): Promise<void>;
}

/** What happened to one scheduled occurrence on one instance (lib/scheduler). */
export type RunOutcome = 'running' | 'ran' | 'failed' | 'lost' | 'skipped' | 'missed';

export interface RunRecord {
  job: string;
  /** The occurrence's scheduled time, epoch ms: with `job`, the occurrence's identity. */
  occurrence: number;
  instance: string;
  outcome: RunOutcome;
  startedAt: number | null;
  finishedAt: number | null;
  fence: string | null;
  /** Why it failed or was skipped, in a line. */
  detail?: string;
}

/**
 * Where the scheduler keeps its run records: in the same store as its locks, so that every
 * instance (and the console) sees them. One record per (job, occurrence, instance); the newest
 * `retain` occurrences per job are kept.
 */
export interface RunStore {
  /** Writes or replaces the record of (job, occurrence, instance). */
  put(run: RunRecord): Promise<void>;
  /** Every instance's record of one occurrence. */
  occurrence(job: string, occurrence: number): Promise<RunRecord[]>;
  /** Records of the newest occurrences, newest first; all jobs unless `job` is given. */
  recent(opts?: { job?: string; limit?: number }): Promise<RunRecord[]>;
  /** The job names that have records. */
  jobs(): Promise<string[]>;
  /**
   * Job registration (optional, so stores written before it still satisfy the interface;
   * lockdeck's Redis and SQLite stores have both). Writes the job's definition (newest wins) and
   * the instance's `seenAt`.
   */
  putJob?(job: JobRegistration): Promise<void>;
  /** Every registered job, by name; instances unseen for a week are forgotten. */
  listJobs?(): Promise<JobInfo[]>;
}

/** A backend that can keep scheduler run records. */
export interface RunStoreProvider {
  runStore(opts?: { retain?: number }): RunStore;
}

/** When a scheduled job runs: a cron expression (with its time zone) or a fixed interval. */
export interface JobSchedule {
  cron?: string;
  /** IANA time zone of `cron` (the scheduler's default is UTC). */
  timezone?: string;
  everyMs?: number;
}

/**
 * One scheduler instance's announcement of a job it schedules (lib/scheduler writes it at start
 * and refreshes `seenAt` every `heartbeatMs`), so the console knows the job's schedule and which
 * instances are alive without any of them running an occurrence.
 */
export interface JobRegistration {
  name: string;
  schedule: JobSchedule;
  lockAtMostForMs: number;
  lockAtLeastForMs: number;
  /** How late an occurrence may still start (the scheduler's effective graceMs). */
  graceMs?: number;
  missed?: 'run-latest' | 'skip';
  instance: string;
  /** Epoch ms of this announcement. */
  seenAt: number;
  /** How often the instance refreshes `seenAt` (an instance unseen for ~2.5× this is gone). */
  heartbeatMs?: number;
}

/** A job as the run store knows it: the newest announced definition and every instance seen. */
export interface JobInfo {
  name: string;
  schedule: JobSchedule;
  lockAtMostForMs: number;
  lockAtLeastForMs: number;
  graceMs?: number;
  missed?: 'run-latest' | 'skip';
  heartbeatMs?: number;
  /** Epoch ms of the newest announcement (the definition is from it). */
  updatedAt: number;
  /** Instances that announced the job, newest first. */
  instances: Array<{ instance: string; seenAt: number }>;
}

