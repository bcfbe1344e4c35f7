/**
 * DynamoDB locks in the layout of awslabs/amazon-dynamodb-lock-client
 * (src/main/java/com/amazonaws/services/dynamodbv2/AmazonDynamoDBLockClient.java), so that lockdeck
 * and Java services using AmazonDynamoDBLockClient respect each other's locks; plus what that
 * layout lacks, in attributes the Java client ignores (layout.ts lists them all).
 *
 * Client:
 * - Acquire is ONE conditional UpdateItem when the lock is free:
 *   `attribute_not_exists(#pk) OR attribute_exists(#ir)` (no item, or released), which also
 *   bumps the per-lock fence counter `lockdeckFence` and returns it. Our releases keep the item
 *   (isReleased = "1", as the Java client does with deleteLockOnRelease = false) so the counter
 *   survives; when a foreign client deleted or rewrote the item, the counter is re-seeded from the
 *   writer's wall clock (epoch ms × 1000), which stays above earlier fences unless lockdeck clients'
 *   clocks disagree by more than the time since the previous lockdeck acquisition.
 * - Heartbeat = conditional UpdateItem on (recordVersionNumber, ownerName), writing a new record
 *   version, as the Java client's sendHeartbeat does; it also requires `isReleased` absent, so a
 *   holder whose item was marked released stops. ManagedHandle renews at ttl/3.
 * - Taking over an expired lock: only the Java client's rule — the waiter saw the same record
 *   version for the item's `leaseDuration` on its own monotonic clock — and the write is
 *   conditional on that version. Not the stored `lockdeckExpiresAt` (wall clock, for display):
 *   a waiter whose clock had stepped ahead took live locks by it (torture clock-jump × dynamodb:
 *   135 overlapping critical sections, 61 holders never told; test/contract.ts, for every
 *   backend, "regression (torture: clock-jump)"). A lock whose holder died before this process first saw
 *   it is taken leaseDuration after that first sighting.
 * - Waiting polls (DynamoDB has no push): a consistent GetItem every `pollMs` (default 100 ms,
 *   ±30 % jitter; the Java client's default refreshPeriod is 1000 ms). Waiters in this process are
 *   also woken directly when a lockdeck client of this process frees the lock, and then try the
 *   conditional write at once. Request budget per waiter: 1 GetItem per poll (≈ 10/s at the
 *   default), 1 UpdateItem to record itself in the item (`lockdeckWaiter_<id>`, so the console
 *   can show it), 1 per `waiterRefreshMs` (3 s) to refresh that entry, 1 to remove it, and 1
 *   conditional write each time the lock looks free or expired. Handoff after a voluntary release:
 *   1 GetItem + 1 conditional write, after half a poll on average.
 * - tryAcquire: 1 request when free; when refused, 1 GetItem more to apply the takeover rule
 *   (a version this backend already saw unchanged for leaseDuration).
 * - Release = conditional UpdateItem setting isReleased = "1" and a new record version.
 *
 * Inspector:
 * - list(): paginated Scan of every configured table; recognises lockdeck, AWS lock client and
 *   ShedLock (DynamoDB provider) items; skips released ones. LockInfo.key is the partition key
 *   value, `value#sortKey` on a table with a sort key; with several tables, locks of every table
 *   but the first are shown as `<table>/<key>`. Lock names on a sort-key table must be
 *   `partition#sort` (split at the last `#`).
 * - The AWS client stores no time: for its locks the TTL is an estimate (leaseDuration minus how
 *   long this backend has seen the record version unchanged); meta.ttlSource says which it is.
 * - watch(): no push in DynamoDB; a Scan every `watchPollMs` (default 1000) diffed against the
 *   previous one, only while someone watches, plus an immediate GetItem of a key when a lockdeck
 *   client of this process changed it.
 * - forceRelease(): conditional on the record version read while checking the operator's
 *   expectation (fence, owner, or meta.valueHash = hash of the record version they saw), and it
 *   writes a NEW record version with isReleased = "1", so a live holder's next heartbeat fails
 *   (never the Java client's own trick of setting isReleased alone, which a live holder's
 *   heartbeats survive). ShedLock items: lockUntil = now, conditional on lockedAt and lockedBy.
 * - ping(): one GetItem.
 */
import { randomUUID } from 'node:crypto';

import {
  ConditionalCheckFailedException,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  ScanCommand,
  UpdateItemCommand,
  type AttributeValue,
  type DescribeTableCommandOutput,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';

import { AcquireTimeoutError, BackendUnavailableError, InvalidArgumentError, LockError, abortError } from '../../locks/errors';
import { ManagedHandle } from '../../locks/handle';
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
  WatchOptions,
} from '../../locks/types';
import { makeOwner, randomId, resolveAcquireOptions, tokenHash, validateName } from '../../locks/util';
import type { BackendConfig } from '../config';
import { AWS, LD, SHEDLOCK, itemKey, keyOf, parseItem, toLockInfo, type Item, type Loc, type Parsed, type Sighting, type TableSchema } from './layout';

export { createLockTable, type CreateLockTableOptions, type CreateLockTableResult } from './table';

export type DynamoDbBackendConfig = Extract<BackendConfig, { type: 'dynamodb' }>;

export interface DynamoDbBackendOptions {
  /** Waiters' poll period (default: config.pollMs, else 100 ms); ±30 % jitter is added. */
  pollMs?: number;
  /** watch()'s Scan period (default: config.watchPollMs, else 1000 ms). */
  watchPollMs?: number;
  /** How often a waiter refreshes its entry in the item (default 3000 ms). */
  waiterRefreshMs?: number;
  /** How long released items are kept before DynamoDB TTL may sweep them (default 30 days). */
  releasedItemRetentionSec?: number;
  /** Per-request timeout (default 5000 ms). */
  requestTimeoutMs?: number;
  /** Called for every HTTP request sent (retries included), with the command name: for the bench. */
  onRequest?: (command: string) => void;
  /**
   * Wake this instance's waiters and watchers directly when a lockdeck client of this process
   * changes a lock (default true). Off, they see only what polling sees, as another process
   * would: for the bench and for tests of the polling path.
   */
  localWakeups?: boolean;
  /** Credentials; default: the SDK's provider chain, or dummy ones for a loopback endpoint. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
}

const CAPABILITIES: Capabilities = Object.freeze({
  fencing: true,
  ttl: true,
  // Waiters record themselves in the lock item; they are not queued (whoever polls first wins).
  waiters: true,
  fifo: false,
  pushWatch: false,
  notifiesHolderOnForce: false,
  telemetry: false,
});

const DEFAULT_LIST_LIMIT = 1000;
/** Items one list()/watch scan reads at most, per table. */
const MAX_SCAN_ITEMS = 200_000;

// ---------------------------------------------------------------------------------------------
// In-process wake-ups: lockdeck clients of this process tell this process's waiters and watchers
// that a key changed, so they look again at once instead of at their next poll. Across processes
// everything is polled. Keyed by endpoint|region|table.

const bus = new Map<string, Set<(key: string) => void>>();

function emit(tableId: string, key: string): void {
  const set = bus.get(tableId);
  if (set) for (const l of [...set]) l(key);
}

function subscribe(tableId: string, l: (key: string) => void): () => void {
  let set = bus.get(tableId);
  if (!set) bus.set(tableId, (set = new Set()));
  set.add(l);
  return () => {
    set.delete(l);
    if (set.size === 0) bus.delete(tableId);
  };
}

// ---------------------------------------------------------------------------------------------

function isCondFailed(err: unknown): boolean {
  return err instanceof ConditionalCheckFailedException || (err as { name?: string })?.name === 'ConditionalCheckFailedException';
}

/** Whether the SDK retried the request that failed (then a write may have landed after all). */
function wasRetried(err: unknown): boolean {
  return ((err as { $metadata?: { attempts?: number } })?.$metadata?.attempts ?? 1) > 1;
}

function isLoopback(endpoint: string | undefined): boolean {
  if (!endpoint) return false;
  try {
    const h = new URL(endpoint).hostname;
    return h === '127.0.0.1' || h === 'localhost' || h === '[::1]' || h === '::1';
  } catch {
    return false;
  }
}

function jitter(ms: number): number {
  return Math.max(1, Math.round(ms * (0.7 + Math.random() * 0.6)));
}

export function createDynamoDbBackend(config: DynamoDbBackendConfig, opts: DynamoDbBackendOptions = {}): LockBackend {
  return new DynamoDbLockBackend(config, opts);
}

/** Makes the SDK client the backend uses (also handy for createLockTable). */
export function makeDynamoDbClient(config: Pick<DynamoDbBackendConfig, 'endpoint' | 'region'>, opts: DynamoDbBackendOptions = {}): DynamoDBClient {
  const env = process.env;
  const dummy = isLoopback(config.endpoint) && !env.AWS_ACCESS_KEY_ID && !env.AWS_PROFILE;
  const client = new DynamoDBClient({
    region: config.region,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(opts.credentials ? { credentials: opts.credentials } : dummy ? { credentials: { accessKeyId: 'lockdeck-local', secretAccessKey: 'lockdeck-local' } } : {}),
    maxAttempts: 3,
    requestHandler: { connectionTimeout: 2000, requestTimeout: opts.requestTimeoutMs ?? 5000 },
  });
  const onRequest = opts.onRequest;
  if (onRequest) {
    // Below the retry middleware (finalizeRequest, low priority): one call per HTTP attempt.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        onRequest(String((context as { commandName?: string }).commandName ?? 'unknown'));
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low', name: 'lockdeckRequestCounter' },
    );
  }
  return client;
}

/** One item as the inspector read it; `info` null = released (kept in the table). */
interface Described {
  key: string;
  parsed: Parsed;
  info: LockInfo | null;
}

interface AttemptOk {
  handle: ManagedHandle;
}

class DynamoDbLockBackend implements LockBackend {
  readonly type = 'dynamodb' as const;
  readonly capabilities = CAPABILITIES;
  readonly id: string;

  readonly client: DynamoDBClient;
  private readonly tables: string[];
  private readonly scope: string;
  private readonly schemas = new Map<string, Promise<TableSchema>>();
  private readonly instance = randomId(6);
  private readonly defaultOwner: OwnerInfo;
  readonly pollMs: number;
  readonly watchPollMs: number;
  private readonly waiterRefreshMs: number;
  private readonly retentionSec: number;
  private readonly held = new Set<ManagedHandle>();
  private readonly waits = new Set<(err: unknown) => void>();
  private readonly watchers = new Set<Watcher>();
  /** Record versions this backend saw, per tableId|key: the inspector's and tryAcquire's clock. */
  private readonly sightings = new Map<string, Sighting>();
  private closed = false;
  readonly localWakeups: boolean;

  constructor(config: DynamoDbBackendConfig, opts: DynamoDbBackendOptions) {
    this.localWakeups = opts.localWakeups !== false;
    this.id = config.id;
    this.tables = [...config.tables];
    this.scope = `${config.endpoint ?? 'aws'}|${config.region}`;
    this.defaultOwner = makeOwner(this.instance);
    this.pollMs = opts.pollMs ?? config.pollMs ?? 100;
    this.watchPollMs = opts.watchPollMs ?? config.watchPollMs ?? 1000;
    this.waiterRefreshMs = opts.waiterRefreshMs ?? 3000;
    this.retentionSec = opts.releasedItemRetentionSec ?? 30 * 24 * 3600;
    this.client = makeDynamoDbClient(config, opts);
  }

  // ----- tables and keys ---------------------------------------------------------------------

  tableId(table: string): string {
    return `${this.scope}|${table}`;
  }

  schema(table: string): Promise<TableSchema> {
    let p = this.schemas.get(table);
    if (!p) {
      p = this.send<DescribeTableCommandOutput>(new DescribeTableCommand({ TableName: table })).then((d) => {
        const ks = d.Table?.KeySchema ?? [];
        const pk = ks.find((k) => k.KeyType === 'HASH')?.AttributeName;
        if (!pk) throw new LockError(`table "${table}" has no partition key`);
        return { name: table, pk, sk: ks.find((k) => k.KeyType === 'RANGE')?.AttributeName ?? null };
      });
      this.schemas.set(table, p);
      // A failed DescribeTable (table missing, store down) is asked again next time.
      p.catch(() => this.schemas.delete(table));
    }
    return p;
  }

  /** Where lock `name` of our client lives: always the first configured table. */
  private async locateName(name: string): Promise<Loc> {
    const table = await this.schema(this.tables[0]!);
    if (table.sk === null) return { table, pk: name, sk: null, key: name };
    const i = name.lastIndexOf('#');
    if (i <= 0 || i === name.length - 1) {
      throw new InvalidArgumentError(`table "${table.name}" has a sort key (${table.sk}): lock names must be "partition#sort", got "${name}"`);
    }
    return { table, pk: name.slice(0, i), sk: name.slice(i + 1), key: name };
  }

  /** Where a LockInfo.key points: `<table>/...` for tables after the first, else the first. */
  async locateKey(key: string): Promise<Loc> {
    let tableName = this.tables[0]!;
    let rest = key;
    for (const t of this.tables.slice(1)) {
      if (key.startsWith(`${t}/`)) {
        tableName = t;
        rest = key.slice(t.length + 1);
        break;
      }
    }
    const table = await this.schema(tableName);
    if (table.sk === null) return { table, pk: rest, sk: null, key };
    const i = rest.lastIndexOf('#');
    if (i <= 0 || i === rest.length - 1) return { table, pk: rest, sk: null, key };
    return { table, pk: rest.slice(0, i), sk: rest.slice(i + 1), key };
  }

  private prefixed(table: string): boolean {
    return table !== this.tables[0];
  }

  // ----- requests ------------------------------------------------------------------------------

  /** Sends a command, mapping transport and service failures to lockdeck's errors. */
  async send<T>(cmd: { input: object }): Promise<T> {
    if (this.closed) throw new BackendUnavailableError(`backend "${this.id}" is closed`);
    try {
      return (await this.client.send(cmd as never)) as T;
    } catch (err) {
      if (isCondFailed(err)) throw err;
      const name = (err as { name?: string }).name ?? '';
      if (name === 'ResourceNotFoundException') {
        const table = (cmd.input as { TableName?: string }).TableName;
        throw new LockError(`DynamoDB table "${table}" does not exist (createLockTable() makes one in the lock client's layout)`, { cause: err });
      }
      if (name === 'ValidationException') throw new LockError(`DynamoDB refused the request: ${(err as Error).message}`, { cause: err });
      throw new BackendUnavailableError(`DynamoDB (${this.scope}) did not answer: ${(err as Error).message ?? name}`, { cause: err });
    }
  }

  async getItem(loc: Pick<Loc, 'table' | 'pk' | 'sk'>): Promise<Item | null> {
    const r = await this.send<{ Item?: Item }>(new GetItemCommand({ TableName: loc.table.name, Key: itemKey(loc), ConsistentRead: true }));
    return r.Item ?? null;
  }

  // ----- client face ---------------------------------------------------------------------------

  async tryAcquire(name: string, opts?: Partial<Omit<AcquireOptions, 'waitMs'>>): Promise<LockHandle | null> {
    validateName(name);
    const o = resolveAcquireOptions({ ...opts, waitMs: 0 });
    const loc = await this.locateName(name);
    const owner = o.owner !== undefined ? makeOwner(this.instance, o.owner) : this.defaultOwner;
    const first = await this.attempt(loc, o, owner, null, 0, null);
    if (first) return first.handle;
    // Refused: apply the takeover rules to what is there now (one GetItem).
    const item = await this.getItem(loc);
    const take = this.takeoverVersion(loc, item, performance.now(), this.sightingsFor(loc));
    if (take === undefined) return null;
    return (await this.attempt(loc, o, owner, take, 0, null))?.handle ?? null;
  }

  async acquire(name: string, opts?: Partial<AcquireOptions>): Promise<LockHandle> {
    validateName(name);
    const o = resolveAcquireOptions(opts);
    const loc = await this.locateName(name);
    const owner = o.owner !== undefined ? makeOwner(this.instance, o.owner) : this.defaultOwner;
    if (o.signal?.aborted) throw abortError(o.signal);
    const started = performance.now();
    const first = await this.attempt(loc, o, owner, null, 0, null);
    if (first) return first.handle;
    return this.wait(loc, o, owner, started);
  }

  /** A per-key view of sightings for tryAcquire (shared with the inspector). */
  private sightingsFor(loc: Loc): { get(): Sighting | undefined; set(s: Sighting): void } {
    const k = `${this.tableId(loc.table.name)}|${loc.key}`;
    return { get: () => this.sightings.get(k), set: (s) => void this.sightings.set(k, s) };
  }

  /**
   * What to take over, from one read: null = free (no item, or released), a record version =
   * expired (write conditionally on it), undefined = held.
   */
  private takeoverVersion(loc: Loc, item: Item | null, nowMono: number, sight: { get(): Sighting | undefined; set(s: Sighting): void }): string | null | undefined {
    if (!item) return null;
    const p = parseItem(item, Date.now());
    if (!p) return undefined; // not a lock layout we may overwrite
    if (p.format === 'shedlock') return undefined;
    if (p.released) return null;
    const seen = sight.get();
    if (!seen || seen.version !== p.version) {
      sight.set({ version: p.version, mono: nowMono, wall: Date.now() });
      return undefined;
    }
    // The AWS client's rule (LockItem.isExpired): same version for longer than leaseDuration.
    if (p.leaseMs !== null && nowMono - seen.mono > p.leaseMs) return p.version;
    void loc;
    return undefined;
  }

  /**
   * One conditional write that takes the lock if it is free (`take` null) or still at the expired
   * record version `take`. Null when refused.
   */
  private async attempt(loc: Loc, o: AcquireOptions, owner: OwnerInfo, take: string | null, waitedMs: number, waiterId: string | null): Promise<AttemptOk | null> {
    const rvn = randomUUID();
    const now = Date.now();
    const leaseStart = performance.now();
    const names: Record<string, string> = {
      '#pk': loc.table.pk,
      '#on': AWS.owner,
      '#ld': AWS.lease,
      '#rvn': AWS.rvn,
      '#ir': AWS.released,
      '#f': LD.fence,
      '#lrvn': LD.rvn,
      '#exp': LD.expiresAt,
      '#acq': LD.acquiredAt,
      '#h': LD.holder,
      '#lab': LD.labels,
      '#wt': LD.waited,
      '#rel': LD.releasedAt,
      '#frc': LD.forcedAt,
      '#ttl': LD.itemTtl,
    };
    const values: Record<string, AttributeValue> = {
      ':on': { S: owner.id },
      ':ld': { S: String(o.ttlMs) },
      ':rvn': { S: rvn },
      ':exp': { N: String(now + o.ttlMs) },
      ':now': { N: String(now) },
      ':h': { M: { host: { S: owner.host }, pid: { N: String(owner.pid) }, instance: { S: owner.instance } } },
      ':wt': { N: String(Math.max(0, Math.round(waitedMs))) },
      ':seed': { N: String(now * 1000) },
      ':one': { N: '1' },
    };
    const set = ['#on = :on', '#ld = :ld', '#rvn = :rvn', '#lrvn = :rvn', '#exp = :exp', '#acq = :now', '#h = :h', '#wt = :wt', '#f = if_not_exists(#f, :seed) + :one'];
    const remove = ['#ir', '#rel', '#frc', '#ttl'];
    if (o.labels && Object.keys(o.labels).length > 0) {
      values[':lab'] = { M: Object.fromEntries(Object.entries(o.labels).map(([k, v]) => [k, { S: v }])) };
      set.push('#lab = :lab');
    } else remove.push('#lab');
    if (waiterId) {
      names['#me'] = LD.waiterPrefix + waiterId;
      remove.push('#me');
    }
    let cond = 'attribute_not_exists(#pk) OR attribute_exists(#ir)';
    if (take !== null) {
      cond += ' OR #rvn = :take';
      values[':take'] = { S: take };
    }
    const input: UpdateItemCommandInput = {
      TableName: loc.table.name,
      Key: itemKey(loc),
      UpdateExpression: `SET ${set.join(', ')} REMOVE ${remove.join(', ')}`,
      ConditionExpression: cond,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
      ReturnValues: 'UPDATED_NEW',
    };
    let fence: string | undefined;
    try {
      const r = await this.send<{ Attributes?: Item }>(new UpdateItemCommand(input));
      fence = r.Attributes?.[LD.fence]?.N;
    } catch (err) {
      if (!isCondFailed(err)) throw err;
      if (!wasRetried(err)) return null;
      // A retried write may have landed the first time: then the item carries our version.
      const item = await this.getItem(loc);
      if (item?.[AWS.rvn]?.S !== rvn) return null;
      fence = item[LD.fence]?.N;
    }
    if (fence === undefined) throw new LockError(`DynamoDB did not return the fence of "${loc.key}"`);
    return { handle: this.makeHandle(loc, o, owner, rvn, fence, leaseStart, now + o.ttlMs) };
  }

  private makeHandle(loc: Loc, o: AcquireOptions, owner: OwnerInfo, firstRvn: string, fence: string, leaseStart: number, expiresAt: number): ManagedHandle {
    let rvn = firstRvn;
    const tableId = this.tableId(loc.table.name);
    const cond = 'attribute_exists(#pk) AND #rvn = :cur AND #on = :on';
    const handle: ManagedHandle = new ManagedHandle({
      backend: this.id,
      name: loc.key,
      fence,
      owner,
      ttlMs: o.ttlMs,
      leaseMs: o.ttlMs,
      leaseStart,
      expiresAt,
      autoRenew: o.autoRenew !== false,
      onDone: (h) => this.held.delete(h),
      ops: {
        // The Java client's heartbeat (UPDATE_LEASE_DURATION_AND_RVN under
        // PK_EXISTS_AND_OWNER_NAME_SAME_AND_RVN_SAME_CONDITION), plus our expiry and "not released".
        extend: async (ttlMs) => {
          const next = randomUUID();
          const now = Date.now();
          try {
            await this.send(
              new UpdateItemCommand({
                TableName: loc.table.name,
                Key: itemKey(loc),
                UpdateExpression: 'SET #ld = :ld, #rvn = :new, #lrvn = :new, #exp = :exp',
                ConditionExpression: `${cond} AND attribute_not_exists(#ir)`,
                ExpressionAttributeNames: { '#pk': loc.table.pk, '#ld': AWS.lease, '#rvn': AWS.rvn, '#lrvn': LD.rvn, '#exp': LD.expiresAt, '#on': AWS.owner, '#ir': AWS.released },
                ExpressionAttributeValues: { ':ld': { S: String(ttlMs) }, ':new': { S: next }, ':exp': { N: String(now + ttlMs) }, ':cur': { S: rvn }, ':on': { S: owner.id } },
              }),
            );
          } catch (err) {
            if (!isCondFailed(err)) throw err;
            if (!wasRetried(err)) return null;
            const item = await this.getItem(loc);
            if (item?.[AWS.rvn]?.S !== next) return null;
          }
          rvn = next;
          return now + ttlMs;
        },
        release: async () => {
          const now = Date.now();
          try {
            await this.send(
              new UpdateItemCommand({
                TableName: loc.table.name,
                Key: itemKey(loc),
                UpdateExpression: 'SET #ir = :ir, #rvn = :new, #lrvn = :new, #rel = :now, #ttl = :ttl REMOVE #exp',
                ConditionExpression: cond,
                ExpressionAttributeNames: { '#pk': loc.table.pk, '#ir': AWS.released, '#rvn': AWS.rvn, '#lrvn': LD.rvn, '#rel': LD.releasedAt, '#ttl': LD.itemTtl, '#exp': LD.expiresAt, '#on': AWS.owner },
                ExpressionAttributeValues: {
                  ':ir': { S: AWS.releasedValue },
                  ':new': { S: randomUUID() },
                  ':now': { N: String(now) },
                  ':ttl': { N: String(Math.floor(now / 1000) + this.retentionSec) },
                  ':cur': { S: rvn },
                  ':on': { S: owner.id },
                },
              }),
            );
          } catch (err) {
            // Someone forced or took it: nothing of ours left to release.
            if (!isCondFailed(err)) throw err;
          }
          emit(tableId, loc.key);
        },
      },
    });
    this.held.add(handle);
    emit(tableId, loc.key);
    return handle;
  }

  private async wait(loc: Loc, o: AcquireOptions, owner: OwnerInfo, started: number): Promise<LockHandle> {
    const waiterId = randomId(6);
    const since = Date.now();
    const deadline = o.waitMs === Infinity ? Infinity : started + o.waitMs;
    const tableId = this.tableId(loc.table.name);
    let registered = false;
    let lastRefresh = 0;
    let hinted = false;
    let sighting: Sighting | undefined;
    const sight = { get: () => sighting, set: (s: Sighting) => void (sighting = s) };
    let wake: (() => void) | null = null;
    let cancelled: unknown = null;
    const unsub = this.localWakeups
      ? subscribe(tableId, (key) => {
          if (key !== loc.key) return;
          hinted = true;
          wake?.();
        })
      : () => undefined;
    const cancel = (err: unknown) => {
      cancelled = err;
      wake?.();
    };
    this.waits.add(cancel);
    let won = false;
    try {
      for (;;) {
        if (cancelled) throw cancelled;
        if (o.signal?.aborted) throw abortError(o.signal);
        let take: string | null | undefined;
        let item: Item | null | undefined;
        if (hinted) {
          // A lockdeck client of this process just changed the lock: try the free-lock write first.
          hinted = false;
          take = null;
        } else {
          item = await this.getItem(loc);
          take = this.takeoverVersion(loc, item, performance.now(), sight);
        }
        if (take !== undefined) {
          const r = await this.attempt(loc, o, owner, take, performance.now() - started, registered ? waiterId : null);
          if (r) {
            won = true;
            return r.handle;
          }
        } else if (item) {
          const mine = item[LD.waiterPrefix + waiterId] !== undefined;
          if (!mine || performance.now() - lastRefresh >= this.waiterRefreshMs) {
            lastRefresh = performance.now();
            registered = (await this.putWaiter(loc, waiterId, owner.id, since)) || registered;
          }
        }
        const left = deadline - performance.now();
        if (left <= 0) throw new AcquireTimeoutError(loc.key, Math.round(performance.now() - started));
        if (hinted) continue;
        await new Promise<void>((resolve) => {
          const t = setTimeout(done, Math.min(jitter(this.pollMs), left));
          const onAbort = () => done();
          o.signal?.addEventListener('abort', onAbort, { once: true });
          function done() {
            clearTimeout(t);
            o.signal?.removeEventListener('abort', onAbort);
            wake = null;
            resolve();
          }
          wake = done;
        });
      }
    } finally {
      unsub();
      this.waits.delete(cancel);
      if (registered && !won) await this.removeWaiter(loc, waiterId).catch(() => undefined);
    }
  }

  /** Records (or refreshes) a waiter in a held lock's item. False when the item is gone or free. */
  private async putWaiter(loc: Loc, waiterId: string, owner: string, since: number): Promise<boolean> {
    try {
      await this.send(
        new UpdateItemCommand({
          TableName: loc.table.name,
          Key: itemKey(loc),
          UpdateExpression: 'SET #w = :w',
          ConditionExpression: 'attribute_exists(#pk) AND attribute_not_exists(#ir)',
          ExpressionAttributeNames: { '#pk': loc.table.pk, '#ir': AWS.released, '#w': LD.waiterPrefix + waiterId },
          ExpressionAttributeValues: { ':w': { M: { owner: { S: owner }, since: { N: String(since) }, seen: { N: String(Date.now()) } } } },
        }),
      );
      emit(this.tableId(loc.table.name), loc.key);
      return true;
    } catch (err) {
      if (isCondFailed(err)) return false;
      throw err;
    }
  }

  private async removeWaiter(loc: Loc, waiterId: string): Promise<void> {
    try {
      await this.send(
        new UpdateItemCommand({
          TableName: loc.table.name,
          Key: itemKey(loc),
          UpdateExpression: 'REMOVE #w',
          ConditionExpression: 'attribute_exists(#pk)',
          ExpressionAttributeNames: { '#pk': loc.table.pk, '#w': LD.waiterPrefix + waiterId },
        }),
      );
      emit(this.tableId(loc.table.name), loc.key);
    } catch (err) {
      if (!isCondFailed(err)) throw err;
    }
  }

  // ----- inspector face ------------------------------------------------------------------------

  /**
   * One raw item as the inspector sees it (null when it is no lock layout), updating the
   * sightings; `info` is null for a released item (whose `parsed` still says how it ended).
   */
  describe(table: TableSchema, item: Item, now: number, nowMono: number): Described | null {
    const pk = item[table.pk]?.S;
    if (pk === undefined) return null;
    const sk = table.sk === null ? null : (item[table.sk]?.S ?? null);
    if (table.sk !== null && sk === null) return null;
    const p = parseItem(item, now);
    if (!p) return null;
    const key = keyOf({ table, pk, sk }, this.prefixed(table.name));
    if (p.released) return { key, parsed: p, info: null };
    let sighting: Sighting | null = null;
    if (p.format === 'aws-lock-client') {
      const k = `${this.tableId(table.name)}|${key}`;
      const seen = this.sightings.get(k);
      if (seen && seen.version === p.version) sighting = seen;
      else this.sightings.set(k, (sighting = { version: p.version, mono: nowMono, wall: now }));
    }
    return { key, parsed: p, info: toLockInfo(this.id, { key }, p, now, sighting, nowMono) };
  }

  /** Every lock item of every table, held or released (paginated Scan). */
  async scanAll(): Promise<Described[]> {
    const out: Described[] = [];
    for (const t of this.tables) {
      const table = await this.schema(t);
      let start: Item | undefined;
      let read = 0;
      const live = new Set<string>();
      do {
        const r = await this.send<{ Items?: Item[]; LastEvaluatedKey?: Item }>(
          new ScanCommand({ TableName: t, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start } : {}) }),
        );
        const now = Date.now();
        const mono = performance.now();
        for (const item of r.Items ?? []) {
          const d = this.describe(table, item, now, mono);
          if (d) {
            out.push(d);
            if (d.info) live.add(`${this.tableId(t)}|${d.key}`);
          }
        }
        read += r.Items?.length ?? 0;
        start = r.LastEvaluatedKey;
      } while (start && read < MAX_SCAN_ITEMS);
      // Forget sightings of locks that are gone, so the map stays as big as the table's locks.
      if (!start) {
        const prefix = `${this.tableId(t)}|`;
        for (const k of this.sightings.keys()) if (k.startsWith(prefix) && !live.has(k)) this.sightings.delete(k);
      }
    }
    return out;
  }

  async readKey(key: string): Promise<Described | null> {
    const loc = await this.locateKey(key);
    const item = await this.getItem(loc);
    if (!item) return null;
    const d = this.describe(loc.table, item, Date.now(), performance.now());
    return d && d.key === key ? d : null;
  }

  async list(filter: ListFilter = {}): Promise<LockInfo[]> {
    const q = filter.q?.toLowerCase();
    const limit = filter.limit ?? DEFAULT_LIST_LIMIT;
    const all = await this.scanAll();
    return all
      .flatMap((d) => (d.info ? [d.info] : []))
      .filter((i) => !q || i.key.toLowerCase().includes(q))
      .sort((a, b) => a.key.localeCompare(b.key))
      .slice(0, limit);
  }

  async get(key: string): Promise<LockInfo | null> {
    if (typeof key !== 'string' || key.length === 0) return null;
    return (await this.readKey(key))?.info ?? null;
  }

  async forceRelease(key: string, expect: ForceReleaseExpectation & { valueHash?: string } = {}): Promise<ForceReleaseResult> {
    if (typeof key !== 'string' || key.length === 0) throw new InvalidArgumentError('key must be a non-empty string');
    const loc = await this.locateKey(key);
    const item = await this.getItem(loc);
    const d = item ? this.describe(loc.table, item, Date.now(), performance.now()) : null;
    if (!item || !d?.info || d.key !== key) return { status: 'not-found' };
    const info = d.info;
    const p = d.parsed;
    if (
      (expect.fence !== undefined && p.fence !== expect.fence) ||
      (expect.owner !== undefined && p.owner !== expect.owner) ||
      (expect.valueHash !== undefined && tokenHash(p.version) !== expect.valueHash)
    ) {
      return { status: 'changed', lock: info };
    }
    const now = Date.now();
    try {
      if (p.format === 'shedlock') {
        // lock-formats.md §4.2: lockUntil = now, conditional on the lockedAt/lockedBy we saw.
        await this.send(
          new UpdateItemCommand({
            TableName: loc.table.name,
            Key: itemKey(loc),
            UpdateExpression: 'SET #u = :now',
            ConditionExpression: '#u = :u AND #a = :a AND #b = :b',
            ExpressionAttributeNames: { '#u': SHEDLOCK.until, '#a': SHEDLOCK.at, '#b': SHEDLOCK.by },
            ExpressionAttributeValues: {
              ':now': { S: new Date(now).toISOString() },
              ':u': item[SHEDLOCK.until]!,
              ':a': item[SHEDLOCK.at] ?? { S: '' },
              ':b': item[SHEDLOCK.by] ?? { S: '' },
            },
          }),
        );
      } else {
        // A NEW record version with isReleased: the holder's next heartbeat (conditional on its
        // version) fails, whether it is lockdeck or the Java client.
        await this.send(
          new UpdateItemCommand({
            TableName: loc.table.name,
            Key: itemKey(loc),
            UpdateExpression: 'SET #ir = :ir, #rvn = :new, #rel = :now, #frc = :now, #ttl = :ttl',
            ConditionExpression: 'attribute_exists(#pk) AND #rvn = :seen AND #on = :on AND attribute_not_exists(#ir)',
            ExpressionAttributeNames: { '#pk': loc.table.pk, '#ir': AWS.released, '#rvn': AWS.rvn, '#rel': LD.releasedAt, '#frc': LD.forcedAt, '#ttl': LD.itemTtl, '#on': AWS.owner },
            ExpressionAttributeValues: {
              ':ir': { S: AWS.releasedValue },
              ':new': { S: randomUUID() },
              ':now': { N: String(now) },
              ':ttl': { N: String(Math.floor(now / 1000) + this.retentionSec) },
              ':seen': { S: p.version },
              ':on': { S: p.owner ?? '' },
            },
          }),
        );
      }
    } catch (err) {
      if (!isCondFailed(err)) throw err;
      const again = await this.readKey(key);
      return again?.info ? { status: 'changed', lock: again.info } : { status: 'not-found' };
    }
    emit(this.tableId(loc.table.name), key);
    return { status: 'released', lock: info };
  }

  watch(onChange: (change: LockChange) => void, opts?: WatchOptions): Unsubscribe {
    void opts; // no client telemetry on this store (capabilities.telemetry = false)
    const w = new Watcher(this, onChange, this.tables.map((t) => this.tableId(t)));
    this.watchers.add(w);
    w.start();
    return () => {
      w.stop();
      this.watchers.delete(w);
    };
  }

  async ping(): Promise<number> {
    const table = await this.schema(this.tables[0]!);
    const t0 = performance.now();
    await this.send(new GetItemCommand({ TableName: table.name, Key: itemKey({ table, pk: 'lockdeck#ping', sk: 'ping' }) }));
    return performance.now() - t0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const w of [...this.watchers]) w.stop();
    this.watchers.clear();
    for (const c of [...this.waits]) c(new BackendUnavailableError(`backend "${this.id}" closed while waiting`));
    await Promise.all([...this.held].map((h) => h.release().catch(() => undefined)));
    this.closed = true;
    this.client.destroy();
  }
}

/**
 * Poll-based watch: a Scan every watchPollMs, diffed against the last one, and a GetItem of a key
 * a lockdeck client of this process just changed. One worker does all reads in order, so an older
 * answer never overwrites a newer one.
 */
class Watcher {
  private readonly state = new Map<string, { info: LockInfo; parsed: Parsed; identity: string; seenAt: number }>();
  private readonly dirty = new Set<string>();
  private fullDue = true;
  private baseline = false;
  private running = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private unsubs: Array<() => void> = [];

  constructor(
    private readonly backend: DynamoDbLockBackend,
    private readonly onChange: (c: LockChange) => void,
    private readonly tableIds: string[],
  ) {}

  start(): void {
    for (const id of this.backend.localWakeups ? this.tableIds : []) {
      this.unsubs.push(
        subscribe(id, (key) => {
          this.dirty.add(key);
          this.kick();
        }),
      );
    }
    this.timer = setInterval(() => {
      this.fullDue = true;
      this.kick();
    }, this.backend.watchPollMs);
    this.timer.unref?.();
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const u of this.unsubs) u();
    this.unsubs = [];
  }

  private kick(): void {
    if (this.running || this.stopped) return;
    this.running = true;
    void this.loop().finally(() => {
      this.running = false;
      if (!this.stopped && (this.fullDue || (this.baseline && this.dirty.size > 0))) this.kick();
    });
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        if (this.fullDue) {
          this.fullDue = false;
          this.dirty.clear();
          const all = await this.backend.scanAll();
          if (this.stopped) return;
          const seen = new Set<string>();
          for (const d of all) {
            seen.add(d.key);
            this.apply(d.key, d);
          }
          for (const k of [...this.state.keys()]) if (!seen.has(k)) this.apply(k, null);
          this.baseline = true;
        } else if (this.baseline && this.dirty.size > 0) {
          const key = this.dirty.values().next().value as string;
          this.dirty.delete(key);
          const d = await this.backend.readKey(key);
          if (this.stopped) return;
          this.apply(key, d);
        } else return;
      } catch {
        // The store is down or slow: the next Scan tries again.
        return;
      }
    }
  }

  private emit(c: LockChange): void {
    if (!this.baseline || this.stopped) return;
    try {
      this.onChange(c);
    } catch {
      // A watcher's bug must not stop the watch.
    }
  }

  /** `d` null: no item at all; `d.info` null: a released item (its parsed fields say how). */
  private apply(key: string, d: Described | null): void {
    const prev = this.state.get(key);
    const now = Date.now();
    const base = { backend: this.backend.id, key, at: now };
    if (!d?.info) {
      if (!prev) return;
      this.state.delete(key);
      const ended = d?.parsed ?? null;
      const type: LockChange['type'] = ended?.forced ? 'forced' : ended === null && prev.info.expiresAt !== null && prev.info.expiresAt <= now ? 'expired' : 'released';
      const to = ended?.releasedAt ?? now;
      this.emit({ ...base, type, lock: prev.info, heldMs: Math.max(0, to - (prev.info.acquiredAt ?? prev.seenAt)) });
      return;
    }
    const info = d.info;
    const p = d.parsed;
    const identity = `${p.format}|${p.fence ?? ''}|${p.owner ?? ''}|${p.format === 'shedlock' ? p.version : ''}`;
    const acquired: LockChange = { ...base, type: 'acquired', lock: info, ...(p.waitedMs !== null ? { waitedMs: p.waitedMs } : {}) };
    if (!prev) {
      this.state.set(key, { info, parsed: p, identity, seenAt: now });
      this.emit(acquired);
      return;
    }
    if (prev.identity !== identity) {
      // Another holder since the last look: the previous one released (or lost) it in between.
      this.state.set(key, { info, parsed: p, identity, seenAt: now });
      const type: LockChange['type'] = prev.info.expiresAt !== null && prev.info.expiresAt <= (p.acquiredAt ?? now) ? 'expired' : 'released';
      this.emit({ ...base, type, lock: prev.info, heldMs: Math.max(0, (p.acquiredAt ?? now) - (prev.info.acquiredAt ?? prev.seenAt)) });
      this.emit(acquired);
      return;
    }
    const changed = prev.info.waiters.length !== info.waiters.length || prev.info.health !== info.health;
    this.state.set(key, { info, parsed: p, identity, seenAt: prev.seenAt });
    if (changed) this.emit({ ...base, type: 'changed', lock: info });
  }
}
