/**
 * 'redis-plain': a string key taken with `SET key token NX PX ms` (lock-formats.md §1.1–1.3).
 *
 * Sources:
 *  - redis/docs:content/develop/use/patterns/distributed-locks.md (the canonical pattern);
 *  - mike-marcacci/node-redlock:src/index.ts (npm `redlock` v5): value `randomBytes(16).toString("hex")`,
 *    no key prefix, PX TTL;
 *  - redis/redis-py:redis/lock.py (`Lock.acquire`/`do_acquire`): value `uuid.uuid1().hex`, no key
 *    prefix, PX TTL or **no TTL** when `timeout=None` (the default).
 *
 * Neither client writes an owner, an acquisition time or a fence. A redis-py token is a version-1
 * UUID, which carries the time it was made: redis-py makes it once per `acquire()` call, before
 * its retry loop, so the decoded time is the first attempt (holder's clock), not the success.
 *
 * When a string key is reported (the "non-lock key" rule): only for keys under a configured
 * `match` glob (that glob says locks live there), only values up to 512 bytes, and then if
 *  (a) the key has a lock-like name (a `lock`/`locks`/`mutex`/`lease`/`semaphore` segment), or
 *  (b) the value looks like a random token (hex, UUID, base64, or up to 64 raw bytes), or
 *  (c) the key has a TTL and the value is short printable text (≤ 128 chars: a hostname or pid
 *      written with `SET NX PX`).
 * Anything else (a counter or some text with no TTL, a long value) is data, not a lock.
 */
import { tokenHash } from '../../../locks/util';
import {
  buildInfo,
  casDeletePlan,
  hasLockishName,
  isPrintable,
  MAX_VALUE_BYTES,
  valueHash,
  valueText,
  type Recognised,
  type RecogniseContext,
  type StringObs,
} from './common';

export const FORMAT_PLAIN = 'redis-plain';

export type TokenShape = 'uuid1-hex' | 'hex32' | 'hex' | 'uuid' | 'base64' | 'binary' | 'text';

/** Start of the UUID epoch (1582-10-15) in 100 ns ticks before the Unix epoch (RFC 9562 §5.1). */
const UUID_EPOCH_OFFSET = 0x01b21dd213814000n;
const TEN_YEARS_MS = 10 * 365.25 * 24 * 3600 * 1000;
const HOUR_MS = 3600 * 1000;

/**
 * The time a 32-hex version-1 UUID (Python `uuid1().hex`) was made, in epoch ms, or null when
 * the text is not one. About 1 in 64 random tokens (redlock's) also has the version and variant
 * nibbles of a uuid1 (lock-formats.md §7.1), so a decoded time is accepted only if it is
 * plausible (within ten years before `now` and an hour after), which leaves ~1 in 23 000.
 */
export function decodeUuid1Hex(hex: string, now: number): { ms: number; node: string; randomNode: boolean } | null {
  if (!/^[0-9a-f]{32}$/.test(hex) || hex[12] !== '1' || !'89ab'.includes(hex[16]!)) return null;
  const timeLow = BigInt(`0x${hex.slice(0, 8)}`);
  const timeMid = BigInt(`0x${hex.slice(8, 12)}`);
  const timeHi = BigInt(`0x${hex.slice(13, 16)}`);
  const ticks = (timeHi << 48n) | (timeMid << 32n) | timeLow;
  const ms = Number((ticks - UUID_EPOCH_OFFSET) / 10_000n);
  if (ms < now - TEN_YEARS_MS || ms > now + HOUR_MS) return null;
  const node = hex.slice(20);
  // The multicast bit of the first node octet marks a random node id instead of a MAC (RFC 9562 §6.10).
  const randomNode = (parseInt(node.slice(0, 2), 16) & 1) === 1;
  return { ms, node, randomNode };
}

export function tokenShape(value: Buffer, now: number): TokenShape {
  const text = valueText(value);
  if (text === null) return 'binary';
  if (/^[0-9a-f]{32}$/.test(text)) return decodeUuid1Hex(text, now) ? 'uuid1-hex' : 'hex32';
  if (/^[0-9a-fA-F]{16,128}$/.test(text)) return 'hex';
  if (/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(text)) return 'uuid';
  if (/^[A-Za-z0-9+/_-]{16,88}={0,2}$/.test(text) && /\d/.test(text) && /[A-Za-z]/.test(text)) return 'base64';
  return 'text';
}

export function recognisePlain(obs: StringObs, ctx: RecogniseContext): Recognised | null {
  if (!ctx.direct || obs.value.length > MAX_VALUE_BYTES || obs.value.length === 0) return null;
  const shape = tokenShape(obs.value, ctx.now);
  const text = valueText(obs.value);
  const tokenLike = shape !== 'text' && !(shape === 'binary' && obs.value.length > 64);
  const shortText = text !== null && text.length <= 128 && isPrintable(text);
  if (!(hasLockishName(obs.key) || tokenLike || (obs.pttl >= 0 && shortText))) return null;

  const meta: Record<string, string | number | boolean | null> = {
    valueHash: valueHash(obs.value),
    valueBytes: obs.value.length,
    tokenShape: shape,
  };
  let acquiredAt: number | null = null;
  let fullTtlMs: number | null = null;
  if (shape === 'uuid1-hex') {
    const u = decodeUuid1Hex(text!, ctx.now)!;
    acquiredAt = u.ms;
    meta.likelyClient = 'redis-py';
    meta.acquiredAtSource =
      'decoded from the redis-py uuid1 token: when acquire() was first called (before any retries), by the holder\'s clock';
    // Only a hash of the node id: with the decoded time it would give away most of the token.
    meta.tokenNodeHash = tokenHash(u.node);
    meta.tokenNodeIsMac = !u.randomNode;
    if (obs.pttl >= 0) fullTtlMs = Math.max(obs.pttl, ctx.now + obs.pttl - u.ms);
  } else if (shape === 'hex32') {
    meta.likelyClient = 'node-redlock';
  }
  if (obs.pttl === -1) meta.note = 'no TTL: a crashed holder (or SETNX without its EXPIRE) leaves it forever';
  return {
    info: buildInfo(ctx, { key: obs.key, format: FORMAT_PLAIN, pttl: obs.pttl, acquiredAt, fullTtlMs, meta }),
    release: casDeletePlan(obs),
  };
}
