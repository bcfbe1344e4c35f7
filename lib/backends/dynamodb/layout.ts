/**
 * The lock item layouts found in DynamoDB lock tables, and how a raw item becomes what the
 * inspector shows. Pure functions: index.ts does the I/O.
 *
 * 1. awslabs/amazon-dynamodb-lock-client (AmazonDynamoDBLockClient.java, LockItem.java, 1.4.0;
 *    shared/reference/lock-formats.md §4.1). Attribute names are the Java constants OWNER_NAME,
 *    LEASE_DURATION, RECORD_VERSION_NUMBER, IS_RELEASED, DATA, all type S except `data` (B):
 *      <partition key> S   lock name ("key" by default, DEFAULT_PARTITION_KEY_NAME)
 *      [<sort key> S]
 *      ownerName S         hostname + UUID, no separator
 *      leaseDuration S     milliseconds as a decimal string
 *      recordVersionNumber S  a fresh UUID on every acquire and heartbeat
 *      isReleased S        "1"; its mere presence means released (createLockItem: containsKey)
 *      data B              optional payload
 *    No time is stored: a reader calls a lock expired when it saw the same recordVersionNumber for
 *    leaseDuration on its own monotonic clock (LockItem.isExpired).
 *
 * 2. lockdeck: the same item (so that the Java client and lockdeck respect each other's locks),
 *    plus attributes the Java client carries along untouched as "additional attributes":
 *      lockdeckFence N       per-lock counter, +1 on every lockdeck acquire; survives our releases
 *                            (we mark items released instead of deleting them)
 *      lockdeckRvn S         the recordVersionNumber lockdeck last wrote: when it differs from the
 *                            item's, a foreign client rewrote the item and the lockdeck fields
 *                            below are stale (the item is shown as the AWS layout)
 *      lockdeckExpiresAt N   holder's wall clock at acquire/renewal + lease (epoch ms)
 *      lockdeckAcquiredAt N  holder's wall clock at acquire (epoch ms)
 *      lockdeckHolder M      { host S, pid N, instance S } and lockdeckLabels M (S values)
 *      lockdeckWaitedMs N    how long the holder waited for it (contention statistics)
 *      lockdeckReleasedAt N, lockdeckForcedAt N   on released items
 *      lockdeckItemTtl N     epoch seconds; the table's TTL attribute, set on released items only
 *      lockdeckWaiter_<id> M { owner S, since N, seen N }: a lockdeck waiter, refreshed by it
 *
 * 3. ShedLock's DynamoDB provider (lukas-krecan/ShedLock providers/dynamodb/
 *    shedlock-provider-dynamodb2/.../DynamoDBLockProvider.java, DynamoDBUtils.java): hash key
 *    `_id`, `lockUntil` / `lockedAt` ISO-8601 UTC strings with 3 fractional digits (they sort as
 *    text), `lockedBy` hostname. Held iff lockUntil > now (by the writer's clock). Items are never
 *    deleted, so a past `lockUntil` is simply a free lock.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';

import { lockHealth } from '../../locks/health';
import { tokenHash } from '../../locks/util';
import type { LockInfo, WaiterInfo } from '../../locks/types';

export type Item = Record<string, AttributeValue>;

/** Attribute names of the AWS lock client (AmazonDynamoDBLockClient.java constants). */
export const AWS = {
  owner: 'ownerName',
  lease: 'leaseDuration',
  rvn: 'recordVersionNumber',
  released: 'isReleased',
  releasedValue: '1',
  data: 'data',
} as const;

/** lockdeck's extra attributes (ignored by the AWS client). */
export const LD = {
  fence: 'lockdeckFence',
  rvn: 'lockdeckRvn',
  expiresAt: 'lockdeckExpiresAt',
  acquiredAt: 'lockdeckAcquiredAt',
  holder: 'lockdeckHolder',
  labels: 'lockdeckLabels',
  waited: 'lockdeckWaitedMs',
  releasedAt: 'lockdeckReleasedAt',
  forcedAt: 'lockdeckForcedAt',
  itemTtl: 'lockdeckItemTtl',
  waiterPrefix: 'lockdeckWaiter_',
} as const;

/** ShedLock's attribute names (DynamoDBLockProvider.java). */
export const SHEDLOCK = { id: '_id', until: 'lockUntil', at: 'lockedAt', by: 'lockedBy' } as const;

/** A table's key schema, from DescribeTable. */
export interface TableSchema {
  name: string;
  pk: string;
  sk: string | null;
}

/** Where a lock lives: table, key attributes, and the LockInfo.key it is shown under. */
export interface Loc {
  table: TableSchema;
  pk: string;
  sk: string | null;
  key: string;
}

export function keyOf(loc: Pick<Loc, 'table' | 'pk' | 'sk'>, prefixed: boolean): string {
  const base = loc.sk === null ? loc.pk : `${loc.pk}#${loc.sk}`;
  return prefixed ? `${loc.table.name}/${base}` : base;
}

export function itemKey(loc: Pick<Loc, 'table' | 'pk' | 'sk'>): Item {
  const k: Item = { [loc.table.pk]: { S: loc.pk } };
  if (loc.table.sk !== null && loc.sk !== null) k[loc.table.sk] = { S: loc.sk };
  return k;
}

const s = (item: Item, name: string): string | null => item[name]?.S ?? null;
const n = (item: Item, name: string): number | null => {
  const v = item[name]?.N;
  if (v === undefined) return null;
  const x = Number(v);
  return Number.isFinite(x) ? x : null;
};

export type Format = 'lockdeck' | 'aws-lock-client' | 'shedlock';

/** One item as read, before the console's view of time is applied. */
export interface Parsed {
  format: Format;
  released: boolean;
  owner: string | null;
  /** AWS layout: the record version (changes on every heartbeat). ShedLock: lockedAt+lockedBy. */
  version: string;
  leaseMs: number | null;
  fence: string | null;
  expiresAt: number | null;
  acquiredAt: number | null;
  waitedMs: number | null;
  releasedAt: number | null;
  forced: boolean;
  labels: Record<string, string> | undefined;
  holder: { host: string | null; pid: number | null; instance: string | null } | null;
  waiters: Array<{ id: string; owner: string | null; since: number | null; seen: number | null }>;
  hasData: boolean;
}

/** Recognises an item, or null when it is none of the known layouts. */
export function parseItem(item: Item, now: number): Parsed | null {
  const rvn = s(item, AWS.rvn);
  if (rvn !== null && s(item, AWS.owner) !== null && s(item, AWS.lease) !== null) {
    const ours = s(item, LD.rvn) === rvn && item[LD.fence]?.N !== undefined;
    const leaseMs = Number(s(item, AWS.lease));
    const waiters: Parsed['waiters'] = [];
    for (const [name, v] of Object.entries(item)) {
      if (!name.startsWith(LD.waiterPrefix) || !v.M) continue;
      waiters.push({ id: name.slice(LD.waiterPrefix.length), owner: v.M.owner?.S ?? null, since: numOf(v.M.since), seen: numOf(v.M.seen) });
    }
    let labels: Record<string, string> | undefined;
    const h = item[LD.holder]?.M;
    if (ours && item[LD.labels]?.M) {
      labels = {};
      for (const [k, v] of Object.entries(item[LD.labels]!.M!)) if (v.S !== undefined) labels[k] = v.S;
    }
    return {
      format: ours ? 'lockdeck' : 'aws-lock-client',
      // The Java client tests presence, not value (createLockItem: item.containsKey(IS_RELEASED)).
      released: item[AWS.released] !== undefined,
      owner: s(item, AWS.owner),
      version: rvn,
      leaseMs: Number.isFinite(leaseMs) && leaseMs >= 0 ? leaseMs : null,
      // A fence only means something on an item whose lockdeck fields are current.
      fence: ours ? item[LD.fence]!.N! : null,
      expiresAt: ours ? n(item, LD.expiresAt) : null,
      acquiredAt: ours ? n(item, LD.acquiredAt) : null,
      waitedMs: ours ? n(item, LD.waited) : null,
      releasedAt: n(item, LD.releasedAt),
      forced: item[LD.forcedAt] !== undefined,
      labels,
      holder: ours && h ? { host: h.host?.S ?? null, pid: numOf(h.pid), instance: h.instance?.S ?? null } : null,
      waiters,
      hasData: item[AWS.data] !== undefined,
    };
  }
  const until = s(item, SHEDLOCK.until);
  if (until !== null && (item[SHEDLOCK.at] !== undefined || item[SHEDLOCK.by] !== undefined)) {
    const at = s(item, SHEDLOCK.at);
    const by = s(item, SHEDLOCK.by);
    const untilMs = Date.parse(until);
    return {
      format: 'shedlock',
      // ShedLock never deletes: a lock whose lockUntil has passed is free, not "expired".
      released: !(untilMs > now),
      owner: by,
      version: `${at ?? ''}|${by ?? ''}`,
      leaseMs: null,
      fence: null,
      expiresAt: Number.isFinite(untilMs) ? untilMs : null,
      acquiredAt: at !== null && Number.isFinite(Date.parse(at)) ? Date.parse(at) : null,
      waitedMs: null,
      releasedAt: null,
      forced: false,
      labels: undefined,
      holder: null,
      waiters: [],
      hasData: false,
    };
  }
  return null;
}

function numOf(v: AttributeValue | undefined): number | null {
  if (v?.N === undefined) return null;
  const x = Number(v.N);
  return Number.isFinite(x) ? x : null;
}

/**
 * When an inspector first saw an AWS-layout record version (its own clocks). The AWS client
 * stores no time, so a remaining TTL can only be estimated by watching the version: the lease
 * runs out at most `leaseDuration` after the version was first seen unchanged.
 */
export interface Sighting {
  version: string;
  /** performance.now() when first seen. */
  mono: number;
  /** Date.now() at the same moment, for display. */
  wall: number;
}

/** Waiter entries not refreshed for this long are a crashed waiter's leftovers and are not shown. */
export const WAITER_STALE_MS = 10_000;

export function toLockInfo(
  backend: string,
  loc: Pick<Loc, 'key'>,
  p: Parsed,
  now: number,
  sighting: Sighting | null,
  nowMono: number,
): LockInfo {
  let expiresAt: number | null = null;
  let ttlSource: string;
  const meta: NonNullable<LockInfo['meta']> = {};
  if (p.format === 'aws-lock-client') {
    if (sighting && p.leaseMs !== null) {
      const unchangedMs = Math.max(0, nowMono - sighting.mono);
      expiresAt = now + (p.leaseMs - unchangedMs);
      meta.versionFirstSeenAt = sighting.wall;
      meta.versionUnchangedMs = Math.round(unchangedMs);
    }
    ttlSource = 'estimated: leaseDuration minus the time this console has seen the record version unchanged (the AWS lock client stores no times)';
    meta.leaseDurationMs = p.leaseMs;
    meta.valueHash = tokenHash(p.version);
    meta.hasData = p.hasData;
  } else if (p.format === 'lockdeck') {
    expiresAt = p.expiresAt;
    ttlSource = "stored: lockdeckExpiresAt, written from the holder's wall clock";
    meta.leaseDurationMs = p.leaseMs;
    meta.valueHash = tokenHash(p.version);
    if (p.holder?.host) meta.host = p.holder.host;
    if (p.holder?.pid !== null && p.holder?.pid !== undefined) meta.pid = p.holder.pid;
    if (p.waitedMs !== null) meta.waitedMs = p.waitedMs;
  } else {
    expiresAt = p.expiresAt;
    ttlSource = "stored: ShedLock lockUntil, written from the holder's wall clock";
    meta.valueHash = tokenHash(p.version);
  }
  meta.ttlSource = ttlSource;
  const waiters: WaiterInfo[] = p.waiters
    .filter((w) => w.seen !== null && now - w.seen < WAITER_STALE_MS)
    .sort((a, b) => (a.since ?? 0) - (b.since ?? 0))
    .map((w) => ({ owner: w.owner, since: w.since }));
  const ttlMs = expiresAt === null ? null : expiresAt - now;
  const info: LockInfo = {
    backend,
    key: loc.key,
    format: p.format,
    kind: 'mutex',
    owner: p.owner,
    holders: [{ owner: p.owner, fence: p.fence, acquiredAt: p.acquiredAt }],
    fence: p.fence,
    acquiredAt: p.acquiredAt,
    expiresAt,
    ttlMs,
    waiters,
    health: expiresAt === null ? 'unknown' : lockHealth({ now, expiresAt, ttlMs: p.leaseMs ?? null }),
    meta,
  };
  if (p.labels && Object.keys(p.labels).length > 0) info.labels = p.labels;
  return info;
}
