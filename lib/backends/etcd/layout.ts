/**
 * The etcd lock layouts lockdeck writes and recognises (shared/reference/lock-formats.md §3).
 *
 * - Go `concurrency.Mutex` (etcd-io/etcd client/v3/concurrency/mutex.go), which `etcdctl lock`
 *   (etcdctl/ctlv3/command/lock_command.go) and the server's v3lock service
 *   (server/etcdserver/api/v3lock/lock.go) reuse: key `<pfx>/<lease id, lowercase hex, no padding>`
 *   (`fmt.Sprintf("%s%x", pfx+"/", lease)`), empty value, attached to the session lease. The lowest
 *   create revision under the prefix holds. lockdeck's own mutex is this layout with a JSON value
 *   (Go never reads the value). concurrency `Election` (election.go) uses the same keys with the
 *   candidate's value: a non-empty foreign value marks an election.
 * - python-etcd3 `Lock` (kragniz/python-etcd3 etcd3/locks.py): key `/locks/<name>`, value the 16 raw
 *   bytes of a `uuid.uuid1()`, on a lease (TTL 60 s, no keepalive).
 * - microsoft/etcd3 npm `Lock` (node_modules/etcd3/lib/lock.js, src/lock.ts): the key as given, empty
 *   value, on a lease of its own (TTL 30 s); released by revoking the lease.
 * - ShedLock's etcd provider (lukas-krecan/ShedLock providers/etcd/.../EtcdLockProvider.java): value
 *   `ADDED:<ISO time>@<hostname>` on a lease.
 */

/** The value lockdeck writes on its mutex keys. Go's clients ignore it (they only compare create revisions). */
export interface LockdeckValue {
  lockdeck: 1;
  owner: string;
  host: string;
  pid: number;
  instance: string;
  /** Client wall clock when the key was written, i.e. when the contender queued (etcd stores no time). */
  since: number;
  /** The lease length the holder renews to. */
  ttlMs: number;
  labels?: Record<string, string>;
}

/** Lowercase hex of a lease id (a positive int64 in decimal, as the gRPC client gives it). */
export function leaseHex(lease: string | bigint): string {
  return BigInt(lease).toString(16);
}

/** Go's contender key for `name` on `lease`. */
export function contenderKey(name: string, lease: string): string {
  return `${name}/${leaseHex(lease)}`;
}

const HEX_SEGMENT = /^[0-9a-f]{1,16}$/;

/**
 * The lock name of a Go-layout contender key, or null when the key is not one: its last segment
 * must be the hex of the lease the key is attached to (true of every Go/etcdctl/v3lock key, and
 * practically never of anything else).
 */
export function contenderNameOf(key: string, lease: string): string | null {
  if (lease === '0' || lease === '') return null;
  const slash = key.lastIndexOf('/');
  if (slash < 0) return null;
  const seg = key.slice(slash + 1);
  if (!HEX_SEGMENT.test(seg) || seg !== leaseHex(lease)) return null;
  return key.slice(0, slash);
}

/**
 * True when `key` is a direct contender of `name`: `<name>/<hex>` with no further `/`.
 *
 * Go counts every key under `<name>/` (mutex.go `OpGet(pfx, WithFirstCreate())`), so Go's lock `a`
 * also waits for the keys of lock `a/b`. That is safe (Go only waits more) but it would make lock
 * `a` look held by whoever holds `a/b`. lockdeck counts only direct children, which keeps the two
 * locks apart and still excludes Go correctly: a Go holder has no lower key under the prefix at all,
 * a lockdeck holder has no lower direct key, so both can never hold at once.
 */
export function isDirectContender(name: string, key: string): boolean {
  if (!key.startsWith(`${name}/`)) return false;
  return HEX_SEGMENT.test(key.slice(name.length + 1));
}

export function parseLockdeckValue(value: Buffer): LockdeckValue | null {
  if (value.length < 12 || value[0] !== 0x7b) return null;
  try {
    const v = JSON.parse(value.toString('utf8')) as Partial<LockdeckValue>;
    if (v && v.lockdeck === 1 && typeof v.owner === 'string') return v as LockdeckValue;
  } catch {
    // not ours
  }
  return null;
}

/** python-etcd3's value: 16 raw bytes of a version-1 UUID (RFC 4122 variant). */
export function parsePythonUuid(key: string, value: Buffer): { uuid: string; createdAt: number; node: string } | null {
  if (!key.startsWith('/locks/') || key.length === '/locks/'.length || value.length !== 16) return null;
  if (value[6]! >> 4 !== 1 || (value[8]! & 0xc0) !== 0x80) return null;
  const hex = value.toString('hex');
  const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  // uuid1 time: 100 ns intervals since 1582-10-15 (RFC 4122 §4.1.4), split over three fields.
  const timeLow = BigInt(`0x${hex.slice(0, 8)}`);
  const timeMid = BigInt(`0x${hex.slice(8, 12)}`);
  const timeHi = BigInt(`0x${hex.slice(12, 16)}`) & 0x0fffn;
  const ticks = (timeHi << 48n) | (timeMid << 32n) | timeLow;
  const createdAt = Number((ticks - 122192928000000000n) / 10000n);
  const node = hex.slice(20).replace(/(..)(?=.)/g, '$1:');
  return { uuid, createdAt, node };
}

/** ShedLock's etcd value `ADDED:<ISO instant>@<hostname>`. */
export function parseShedLock(value: Buffer): { lockedAt: number | null; host: string } | null {
  if (value.length < 8 || value.length > 512) return null;
  const m = /^ADDED:([^@]+)@(.+)$/.exec(value.toString('utf8'));
  if (!m) return null;
  const t = Date.parse(m[1]!);
  return { lockedAt: Number.isNaN(t) ? null : t, host: m[2]! };
}

/** The smallest key greater than every key that starts with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // every byte 0xff: to the end of the keyspace
}
