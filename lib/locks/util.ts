import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

import { abortError, InvalidArgumentError } from './errors';
import type { AcquireOptions, OwnerInfo } from './types';

/** Resolves after `ms`, or rejects with the signal's reason; always removes its listener. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Random, URL-safe id. 16 bytes = 128 bits: unguessable tokens for compare-and-delete. */
export function randomId(bytes = 16): string {
  return randomBytes(bytes).toString('base64url');
}

/**
 * A short, stable hash of a holder's secret token, safe to show: the console may display it so an
 * operator can tell two holders apart, but it cannot be used to release or extend the lock.
 */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 10);
}

/** Read once: os.hostname() is a system call, and every acquire names its owner. */
let HOST: string | undefined;

export function makeOwner(instance: string, id?: string): OwnerInfo {
  const host = (HOST ??= hostname());
  return Object.freeze({ id: id ?? `${host}:${process.pid}/${instance}`, host, pid: process.pid, instance });
}

/** Orders two fencing tokens (decimal integers of any size): negative when a < b. */
export function compareFences(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

export const DEFAULT_ACQUIRE_OPTIONS: Readonly<AcquireOptions> = Object.freeze({
  ttlMs: 30_000,
  waitMs: 0,
  autoRenew: true,
});

/** Lock names: 1..512 characters, no control characters. Same rule for every backend. */
export const MAX_NAME_LENGTH = 512;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

export function validateName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('lock name must be a non-empty string');
  if (name.length > MAX_NAME_LENGTH) throw new InvalidArgumentError(`lock name is longer than ${MAX_NAME_LENGTH} characters`);
  if (CONTROL_CHARS.test(name)) throw new InvalidArgumentError('lock name contains a control character');
  return name;
}

/**
 * Merges options over the defaults and validates them with messages that name the field.
 * `waitMs`, when given, replaces the caller's (tryAcquire: `resolveAcquireOptions(opts, 0)` is
 * `resolveAcquireOptions({ ...opts, waitMs: 0 })` without the copy).
 */
export function resolveAcquireOptions(opts: Partial<AcquireOptions> | undefined, waitMs?: number): AcquireOptions {
  // One object, filled in one pass: this runs on every acquire, and each spread/copy costs.
  const d = DEFAULT_ACQUIRE_OPTIONS;
  const o: AcquireOptions = { ttlMs: d.ttlMs, waitMs: d.waitMs, autoRenew: d.autoRenew };
  if (opts) assignDefined(o as unknown as Record<string, unknown>, opts);
  if (waitMs !== undefined) o.waitMs = waitMs;
  if (!Number.isInteger(o.ttlMs) || o.ttlMs < 10 || o.ttlMs > 2_147_483_647) {
    throw new InvalidArgumentError(`ttlMs must be an integer from 10 to 2147483647, got ${String(o.ttlMs)}`);
  }
  if (!(o.waitMs === Infinity || (Number.isInteger(o.waitMs) && o.waitMs >= 0))) {
    throw new InvalidArgumentError(`waitMs must be a non-negative integer or Infinity, got ${String(o.waitMs)}`);
  }
  if (o.owner !== undefined && (typeof o.owner !== 'string' || o.owner.length === 0 || o.owner.length > 200 || CONTROL_CHARS.test(o.owner))) {
    throw new InvalidArgumentError('owner must be a string of 1 to 200 characters without control characters');
  }
  if (o.labels !== undefined) {
    const entries = Object.entries(o.labels);
    if (entries.length > 16) throw new InvalidArgumentError('labels: at most 16 entries');
    for (const [k, v] of entries) {
      if (typeof v !== 'string' || k.length > 64 || v.length > 512) {
        throw new InvalidArgumentError(`labels.${k}: keys up to 64 and string values up to 512 characters`);
      }
    }
  }
  return o;
}

/** Copies the own enumerable properties of `from` that are not undefined (a plain loop: hot path). */
function assignDefined(to: Record<string, unknown>, from: object): void {
  for (const k in from) {
    // `__proto__` would set the prototype instead of a property (a spread copy drops it too).
    if (k === '__proto__' || !Object.prototype.hasOwnProperty.call(from, k)) continue;
    const v = (from as Record<string, unknown>)[k];
    if (v !== undefined) to[k] = v;
  }
}
