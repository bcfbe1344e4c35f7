import 'server-only';

/**
 * The inventory: every held lock the backends show, merged, checked and ready for the browser.
 *
 * - One backend's failure never fails the listing of the others: its locks are absent, and the
 *   answer says so in `unavailable` (so the UI can say "backend X: down" instead of showing
 *   "no locks", which would be a lie: OWASP A10, fail closed on errors).
 * - Order is stable: backend id, then key (code-unit order, not locale order, so it is the same
 *   on every server).
 * - Every lock passes {@link publicLock}: the backend is named by its config id, health agrees
 *   with the expiry, and `meta` carries only small scalar facts, never a holder's secret.
 */
import { HttpError } from './http';
import { formatLabel, getMetrics } from './metrics';
import { getRegistry } from './registry';
import { getHistory, type HistoryEvent } from './history';
import type { LockInfo } from '../locks/types';

export const DEFAULT_LIST_LIMIT = 1000;
export const MAX_LIST_LIMIT = 10_000;

export interface LockList {
  /** Console server epoch ms at the time of the answer. */
  now: number;
  locks: LockInfo[];
  /** Backends whose locks are missing from `locks`, and why (added to the contract). */
  unavailable: Array<{ backend: string; error: string }>;
  /** True when `limit` cut the list (added to the contract). */
  truncated: boolean;
}

/** `meta` keys that would carry a holder's secret under some layout; never sent. */
const SECRET_META = /^(token|holdertoken|value|rawvalue|secret|password|lockvalue)$/i;
const MAX_META_ENTRIES = 32;
const MAX_META_TEXT = 512;

/** The lock as the API may show it. See the module comment. */
export function publicLock(l: LockInfo, backendId: string): LockInfo {
  let health = l.health;
  // A lease that has run out cannot be healthy, whatever the layout thought at read time.
  if (l.expiresAt !== null && l.ttlMs !== null && l.ttlMs <= 0 && (health === 'ok' || health === 'expiring')) health = 'expired';
  const out: LockInfo = { ...l, backend: backendId, health };
  if (l.meta) {
    const meta: NonNullable<LockInfo['meta']> = {};
    let n = 0;
    for (const [k, v] of Object.entries(l.meta)) {
      if (SECRET_META.test(k) || n >= MAX_META_ENTRIES) continue;
      if (v !== null && typeof v === 'object') continue;
      meta[k] = typeof v === 'string' && v.length > MAX_META_TEXT ? `${v.slice(0, MAX_META_TEXT)}…` : v;
      n++;
    }
    out.meta = meta;
  }
  return out;
}

function byBackendThenKey(a: LockInfo, b: LockInfo): number {
  if (a.backend !== b.backend) return a.backend < b.backend ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

export interface ListOptions {
  /** One backend (its errors are the answer's errors), or every backend (errors are skipped). */
  backend?: string;
  /** Case-insensitive plain-text substring of the key. */
  q?: string;
  limit?: number;
}

export async function listLocks(opts: ListOptions = {}): Promise<LockList> {
  const registry = getRegistry();
  const limit = opts.limit ?? DEFAULT_LIST_LIMIT;
  const q = opts.q ? opts.q : undefined;
  if (opts.backend !== undefined) {
    const id = opts.backend;
    registry.configOf(id); // unknown → UnknownBackendError (400)
    const locks = await registry.call(id, 'list', (b) => b.list({ q, limit: limit + 1 }));
    const all = locks.map((l) => publicLock(l, id)).sort(byBackendThenKey);
    return { now: Date.now(), locks: all.slice(0, limit), unavailable: [], truncated: all.length > limit };
  }
  const unavailable: LockList['unavailable'] = [];
  const results = await Promise.all(
    registry.ids().map(async (id) => {
      if (!registry.isUp(id) && registry.status(id).checkedAt !== null) {
        // Known down: skip it rather than wait for its timeout, and let the loop re-check.
        registry.requestCheck(id);
        unavailable.push({ backend: id, error: registry.status(id).error ?? 'down' });
        return [];
      }
      try {
        const locks = await registry.call(id, 'list', (b) => b.list({ q, limit: limit + 1 }));
        return locks.map((l) => publicLock(l, id));
      } catch (err) {
        unavailable.push({ backend: id, error: err instanceof Error ? err.message : String(err) });
        return [];
      }
    }),
  );
  const all = results.flat().sort(byBackendThenKey);
  unavailable.sort((a, b) => (a.backend < b.backend ? -1 : 1));
  return { now: Date.now(), locks: all.slice(0, limit), unavailable, truncated: all.length > limit };
}

/** The lock at `key` now, or null. Errors are the backend's (503 when it is down). */
export async function getLock(backend: string, key: string): Promise<LockInfo | null> {
  const lock = await getRegistry().call(backend, 'get', (b) => b.get(key));
  return lock ? publicLock(lock, backend) : null;
}

export interface LockDetail {
  now: number;
  lock: LockInfo;
  history: HistoryEvent[];
}

/** `GET /api/locks/detail`: the lock and its recorded history; 404 when nothing holds `key`. */
export async function getLockDetail(backend: string, key: string): Promise<LockDetail> {
  getRegistry().configOf(backend);
  const lock = await getLock(backend, key);
  if (!lock) throw new HttpError(404, 'not_found', `nothing holds "${key}" on backend "${backend}"`);
  return { now: Date.now(), lock, history: getHistory().forKey(backend, key) };
}

/** Recorded history of one key, held or not (added to the contract: the detail of a released lock). */
export function getLockHistory(backend: string, key: string, limit?: number): { now: number; history: HistoryEvent[] } {
  getRegistry().configOf(backend);
  return { now: Date.now(), history: getHistory().forKey(backend, key, limit) };
}

/** Refreshes the lock gauges from a fresh listing (called by the metrics route before rendering). */
export async function updateInventoryGauges(): Promise<void> {
  const m = getMetrics();
  const list = await listLocks({ limit: MAX_LIST_LIMIT });
  m.locksHeld.reset();
  m.waiters.reset();
  const down = new Set(list.unavailable.map((u) => u.backend));
  const formats = new Map<string, Set<string>>();
  for (const id of getRegistry().ids()) {
    if (down.has(id)) continue;
    m.waiters.set({ backend: id }, 0);
    formats.set(id, new Set());
  }
  for (const l of list.locks) {
    const seen = formats.get(l.backend);
    if (!seen) continue;
    m.locksHeld.inc({ backend: l.backend, format: formatLabel(l.format, seen) });
    m.waiters.inc({ backend: l.backend }, l.waiters.length);
  }
}
