/**
 * Pure lock logic for the pages: identity, live health, the table's filters and sorts (which
 * live in the URL), and the overview's "needs attention" summary. No React here, so it is unit
 * tested directly (locks.test.ts).
 */
import type { LockHealth, LockInfo } from './types';

/** One lock's identity across backends. */
export function lockId(backend: string, key: string): string {
  return `${backend}\n${key}`;
}

/** The detail page of a lock. Keys hold slashes, colons, spaces: query parameters carry them safely. */
export function lockHref(backend: string, key: string): string {
  return `/lock?${new URLSearchParams({ backend, key }).toString()}`;
}

/**
 * A fence as the table shows it: whole when short, else its last digits after an ellipsis. Fences
 * can be long (Redis: the server clock in µs, 16 digits; etcd revisions, ZooKeeper zxids) and
 * what tells two holders apart is the end, not the shared leading digits a cut from the right
 * would keep. The full value is in the cell's title and on the lock's page.
 */
export function shortFence(fence: string, max = 10): string {
  return fence.length <= max ? fence : `…${fence.slice(-(max - 2))}`;
}

/** ms left on the lease by the server clock, or null for a lock without expiry. */
export function ttlLeft(lock: Pick<LockInfo, 'expiresAt'>, now: number): number | null {
  return lock.expiresAt === null ? null : lock.expiresAt - now;
}

/** How long the current holder has held it, or null when unknown. */
export function heldFor(lock: Pick<LockInfo, 'acquiredAt'>, now: number): number | null {
  return lock.acquiredAt === null ? null : Math.max(0, now - lock.acquiredAt);
}

/**
 * The health to show now: the server's verdict, except that a lease which has run out by the
 * server clock is `expired` even if no event said so yet (the countdown reached zero on screen).
 */
export function liveHealth(lock: Pick<LockInfo, 'health' | 'expiresAt'>, now: number): LockHealth {
  if ((lock.health === 'ok' || lock.health === 'expiring') && lock.expiresAt !== null && now > 0 && lock.expiresAt <= now) return 'expired';
  return lock.health;
}

export const HEALTHS: readonly LockHealth[] = ['expired', 'orphaned', 'expiring', 'unknown', 'ok'];

/** Worst first: what a person should look at before anything else. */
const SEVERITY: Record<LockHealth, number> = { expired: 0, orphaned: 1, expiring: 2, unknown: 3, ok: 4 };

/** A lock held longer than this is "long-held" on the overview. */
export const LONG_HELD_MS = 30 * 60_000;

export type SortKey = 'attention' | 'ttl' | 'age' | 'waiters' | 'key';
export type SortDir = 'asc' | 'desc';

export const SORTS: Record<SortKey, { label: string; dir: SortDir }> = {
  attention: { label: 'Needs attention first', dir: 'asc' },
  ttl: { label: 'TTL (expiring first)', dir: 'asc' },
  age: { label: 'Held longest first', dir: 'desc' },
  waiters: { label: 'Most waiters first', dir: 'desc' },
  key: { label: 'Backend and key', dir: 'asc' },
};

export interface LockFilters {
  q: string;
  backend: string;
  format: string;
  health: LockHealth | '';
  sort: SortKey;
  dir: SortDir;
}

export const DEFAULT_FILTERS: LockFilters = { q: '', backend: '', format: '', health: '', sort: 'attention', dir: 'asc' };

interface ParamsLike {
  get(name: string): string | null;
}

/** Filters from the URL; anything unknown falls back to the default. */
export function parseFilters(sp: ParamsLike): LockFilters {
  const sortRaw = sp.get('sort') ?? '';
  const sort: SortKey = sortRaw in SORTS ? (sortRaw as SortKey) : DEFAULT_FILTERS.sort;
  const dirRaw = sp.get('dir');
  const healthRaw = sp.get('health') ?? '';
  return {
    q: (sp.get('q') ?? '').slice(0, 512),
    backend: sp.get('backend') ?? '',
    format: sp.get('format') ?? '',
    health: (HEALTHS as readonly string[]).includes(healthRaw) ? (healthRaw as LockHealth) : '',
    sort,
    dir: dirRaw === 'asc' || dirRaw === 'desc' ? dirRaw : SORTS[sort].dir,
  };
}

/** The query string for `f`, leaving out defaults so shared links stay short. */
export function filtersToSearch(f: LockFilters): string {
  const sp = new URLSearchParams();
  if (f.q) sp.set('q', f.q);
  if (f.backend) sp.set('backend', f.backend);
  if (f.format) sp.set('format', f.format);
  if (f.health) sp.set('health', f.health);
  if (f.sort !== DEFAULT_FILTERS.sort) sp.set('sort', f.sort);
  if (f.dir !== SORTS[f.sort].dir) sp.set('dir', f.dir);
  const s = sp.toString();
  return s ? `?${s}` : '';
}

export function hasActiveFilters(f: LockFilters): boolean {
  return !!(f.q || f.backend || f.format || f.health);
}

/** Applies the filters (not the sort). `q` matches key and owner, case-insensitively. */
export function filterLocks(locks: Iterable<LockInfo>, f: LockFilters, now: number): LockInfo[] {
  const q = f.q.trim().toLowerCase();
  const out: LockInfo[] = [];
  for (const l of locks) {
    if (f.backend && l.backend !== f.backend) continue;
    if (f.format && l.format !== f.format) continue;
    if (f.health && liveHealth(l, now) !== f.health) continue;
    if (q && !l.key.toLowerCase().includes(q) && !(l.owner ?? '').toLowerCase().includes(q)) continue;
    out.push(l);
  }
  return out;
}

function byKey(a: LockInfo, b: LockInfo): number {
  if (a.backend !== b.backend) return a.backend < b.backend ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/**
 * Sorts in place and returns `locks`. Sorting uses absolute times (expiresAt, acquiredAt), never
 * the ticking remainder, so the order does not change from one second to the next. Unknowns
 * (no expiry, no acquisition time) go last in either direction.
 */
export function sortLocks(locks: LockInfo[], sort: SortKey, dir: SortDir, now: number): LockInfo[] {
  const sign = dir === 'asc' ? 1 : -1;
  const nullsLast = (a: number | null, b: number | null): number | null => {
    if (a === null && b === null) return 0;
    if (a === null) return 1;
    if (b === null) return -1;
    return null;
  };
  let cmp: (a: LockInfo, b: LockInfo) => number;
  switch (sort) {
    case 'ttl':
      cmp = (a, b) => nullsLast(a.expiresAt, b.expiresAt) ?? sign * (a.expiresAt! - b.expiresAt!);
      break;
    case 'age':
      // Held longest = acquired earliest: "desc" by age is ascending acquiredAt.
      cmp = (a, b) => nullsLast(a.acquiredAt, b.acquiredAt) ?? -sign * (a.acquiredAt! - b.acquiredAt!);
      break;
    case 'waiters':
      cmp = (a, b) => sign * (a.waiters.length - b.waiters.length);
      break;
    case 'key':
      cmp = (a, b) => sign * byKey(a, b);
      break;
    case 'attention':
      cmp = (a, b) => {
        const s = SEVERITY[liveHealth(a, now)] - SEVERITY[liveHealth(b, now)];
        if (s !== 0) return sign * s;
        const w = b.waiters.length - a.waiters.length;
        if (w !== 0) return w;
        return nullsLast(a.acquiredAt, b.acquiredAt) ?? a.acquiredAt! - b.acquiredAt!;
      };
      break;
  }
  return locks.sort((a, b) => cmp(a, b) || byKey(a, b));
}

export interface BackendCounts {
  locks: number;
  waiters: number;
}

export interface Summary {
  total: number;
  waiters: number;
  /** Locks with at least one waiter. */
  contended: number;
  byHealth: Record<LockHealth, number>;
  longHeld: number;
  byBackend: Map<string, BackendCounts>;
  formats: string[];
  /** Most waiters first (only locks that have waiters), at most `top`. */
  mostContended: LockInfo[];
  /** Held longest first (only locks held longer than LONG_HELD_MS), at most `top`. */
  longestHeld: LockInfo[];
  /** Expired-but-present and orphaned locks, oldest first, at most `top`. */
  stuck: LockInfo[];
}

/** Counts and top lists for the overview, in one pass plus small sorts. */
export function summarize(locks: Iterable<LockInfo>, now: number, top = 5): Summary {
  const byHealth: Record<LockHealth, number> = { ok: 0, expiring: 0, expired: 0, orphaned: 0, unknown: 0 };
  const byBackend = new Map<string, BackendCounts>();
  const formats = new Set<string>();
  const contendedList: LockInfo[] = [];
  const longList: LockInfo[] = [];
  const stuckList: LockInfo[] = [];
  let total = 0;
  let waiters = 0;
  for (const l of locks) {
    total++;
    waiters += l.waiters.length;
    const h = liveHealth(l, now);
    byHealth[h]++;
    formats.add(l.format);
    const b = byBackend.get(l.backend) ?? { locks: 0, waiters: 0 };
    b.locks++;
    b.waiters += l.waiters.length;
    byBackend.set(l.backend, b);
    if (l.waiters.length > 0) contendedList.push(l);
    if (l.acquiredAt !== null && now - l.acquiredAt > LONG_HELD_MS) longList.push(l);
    if (h === 'expired' || h === 'orphaned') stuckList.push(l);
  }
  const held = (l: LockInfo) => (l.acquiredAt === null ? -Infinity : now - l.acquiredAt);
  return {
    total,
    waiters,
    contended: contendedList.length,
    byHealth,
    longHeld: longList.length,
    byBackend,
    formats: [...formats].sort(),
    mostContended: contendedList.sort((a, b) => b.waiters.length - a.waiters.length || byKey(a, b)).slice(0, top),
    longestHeld: longList.sort((a, b) => held(b) - held(a)).slice(0, top),
    stuck: stuckList.sort((a, b) => held(b) - held(a)).slice(0, top),
  };
}

/** Words for a health value, for badges and filters. */
export const HEALTH_LABEL: Record<LockHealth, string> = {
  ok: 'OK',
  expiring: 'Expiring',
  expired: 'Expired',
  orphaned: 'Orphaned',
  unknown: 'Unknown',
};

/** What each health means, for titles and the legend. */
export const HEALTH_HELP: Record<LockHealth, string> = {
  ok: 'Held, with time left on the lease.',
  expiring: 'Less than a fifth of the lease is left and it has not been renewed yet.',
  expired: 'The lease ran out but the lock is still there: its holder may be gone, or the store has not swept it yet.',
  orphaned: 'It has no expiry, or its owner is known to be gone: nothing will free it on its own.',
  unknown: 'The layout does not tell when it expires.',
};
