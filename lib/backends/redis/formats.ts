/**
 * The foreign half of the Redis inspector: finds, shows and force-releases locks written by the
 * clients people already use, in their own layouts (lock-formats.md §1, §7). lockdeck's own keys
 * (`<prefix>:...`) are left to lib/backends/redis; everything here is read-only except
 * `forceReleaseForeign`, which only ever deletes what the operator was shown.
 *
 * Formats (`LockInfo.format`), one recogniser each under ./formats/:
 *   'redis-plain'         SET NX PX token: node-redlock, redis-py, home-grown   (plain.ts)
 *   'redis-setnx-legacy'  SETNX with the absolute Unix expiry as value, no TTL  (setnx-legacy.ts)
 *   'python-redis-lock'   lock:<name> + lock-signal:<name>                      (python-redis-lock.ts)
 *   'redisson-lock'       hash <name>, field <uuid>:<thread> = hold count       (redisson.ts)
 *   'redisson-fairlock'   + redisson_lock_queue/timeout:{name}                  (redisson.ts)
 *   'redisson-rwlock'     hash with mode=read|write                             (redisson.ts)
 *   'shedlock'            job-lock:<env>:<name> = ADDED:<iso>@<host>[:<uuid>]   (shedlock.ts)
 *
 * Reading is SCAN-only (never KEYS): one SCAN cursor per server whatever the number of globs, then
 * at most three pipelined round trips per SCAN page to read what was found (TYPE and sizes; PTTL
 * and value; Redisson's side keys). The backend does not scan in list(): its background discovery
 * (discovery.ts) walks the keyspace page by page with `foreignCandidates`, and list() re-reads the
 * keys it found with `readForeignKeys` (the same three round trips, for those keys only). Sizes
 * are checked before values are read, so a big cache entry under a broad glob is never transferred.
 *
 * Redis Cluster: pass the Cluster client; scanning walks every master (`nodes('master')`), and a
 * lock's side keys share its hash slot (Redisson's `{name}` tags). A client with ioredis'
 * `keyPrefix` option must not be used: SCAN returns full key names.
 */
import type { Redis } from 'ioredis';

import type { ForceReleaseExpectation, ForceReleaseResult, LockInfo } from '../../locks/types';
import { MAX_HASH_FIELDS, MAX_VALUE_BYTES, type Recognised, type RecogniseContext, type StringObs, type HashObs } from './formats/common';
import { escapeGlob, globToRegExp, matchesAnyGlob, validateMatchGlob } from './formats/glob';
import { FORMAT_PLAIN, recognisePlain } from './formats/plain';
import { FORMAT_PYTHON_REDIS_LOCK, recognisePythonRedisLock } from './formats/python-redis-lock';
import {
  auxCommands,
  classifyRedissonHash,
  FORMAT_REDISSON_FAIRLOCK,
  FORMAT_REDISSON_LOCK,
  FORMAT_REDISSON_RWLOCK,
  parseAux,
  recogniseRedisson,
  redissonSideKeyNames,
  type Cmd,
  type RedissonClass,
} from './formats/redisson';
import { FORMAT_SETNX_LEGACY, recogniseSetnxLegacy } from './formats/setnx-legacy';
import { FORMAT_SHEDLOCK, recogniseShedlock } from './formats/shedlock';

export { escapeGlob, matchesAnyGlob, validateMatchGlob };

/** One connection: the only two commands used are `pipeline` (every read) and `eval` (releases). */
export type RedisConn = Pick<Redis, 'pipeline' | 'eval'>;

/**
 * A structural ioredis client: a `Redis`, or a `Cluster` (whose `nodes('master')` are scanned
 * one by one).
 */
export interface RedisLike extends RedisConn {
  nodes?(role?: 'master' | 'slave' | 'all'): RedisConn[];
}

export const FOREIGN_FORMATS = [
  FORMAT_PLAIN,
  FORMAT_SETNX_LEGACY,
  FORMAT_PYTHON_REDIS_LOCK,
  FORMAT_REDISSON_LOCK,
  FORMAT_REDISSON_FAIRLOCK,
  FORMAT_REDISSON_RWLOCK,
  FORMAT_SHEDLOCK,
] as const;

/**
 * Where the well-known layouts live (lock-formats.md §0, §1), used when a backend sets no `match`:
 *  - `lock:*`, `lock.*`, `locks:*`: the common home-grown prefixes (§1.1; `lock.foo` is the legacy
 *    SETNX example) and python-redis-lock (§1.4);
 *  - `job-lock:*`: ShedLock's default prefix (§1.6);
 *  - `redisson_lock_token:*`, `redisson_lock_queue:*`: Redisson keeps no prefix on the lock itself,
 *    but RFencedLock's counter and a FairLock's queue name it, so those locks are found this way.
 * node-redlock, redis-py and plain Redisson RLocks use the application's own key names: they are
 * found only when `match` covers them (§7.1).
 */
export const DEFAULT_MATCH: readonly string[] = Object.freeze([
  'lock:*',
  'lock.*',
  'locks:*',
  'job-lock:*',
  'redisson_lock_token:*',
  'redisson_lock_queue:*',
]);

export const DEFAULT_SCAN_COUNT = 500;
/** Default bound on keyspace entries examined per call (SCAN calls × COUNT). */
export const DEFAULT_MAX_KEYS_SCANNED = 1_000_000;
export const DEFAULT_LIMIT = 1000;

export interface ForeignScanOptions {
  backendId: string;
  /** Key globs where foreign locks live (validated with `validateMatchGlob`; throws if unsafe). */
  match: readonly string[];
  /** Keys starting with `${ownPrefix}:` are lockdeck's own and are skipped. */
  ownPrefix: string;
  /** Case-insensitive substring of the lock key; plain text, applied on our side. */
  q?: string;
  /** Most locks returned (default 1000); more found sets `truncated`. */
  limit?: number;
  /** Server epoch ms (TTLs are shown by the clock that expires the keys). */
  now: number;
  /**
   * Bound on keyspace entries examined, counted as COUNT per SCAN call across all globs and
   * nodes (default 1 000 000). When it runs out before every SCAN finished, `truncated` is set.
   */
  maxKeysScanned?: number;
  /** COUNT per SCAN call (default 500, 10..10 000). */
  scanCount?: number;
}

/** A release condition: fence/owner as in the contract, plus the `meta.valueHash` the operator saw. */
export interface ForeignReleaseExpectation extends ForceReleaseExpectation {
  valueHash?: string;
}

/**
 * Optional limits for a key named in a request. With `match`, a key outside every glob is only
 * recognised if its structure proves the layout (Redisson hash); guessed layouts (plain string
 * locks, ShedLock values, python-redis-lock) are not, so a request cannot make the console show or
 * delete an arbitrary string key. With `ownPrefix`, lockdeck's own keys answer null.
 */
export interface ForeignKeyOptions {
  match?: readonly string[];
  ownPrefix?: string;
}

interface Candidate {
  key: string;
  direct: boolean;
}

/** Queues `cmds` in one pipeline; per-command errors come back as [Error, null]. */
async function run(conn: RedisConn, cmds: Array<Cmd & { buffer?: boolean }>): Promise<Array<[Error | null, unknown]>> {
  if (cmds.length === 0) return [];
  const p = conn.pipeline();
  for (const c of cmds) {
    if (c.buffer) p.callBuffer(c.cmd, ...c.args);
    else p.call(c.cmd, ...c.args);
  }
  const res = await p.exec();
  if (!res) throw new Error('Redis pipeline was aborted');
  return res;
}

const okReply = (r: [Error | null, unknown] | undefined): unknown => (r && !r[0] ? r[1] : null);

/** HGETALL's reply: ioredis turns it into an object (its reply transformer applies to `call` too). */
function toFields(reply: unknown): Record<string, string> | null {
  const fields: Record<string, string> = Object.create(null) as Record<string, string>;
  if (Array.isArray(reply)) {
    for (let i = 0; i + 1 < reply.length; i += 2) fields[String(reply[i])] = String(reply[i + 1]);
  } else if (reply && typeof reply === 'object') {
    for (const [k, v] of Object.entries(reply)) fields[k] = String(v);
  } else {
    return null;
  }
  return fields;
}

function recogniseString(obs: StringObs, ctx: RecogniseContext): Recognised | null {
  return (
    recogniseShedlock(obs, ctx) ??
    recognisePythonRedisLock(obs, ctx) ??
    recogniseSetnxLegacy(obs, ctx) ??
    recognisePlain(obs, ctx)
  );
}

/**
 * Reads and recognises `cands` in up to three pipelined round trips:
 *  1. TYPE, STRLEN, HLEN of every key (the size of the wrong type just errors, harmlessly);
 *  2. PTTL + the value (GET as bytes / HGETALL) of small strings and hashes;
 *  3. Redisson side keys and subscriber counts for the hashes that are Redisson locks.
 */
async function observe(conn: RedisConn, cands: Candidate[], backendId: string, now: number): Promise<Recognised[]> {
  if (cands.length === 0) return [];
  const r1 = await run(
    conn,
    cands.flatMap((c) => [
      { cmd: 'type', args: [c.key] },
      { cmd: 'strlen', args: [c.key] },
      { cmd: 'hlen', args: [c.key] },
    ]),
  );
  const wanted: Array<{ cand: Candidate; type: 'string' | 'hash' }> = [];
  cands.forEach((cand, i) => {
    const type = okReply(r1[i * 3]);
    if (type === 'string' && cand.direct && Number(okReply(r1[i * 3 + 1])) <= MAX_VALUE_BYTES) wanted.push({ cand, type });
    const hlen = Number(okReply(r1[i * 3 + 2]));
    if (type === 'hash' && hlen > 0 && hlen <= MAX_HASH_FIELDS) wanted.push({ cand, type });
  });

  const r2 = await run(
    conn,
    wanted.flatMap(({ cand, type }) => [
      { cmd: 'pttl', args: [cand.key] },
      type === 'string' ? { cmd: 'get', args: [cand.key], buffer: true } : { cmd: 'hgetall', args: [cand.key] },
    ]),
  );
  const out: Recognised[] = [];
  const redisson: Array<{ obs: HashObs; cls: RedissonClass; ctx: RecogniseContext }> = [];
  wanted.forEach(({ cand, type }, i) => {
    const pttl = Number(okReply(r2[i * 2]));
    const value = okReply(r2[i * 2 + 1]);
    // -2: gone since phase 1.
    if (!Number.isFinite(pttl) || pttl === -2) return;
    const ctx: RecogniseContext = { backendId, now, direct: cand.direct };
    if (type === 'string') {
      if (!Buffer.isBuffer(value)) return;
      const r = recogniseString({ type: 'string', key: cand.key, pttl, value }, ctx);
      if (r) out.push(r);
      return;
    }
    const fields = toFields(value);
    if (!fields) return;
    const cls = classifyRedissonHash(fields);
    if (cls) redisson.push({ obs: { type: 'hash', key: cand.key, pttl, fields }, cls, ctx });
  });

  const perLock = redisson.map(({ obs, cls }) => auxCommands(obs.key, cls));
  const r3 = await run(conn, perLock.flat());
  let at = 0;
  redisson.forEach(({ obs, cls, ctx }, i) => {
    const n = perLock[i]!.length;
    out.push(recogniseRedisson(obs, cls, parseAux(r3.slice(at, at + n)), ctx));
    at += n;
  });
  return out;
}

/** The lock keys a scanned key stands for (itself, or the Redisson lock its side key names). */
function candidatesFor(key: string, ownPrefix: string): Candidate[] {
  // A key that is not valid UTF-8 came back mangled from SCAN and could not be addressed again.
  if (key.includes('\uFFFD')) return [];
  if (key.startsWith(`${ownPrefix}:`)) return [];
  // python-redis-lock's signal list is part of the lock `lock:<name>`, not a lock.
  if (key.startsWith('lock-signal:')) return [];
  const side = redissonSideKeyNames(key);
  if (side) return side.filter((n) => !n.startsWith(`${ownPrefix}:`)).map((n) => ({ key: n, direct: false }));
  return [{ key, direct: true }];
}

/** The connections a keyspace walk must cover: every master of a Cluster, else the one server. */
export function scanTargets(redis: RedisLike): RedisConn[] {
  return typeof redis.nodes === 'function' ? redis.nodes('master') : [redis];
}

/** A glob set compiled once: with one glob the server filters (SCAN MATCH), with several we do. */
export interface CompiledMatch {
  globs: string[];
  /** Extra SCAN arguments (`MATCH glob` when there is exactly one glob). */
  matchArgs: string[];
  wanted(key: string): boolean;
}

export function compileMatch(match: readonly string[]): CompiledMatch {
  const globs = [...new Set(match.map(validateMatchGlob))];
  // One alternation instead of one test per glob: a discovery pass tests every key of the keyspace.
  const any = globs.length === 0 ? /(?!)/ : new RegExp(globs.map((g) => `(?:${globToRegExp(g).source})`).join('|'));
  return {
    globs,
    matchArgs: globs.length === 1 ? ['MATCH', globs[0]!] : [],
    wanted: (key) => globs.length === 1 || any.test(key),
  };
}

/** A foreign lock key as discovery remembers it: `direct` when the key itself is under a glob. */
export interface ForeignCandidate {
  key: string;
  direct: boolean;
}

/**
 * The keys that may hold foreign locks among those one SCAN call returned (globs applied here
 * when the server did not): the key itself, or the Redisson lock a side key names. No I/O; the
 * background discovery (discovery.ts) collects these over many pages and reads them in batches
 * with `readForeignKeys`.
 */
export function foreignCandidates(keys: readonly string[], match: CompiledMatch, ownPrefix: string): ForeignCandidate[] {
  const out: ForeignCandidate[] = [];
  for (const key of keys) {
    if (!match.wanted(key)) continue;
    out.push(...candidatesFor(key, ownPrefix));
  }
  return out;
}

/**
 * Re-reads foreign lock keys found earlier (by discovery) and answers what holds them now, in the
 * same at most three pipelined round trips as a scan page: a key released since is simply absent,
 * so list() never shows a lock that is gone, whatever the age of the discovery pass.
 */
export async function readForeignKeys(conn: RedisConn, cands: readonly ForeignCandidate[], backendId: string, now: number): Promise<LockInfo[]> {
  return (await observe(conn, [...cands], backendId, now)).map((r) => r.info);
}

/**
 * Lists the foreign locks under `opts.match`. Keys under several globs, or returned twice by SCAN,
 * are reported once. Sorted by key.
 */
export async function scanForeign(redis: RedisLike, opts: ForeignScanOptions): Promise<{ locks: LockInfo[]; truncated: boolean }> {
  const compiled = compileMatch(opts.match);
  const globs = compiled.globs;
  const limit = Math.max(1, Math.floor(opts.limit ?? DEFAULT_LIMIT));
  const scanCount = Math.min(10_000, Math.max(10, Math.floor(opts.scanCount ?? DEFAULT_SCAN_COUNT)));
  let callsLeft = Math.max(1, Math.ceil((opts.maxKeysScanned ?? DEFAULT_MAX_KEYS_SCANNED) / scanCount));
  const q = opts.q?.toLowerCase() ?? '';
  const found = new Map<string, LockInfo>();
  const inspectedDirect = new Set<string>();
  const inspectedAny = new Set<string>();
  let truncated = false;

  // One cursor per server, whatever the number of globs: a cursor per glob would walk the whole
  // keyspace once per glob and split the budget between them, so each covered only a share of it.
  // With one glob the server filters (MATCH); with several, every key comes back once and is
  // matched here against the globs, compiled once.
  const { matchArgs, wanted } = compiled;
  for (const conn of scanTargets(redis)) {
    const c = { cursor: '0', done: globs.length === 0 };
    for (;;) {
      if (c.done) break;
      if (callsLeft <= 0 || found.size >= limit) {
        truncated = true;
        break;
      }
      callsLeft--;
      const replies = await run(conn, [{ cmd: 'scan', args: [c.cursor, ...matchArgs, 'COUNT', scanCount] }]);
      const cands: Candidate[] = [];
      {
        const [err, reply] = replies[0]!;
        if (err) throw err;
        const [cursor, keys] = reply as [string, string[]];
        c.cursor = String(cursor);
        c.done = c.cursor === '0';
        for (const key of keys) {
          if (!wanted(key)) continue;
          for (const cand of candidatesFor(key, opts.ownPrefix)) {
            if (q && !cand.key.toLowerCase().includes(q)) continue;
            if (cand.direct ? inspectedDirect.has(cand.key) : inspectedAny.has(cand.key)) continue;
            inspectedAny.add(cand.key);
            if (cand.direct) inspectedDirect.add(cand.key);
            cands.push(cand);
          }
        }
      }
      for (const r of await observe(conn, cands, opts.backendId, opts.now)) {
        if (!found.has(r.info.key)) found.set(r.info.key, r.info);
      }
    }
    if (truncated) break;
  }
  const locks = [...found.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  if (locks.length > limit) truncated = true;
  return { locks: locks.slice(0, limit), truncated };
}

async function recogniseKey(redis: RedisConn, backendId: string, key: string, now: number, opts: ForeignKeyOptions): Promise<Recognised | null> {
  if (opts.ownPrefix !== undefined && key.startsWith(`${opts.ownPrefix}:`)) return null;
  if (redissonSideKeyNames(key) !== null || key.startsWith('lock-signal:')) return null;
  const direct = opts.match ? matchesAnyGlob(key, opts.match) : true;
  const [r] = await observe(redis, [{ key, direct }], backendId, now);
  return r ?? null;
}

/** One foreign lock by its key, as `scanForeign` would show it; null when nothing recognisable holds it. */
export async function inspectForeignKey(
  redis: RedisLike,
  backendId: string,
  key: string,
  now: number,
  opts: ForeignKeyOptions = {},
): Promise<LockInfo | null> {
  return (await recogniseKey(redis, backendId, key, now, opts))?.info ?? null;
}

function meetsExpectation(info: LockInfo, expect: ForeignReleaseExpectation): boolean {
  if (expect.fence !== undefined && info.fence !== expect.fence) return false;
  if (expect.owner !== undefined && info.owner !== expect.owner && !info.holders.some((h) => h.owner === expect.owner)) return false;
  if (expect.valueHash !== undefined && info.meta?.valueHash !== expect.valueHash) return false;
  return true;
}

/**
 * Force-releases the foreign lock at `key`, and only the holder that is there now and meets
 * `expect` (fence, owner, and/or the `meta.valueHash` the operator saw): it reads the lock, checks
 * the expectation, then runs the layout's release as one Lua script that deletes only if the value
 * (string) or the holder fields (Redisson) are still exactly what was read, and sends the layout's
 * wake-up (python-redis-lock signal push; Redisson PUBLISH/SPUBLISH on the right channel).
 *
 * Answers 'released' with the lock as it was, 'changed' (nothing deleted) with the lock as it is
 * now when it is no longer what was expected, 'not-found' when nothing recognisable holds `key`.
 * The holder is not told (none of these layouts has a way); redis-py / python-redis-lock / Redisson
 * find out at their next release or extension, node-redlock `using()` at its next auto-extension.
 * For a Redlock quorum backend call this on every master: a lock counts as held on a majority.
 */
export async function forceReleaseForeign(
  redis: RedisLike,
  backendId: string,
  key: string,
  expect: ForeignReleaseExpectation,
  now: number,
  opts: ForeignKeyOptions = {},
): Promise<ForceReleaseResult> {
  const seen = await recogniseKey(redis, backendId, key, now, opts);
  if (!seen) return { status: 'not-found' };
  if (!meetsExpectation(seen.info, expect)) return { status: 'changed', lock: seen.info };
  const { script, keys, args } = seen.release;
  const r = Number(await redis.eval(script, keys.length, ...keys, ...args));
  if (r === 1) return { status: 'released', lock: seen.info };
  if (r === -1) return { status: 'not-found' };
  const current = await recogniseKey(redis, backendId, key, now, opts);
  return current ? { status: 'changed', lock: current.info } : { status: 'not-found' };
}
