/**
 * The lock layouts found in ZooKeeper, by node name (shared/reference/lock-formats.md §2), and who
 * holds what among a lock parent's contenders. Pure functions: index.ts does the I/O.
 *
 * | layout                    | contender name                         | role  |
 * |---------------------------|----------------------------------------|-------|
 * | lockdeck, Curator mutex   | `_c_<uuid>-lock-<seq>`                 | write |
 * | Curator RW lock           | `_c_<uuid>-__WRIT__<seq>` / `__READ__` | write / read |
 * | Curator SemaphoreV2 lease | `_c_<uuid>-lease-<seq>` under `leases/`| lease |
 * | kazoo Lock / WriteLock    | `<uuid4hex>__lock__<seq>`              | write |
 * | kazoo ReadLock            | `<uuid4hex>__rlock__<seq>`             | read  |
 *
 * `<seq>` is ZooKeeper's 10-digit sequence suffix, taken from the parent's cversion (it can go
 * negative past 2^31, formatted by `%010d`).
 */

export type Role = 'write' | 'read' | 'lease';
export type Family = 'curator-mutex' | 'curator-rwlock' | 'curator-semaphore' | 'kazoo-lock' | 'kazoo-rwlock';

export interface Contender {
  readonly name: string;
  readonly seq: number;
  readonly role: Role;
  readonly family: Family;
}

const SEQ = '(-?\\d{10}|-\\d{9})';
const PATTERNS: ReadonlyArray<readonly [RegExp, Role, Family]> = [
  [new RegExp(`-lock-${SEQ}$`), 'write', 'curator-mutex'],
  [new RegExp(`__WRIT__${SEQ}$`), 'write', 'curator-rwlock'],
  [new RegExp(`__READ__${SEQ}$`), 'read', 'curator-rwlock'],
  [new RegExp(`__lock__${SEQ}$`), 'write', 'kazoo-lock'],
  [new RegExp(`__rlock__${SEQ}$`), 'read', 'kazoo-rwlock'],
  [new RegExp(`-lease-${SEQ}$`), 'lease', 'curator-semaphore'],
];

export function parseContender(name: string): Contender | null {
  for (const [re, role, family] of PATTERNS) {
    const m = re.exec(name);
    if (m) return { name, seq: Number(m[1]), role, family };
  }
  return null;
}

/** Orders by sequence; at equal sequence (a Curator downgrade read re-uses its write's) the writer first. */
export function bySeq(a: Contender, b: Contender): number {
  return a.seq - b.seq || (a.role === b.role ? a.name.localeCompare(b.name) : a.role === 'write' ? -1 : 1);
}

/** The contenders of a lock parent, sorted; `names` may be tens of thousands long. */
export function contendersOf(names: readonly string[]): { contenders: Contender[]; others: string[] } {
  const contenders: Contender[] = [];
  const others: string[] = [];
  for (const n of names) {
    const c = parseContender(n);
    if (c) contenders.push(c);
    else others.push(n);
  }
  contenders.sort(bySeq);
  return { contenders, others };
}

/**
 * Who holds and who waits, by the recipes' own rules, conservatively where they differ:
 * - a writer (lockdeck, Curator mutex / `__WRIT__`, kazoo `__lock__`) holds iff it is the lowest of
 *   all contenders (Curator's writer and kazoo's WriteLock rule; a plain kazoo Lock ignores
 *   readers, but cannot be told apart from a WriteLock by name);
 * - a reader holds iff no writer has a lower sequence (equal: Curator's downgrade read);
 * - every semaphore lease holds (the lease count limit is not stored in ZooKeeper).
 * Waiters are the rest, in sequence order. `sorted` must be sorted with {@link bySeq}.
 */
export function arrange(sorted: readonly Contender[]): { holders: Contender[]; waiters: Contender[] } {
  const holders: Contender[] = [];
  const waiters: Contender[] = [];
  let firstWrite: number | null = null;
  for (const c of sorted) if (c.role === 'write' && (firstWrite === null || c.seq < firstWrite)) firstWrite = c.seq;
  const lowest = sorted[0]?.seq;
  let writerHeld = false;
  for (const c of sorted) {
    let holds: boolean;
    if (c.role === 'lease') holds = true;
    else if (c.role === 'read') holds = firstWrite === null || c.seq < firstWrite || (c.seq === firstWrite && writerHeld);
    else holds = !writerHeld && c.seq === lowest && holders.every((h) => h.role !== 'read');
    if (holds && c.role === 'write') writerHeld = true;
    (holds ? holders : waiters).push(c);
  }
  return { holders, waiters };
}

/** The write-contenders a lockdeck mutex must wait for: every lock-ish contender, leases aside. */
export function mutexContenders(names: readonly string[]): Contender[] {
  return contendersOf(names).contenders.filter((c) => c.role !== 'lease');
}

/** kazoo Semaphore lease holders are plain ephemeral children named by a uuid4 hex. */
export const KAZOO_SEMAPHORE_LEASE = /^[0-9a-f]{32}$/;

/** Data written by lockdeck into its contender nodes. */
export interface LockdeckNodeData {
  lockdeck: 1;
  owner: string;
  host: string;
  pid: number;
  instance: string;
  labels?: Record<string, string>;
}

export function parseLockdeckData(data: Buffer): LockdeckNodeData | null {
  if (data.length < 12 || data[0] !== 0x7b /* { */) return null;
  try {
    const v = JSON.parse(data.toString('utf8')) as Partial<LockdeckNodeData>;
    return v && v.lockdeck === 1 && typeof v.owner === 'string' ? (v as LockdeckNodeData) : null;
  } catch {
    return null;
  }
}

/** Node data as a short line of text when it reads as one (an IP, a host name, an identifier). */
export function dataText(data: Buffer): string | null {
  if (data.length === 0 || data.length > 200) return null;
  const s = data.toString('utf8').trim();
  // eslint-disable-next-line no-control-regex
  if (!s || /[\u0000-\u0008\u000e-\u001f\u007f\ufffd]/.test(s)) return null;
  return s;
}

/**
 * kazoo's NonBlockingLease (kazoo/recipe/lease.py): a persistent node `<path>/lease_holder` with
 * JSON `{"version": 1, "holder": <identifier>, "end": "%Y-%m-%dT%H:%M:%S"}`, `end` in naive UTC
 * from the writer's clock. The only ZooKeeper layout here with a wall-clock expiry: the node stays
 * after `end` until another client takes the lease over.
 */
export const KAZOO_LEASE_NODE = 'lease_holder';

export function parseKazooLease(data: Buffer): { holder: string; end: number } | null {
  if (data.length === 0 || data.length > 4096 || data[0] !== 0x7b /* { */) return null;
  try {
    const v = JSON.parse(data.toString('utf8')) as { version?: unknown; holder?: unknown; end?: unknown };
    if (v.version !== 1 || typeof v.holder !== 'string' || typeof v.end !== 'string') return null;
    if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/.test(v.end)) return null;
    const end = Date.parse(`${v.end}Z`);
    return Number.isFinite(end) ? { holder: v.holder, end } : null;
  } catch {
    return null;
  }
}

/**
 * Curator's InterProcessSemaphoreV2 keeps two persistent children under the path it was given:
 * `leases/` (one `-lease-` node per lease) and `locks/` (an InterProcessMutex queue of acquirers).
 */
export const CURATOR_SEMAPHORE_LEASES = 'leases';
export const CURATOR_SEMAPHORE_LOCKS = 'locks';
