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
import { sortLocks, type SortDir, type SortKey } from '../client/locks';
import { HttpError } from './http';
import { formatLabel, getMetrics } from './metrics';
import { getRegistry } from './registry';
import { getHistory, type HistoryEvent } from './history';
import { singleton } from './singleton';
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
  /**
   * Locks there were before `limit` cut the list (added to the contract), so a first page can say
   * how many the whole list holds. A backend over the per-backend bound counts as its bound.
   */
  total?: number;
  /**
   * Where the answer came from (added to the contract): absent or `"backends"` for a listing made
   * for this request; `"live"` for the event hub's current state (`source=live`, see
   * {@link listLiveLocks}).
   */
  source?: 'backends' | 'live';
}

/** `meta` keys that would carry a holder's secret under some layout; never sent. */
const SECRET_META = /^(token|holdertoken|value|rawvalue|secret|password|lockvalue)$/i;
const MAX_META_ENTRIES = 32;
const MAX_META_TEXT = 512;

/** Locks serialised per chunk of a streamed listing (about 200 kB of JSON). */
const JSON_CHUNK_LOCKS = 500;

/**
 * A listing as a JSON response whose `locks` array is serialised and sent a chunk at a time, as
 * the client reads it: the same bytes as `JSON.stringify(list)`, but 10,000 locks (4.3 MB) never
 * sit in memory as one string plus its UTF-8 copy, and the event loop is not held for the whole
 * serialisation at once (other requests and the event stream get turns between chunks).
 */
export function lockListResponse(list: LockList, headers: Record<string, string> = {}): Response {
  const { now, locks, ...rest } = list;
  const encoder = new TextEncoder();
  // `{"now":…,"locks":[` + chunks + `],…rest}`; `rest` always has `unavailable` and `truncated`.
  const head = `{"now":${JSON.stringify(now)},"locks":[`;
  const tail = `],${JSON.stringify(rest).slice(1)}`;
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(head));
    },
    pull(controller) {
      if (i >= locks.length) {
        controller.enqueue(encoder.encode(tail));
        controller.close();
        return;
      }
      const part = JSON.stringify(locks.slice(i, i + JSON_CHUNK_LOCKS));
      controller.enqueue(encoder.encode((i === 0 ? '' : ',') + part.slice(1, -1)));
      i += JSON_CHUNK_LOCKS;
    },
  });
  return new Response(body, { status: 200, headers: { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', ...headers } });
}

/**
 * Whether a `meta` key is a secret, per key name: the names are few (a layout's own handful), the
 * locks many, so each name is tested once (10,000 locks × 5 keys were 50,000 regex tests and the
 * larger part of {@link publicLock}'s cost). Bounded, for names a foreign layout makes up per lock.
 */
const secretNames = new Map<string, boolean>();
function isSecretMeta(k: string): boolean {
  let secret = secretNames.get(k);
  if (secret === undefined) {
    secret = SECRET_META.test(k);
    if (secretNames.size < 1024) secretNames.set(k, secret);
  }
  return secret;
}

/** The lock as the API may show it. See the module comment. */
export function publicLock(l: LockInfo, backendId: string): LockInfo {
  let health = l.health;
  // A lease that has run out cannot be healthy, whatever the layout thought at read time.
  if (l.expiresAt !== null && l.ttlMs !== null && l.ttlMs <= 0 && (health === 'ok' || health === 'expiring')) health = 'expired';
  const out: LockInfo = { ...l, backend: backendId, health };
  const m = l.meta;
  if (m) {
    const meta: NonNullable<LockInfo['meta']> = {};
    let n = 0;
    for (const k in m) {
      if (!Object.hasOwn(m, k) || n >= MAX_META_ENTRIES || isSecretMeta(k)) continue;
      const v = m[k];
      if (v === undefined || (v !== null && typeof v === 'object')) continue;
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
  /**
   * The order before `limit` cuts (the table's sorts, lib/client/locks.ts): a first page then
   * holds the rows the table shows first. Absent: backend id, then key. With a sort, every
   * backend is listed up to {@link MAX_LIST_LIMIT}, because any lock may sort first.
   */
  sort?: SortKey;
  dir?: SortDir;
  /**
   * `limit` bounds each backend rather than the merged list (the event stream's snapshot: 10,000
   * locks per backend, so two full backends are 20,000 rows, not the first 10,000 of them).
   */
  perBackend?: boolean;
}

/** Sorts (in place) and cuts a merged list the way {@link ListOptions} says. */
function finish(all: LockInfo[], opts: ListOptions, limit: number, unavailable: LockList['unavailable'], backendOver: boolean): LockList {
  const now = Date.now();
  if (opts.sort) sortLocks(all, opts.sort, opts.dir ?? 'asc', now);
  else all.sort(byBackendThenKey);
  const cut = !opts.perBackend && all.length > limit;
  const out: LockList = { now, locks: cut ? all.slice(0, limit) : all, unavailable, truncated: cut || backendOver };
  // Without a sort each backend was asked for `limit` + 1 only: how many there are is not known.
  if (opts.sort || opts.perBackend || !cut) out.total = all.length;
  return out;
}

/** What a listing made for a request tells the event hub besides its locks. */
export interface ListingFacts {
  /** The backend returned fewer locks than `asked`: nothing it holds is missing. */
  complete: boolean;
  /** The limit the backend was asked for. */
  asked: number;
  /** performance.now() just before the backend was asked. */
  startedAt: number;
}

/**
 * Told of every unfiltered listing of one backend a request made (its locks as the API shows
 * them, shared: never mutated), so the event hub can take it as its reconcile instead of listing
 * the same backend again moments later (events.ts).
 */
export type ListingObserver = (backend: string, locks: readonly LockInfo[], facts: ListingFacts) => void;

interface Listings {
  observer: ListingObserver | null;
  /** Unfiltered listings under way per backend. */
  inFlight: Map<string, number>;
}

/** Process-wide: the hub and the routes are in different module graphs (singleton.ts). */
function listings(): Listings {
  return singleton('inventory-listings', () => ({ observer: null, inFlight: new Map<string, number>() }));
}

/** Sets (null: clears) the one {@link ListingObserver}. */
export function setListingObserver(fn: ListingObserver | null): void {
  listings().observer = fn;
}

/** True while an unfiltered listing of `backend` is under way for a request. */
export function listingInFlight(backend: string): boolean {
  return (listings().inFlight.get(backend) ?? 0) > 0;
}

export async function listLocks(opts: ListOptions = {}): Promise<LockList> {
  const registry = getRegistry();
  const limit = opts.limit ?? DEFAULT_LIST_LIMIT;
  const q = opts.q ? opts.q : undefined;
  // The bound on each backend's part (null: only the merged list is cut, at `limit`). Each
  // backend is asked for one more than that, so a backend over its bound is noticed.
  const cap = opts.perBackend ? limit : opts.sort ? MAX_LIST_LIMIT : null;
  let backendOver = false;
  const shared = q === undefined ? listings() : null;
  const one = async (id: string): Promise<LockInfo[]> => {
    const asked = (cap ?? limit) + 1;
    const startedAt = performance.now();
    if (shared) shared.inFlight.set(id, (shared.inFlight.get(id) ?? 0) + 1);
    let locks: LockInfo[];
    try {
      locks = await registry.call(id, 'list', (b) => b.list({ q, limit: asked }));
    } finally {
      if (shared) shared.inFlight.set(id, (shared.inFlight.get(id) ?? 1) - 1);
    }
    const complete = locks.length < asked;
    if (cap !== null && locks.length > cap) {
      backendOver = true;
      locks.length = cap;
    }
    const out = locks.map((l) => publicLock(l, id));
    if (shared?.observer) {
      try {
        shared.observer(id, out, { complete, asked, startedAt });
      } catch (err) {
        console.error('[lockdeck] listing observer failed:', err instanceof Error ? err.message : err);
      }
    }
    return out;
  };
  if (opts.backend !== undefined) {
    const id = opts.backend;
    registry.configOf(id); // unknown → UnknownBackendError (400)
    return finish(await one(id), opts, limit, [], backendOver);
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
        return await one(id);
      } catch (err) {
        unavailable.push({ backend: id, error: err instanceof Error ? err.message : String(err) });
        return [];
      }
    }),
  );
  unavailable.sort((a, b) => (a.backend < b.backend ? -1 : 1));
  return finish(results.flat(), opts, limit, unavailable, backendOver);
}

/**
 * `GET /api/locks?source=live`: the same answer as {@link listLocks}, from the event hub's current
 * state instead of a new listing: what a browser on the event stream shows now (every lockdeck
 * change as pushed by the backends' watches, foreign locks as of the last reconcile, at most
 * `reconcileIntervalMs` old). It costs no store round trip, which is what a first screenful
 * needs; the page replaces it with the stream's snapshot (a fresh listing) a moment later.
 * A backend the hub has not learnt yet is listed as usual; one that is down is `unavailable`.
 */
export async function listLiveLocks(opts: ListOptions, live: (id: string) => Iterable<LockInfo> | null): Promise<LockList> {
  const registry = getRegistry();
  const limit = opts.limit ?? DEFAULT_LIST_LIMIT;
  const q = opts.q ? opts.q.toLowerCase() : undefined;
  const ids = opts.backend !== undefined ? [opts.backend] : registry.ids();
  if (opts.backend !== undefined) registry.configOf(opts.backend);
  const unavailable: LockList['unavailable'] = [];
  const now = Date.now();
  const results = await Promise.all(
    ids.map(async (id): Promise<LockInfo[]> => {
      if (!registry.isUp(id) && registry.status(id).checkedAt !== null) {
        if (opts.backend !== undefined) return (await listLocks({ ...opts, backend: id, limit: MAX_LIST_LIMIT })).locks;
        registry.requestCheck(id);
        unavailable.push({ backend: id, error: registry.status(id).error ?? 'down' });
        return [];
      }
      const known = live(id);
      if (!known) {
        try {
          return (await listLocks({ ...opts, backend: id, limit: MAX_LIST_LIMIT })).locks;
        } catch (err) {
          if (opts.backend !== undefined) throw err;
          unavailable.push({ backend: id, error: err instanceof Error ? err.message : String(err) });
          return [];
        }
      }
      const out: LockInfo[] = [];
      for (const l of known) {
        // The backends' q is a case-insensitive substring of the key (lib/locks/types.ts ListFilter).
        if (q && !l.key.toLowerCase().includes(q)) continue;
        // ttlMs as of this answer; a lease that ran out since it was learnt is expired (publicLock).
        const ttlMs = l.expiresAt === null ? null : l.expiresAt - now;
        const health = ttlMs !== null && ttlMs <= 0 && (l.health === 'ok' || l.health === 'expiring') ? 'expired' : l.health;
        out.push(ttlMs === l.ttlMs && health === l.health ? l : { ...l, ttlMs, health });
      }
      return out;
    }),
  );
  unavailable.sort((a, b) => (a.backend < b.backend ? -1 : 1));
  return { ...finish(results.flat(), opts, limit, unavailable, false), source: 'live' };
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
