/**
 * What the per-layout recognisers share: the observed state of one key, the release plan a
 * recogniser hands back, and small helpers (expiry from PTTL, value shape, value hash).
 *
 * Layout facts are from /work/shared/reference/lock-formats.md §1 (taken from each client's source);
 * every recogniser cites the client file it mirrors.
 */
import { createHash } from 'node:crypto';
import { isUtf8 } from 'node:buffer';

import { lockHealth } from '../../../locks/health';
import type { HolderInfo, LockHealth, LockInfo, LockKind, WaiterInfo } from '../../../locks/types';
import { tokenHash } from '../../../locks/util';

/** String values longer than this are never read: no lock client writes one (caches do). */
export const MAX_VALUE_BYTES = 512;
/** Hashes with more fields are never read: a Redisson lock hash has one field per holder thread. */
export const MAX_HASH_FIELDS = 1024;
/** At most this many queued waiters are listed (the full count goes to meta). */
export const MAX_WAITERS = 100;

/** A string key as read in one pipeline: PTTL (-1 none, -2 gone) and the exact value bytes. */
export interface StringObs {
  type: 'string';
  key: string;
  pttl: number;
  value: Buffer;
}

/** A hash key as read in one pipeline. */
export interface HashObs {
  type: 'hash';
  key: string;
  pttl: number;
  fields: Record<string, string>;
}

/** What a recogniser needs besides the key itself. */
export interface RecogniseContext {
  backendId: string;
  /** Server epoch ms at the time of the read. */
  now: number;
  /**
   * The key itself lies under a configured `match` glob (or was named explicitly). Weak, guessed
   * layouts (plain string locks) are only reported for such keys; a key reached only through a
   * Redisson side key must prove itself by its structure.
   */
  direct: boolean;
}

/**
 * A compare-and-delete for exactly what was observed, plus the layout's wake-up, as one script.
 * Every script answers 1 = released, 0 = the lock is no longer what was observed (nothing
 * changed), -1 = the key is gone.
 */
export interface ReleasePlan {
  script: string;
  keys: string[];
  args: Array<string | Buffer | number>;
}

export interface Recognised {
  info: LockInfo;
  release: ReleasePlan;
}

/** Key naming that says "this is a lock": a `lock`, `locks`, `mutex`, `lease` or `semaphore` segment. */
const LOCKISH_NAME = /(?:^|[^a-z])(?:locks?|mutex(?:es)?|leases?|semaphores?)(?:[^a-z]|$)/i;

export function hasLockishName(key: string): boolean {
  return LOCKISH_NAME.test(key);
}

/** The value as text when it is valid UTF-8, else null (python-redis-lock < 3.3 stores raw bytes). */
export function valueText(value: Buffer): string | null {
  return isUtf8(value) ? value.toString('utf8') : null;
}

/**
 * Short hash of the exact value bytes, safe to show and to send back as an expectation
 * ("release only if it is still this value"). Equals `tokenHash(value)` for text values.
 */
export function valueHash(value: Buffer | string): string {
  if (typeof value === 'string') return tokenHash(value);
  const text = valueText(value);
  return text !== null ? tokenHash(text) : createHash('sha256').update(value).digest('hex').slice(0, 10);
}

/** expiresAt / ttlMs from a PTTL read at `now` (-1: no expiry at all). */
export function expiryFromPttl(pttl: number, now: number): { expiresAt: number | null; ttlMs: number | null; noExpiry: boolean } {
  if (pttl >= 0) return { expiresAt: now + pttl, ttlMs: pttl, noExpiry: false };
  return { expiresAt: null, ttlMs: null, noExpiry: pttl === -1 };
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/;

export function isPrintable(text: string): boolean {
  return !CONTROL.test(text) && !text.includes('\n');
}

/** Everything a recogniser fills in; the rest of LockInfo is derived here. */
export interface InfoParts {
  key: string;
  format: string;
  kind?: LockKind;
  owner?: string | null;
  holders?: HolderInfo[];
  fence?: string | null;
  acquiredAt?: number | null;
  pttl: number;
  waiters?: WaiterInfo[];
  /** Full lease length when the layout lets us know or estimate it (enables `expiring`). */
  fullTtlMs?: number | null;
  /** Overrides the PTTL-based expiry (the legacy SETNX layout keeps its expiry in the value). */
  expiresAt?: number | null;
  meta?: Record<string, string | number | boolean | null>;
}

export function buildInfo(ctx: RecogniseContext, p: InfoParts): LockInfo {
  const fromPttl = expiryFromPttl(p.pttl, ctx.now);
  const expiresAt = p.expiresAt !== undefined ? p.expiresAt : fromPttl.expiresAt;
  const ttlMs = p.expiresAt !== undefined ? (p.expiresAt === null ? null : p.expiresAt - ctx.now) : fromPttl.ttlMs;
  const noExpiry = p.expiresAt !== undefined ? false : fromPttl.noExpiry;
  const health: LockHealth = lockHealth({ now: ctx.now, expiresAt, ttlMs: p.fullTtlMs ?? null, noExpiry });
  const owner = p.owner ?? null;
  const fence = p.fence ?? null;
  const acquiredAt = p.acquiredAt ?? null;
  return {
    backend: ctx.backendId,
    key: p.key,
    format: p.format,
    kind: p.kind ?? 'mutex',
    owner,
    holders: p.holders ?? [{ owner, fence, acquiredAt }],
    fence,
    acquiredAt,
    expiresAt,
    ttlMs,
    waiters: p.waiters ?? [],
    health,
    meta: { ...p.meta, ...(noExpiry ? { noExpiry: true } : {}) },
  };
}

/**
 * Compare-and-delete of a string key on its exact value (redis/docs: distributed-locks pattern;
 * lock-formats.md §1.1, §7.3.1): never a bare DEL, which could remove a successor's lock.
 * KEYS[1] = key; ARGV[1] = observed value.
 */
export const CAS_DELETE_STRING = `
local t = redis.call('type', KEYS[1])['ok']
if t == 'none' then return -1 end
if t ~= 'string' or redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('del', KEYS[1])
return 1
`;

export function casDeletePlan(obs: StringObs): ReleasePlan {
  return { script: CAS_DELETE_STRING, keys: [obs.key], args: [obs.value] };
}
