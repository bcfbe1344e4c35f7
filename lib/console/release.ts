import 'server-only';

/**
 * Force-release (`POST /api/locks/release`, operator only). The console never deletes a lock
 * itself: it calls the backend's `forceRelease`, the layout's own compare-and-delete, with the
 * fence/owner the operator saw, so a lock that changed hands since is answered 409 and left alone.
 *
 * Every attempt is audited before it is answered, whatever its outcome: released, changed (409),
 * not found (404), refused (401/403/405/400/413/415/429) or failed (5xx). Refusals decided in
 * withAuth reach {@link auditRefusedRelease}; everything after it goes through the single
 * try/catch in {@link handleRelease}.
 */
import { z } from 'zod';

import type { ForceReleaseExpectation, ForceReleaseResult, LeaseRevoker, LockBackend, RevokeLeaseResult } from '../locks/types';
import { clip, getAudit, type AuditAction, type AuditResult, type NewAuditEntry } from './audit';
import type { Principal } from './auth';
import { getTuning } from './config';
import { backendIdSchema, describeError, errorResponse, HttpError, jsonResponse, keySchema, readJsonBody } from './http';
import { publicLock } from './inventory';
import { getMetrics } from './metrics';
import { getReleaseLimiter } from './rate-limit';
import { getRegistry } from './registry';

// eslint-disable-next-line no-control-regex
const CONTROL_EXCEPT_WHITESPACE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Optional expectation text; `null` (a field the lock did not have) means "not given". */
const expectation = (max: number) =>
  z
    .string({ error: 'must be a string' })
    .min(1, 'must not be empty')
    .max(max, `must be at most ${max} characters`)
    .refine((s) => !CONTROL.test(s), 'must not contain control characters')
    .nullish()
    .transform((v) => v ?? undefined);

export const releaseBodySchema = z
  .object({
    backend: backendIdSchema,
    key: keySchema,
    /** Release only if this fence still holds the lock. */
    fence: expectation(200),
    /** Release only if this owner still holds the lock. */
    owner: expectation(512),
    /**
     * Release only if the stored value is still the one shown (`meta.valueHash`). For foreign
     * string locks that have neither fence nor owner (redis-py, node-redlock), this is the only
     * way to say "the lock I saw". Added to the contract.
     */
    valueHash: z.string().regex(/^[0-9a-f]{6,64}$/, 'must be the hex hash shown in meta.valueHash').nullish().transform((v) => v ?? undefined),
    /**
     * `release` (default): the lock's own compare-and-delete. `revoke-lease` (etcd only): end the
     * holder's lease, which drops every key on it — other locks of that session included. Added
     * to the contract; audited as its own action.
     */
    action: z.enum(['release', 'revoke-lease'], { error: 'must be "release" or "revoke-lease"' }).optional(),
    reason: z
      .string({ error: 'is required' })
      .trim()
      .min(1, 'is required: say why the lock is being released')
      .max(500, 'must be at most 500 characters')
      .refine((s) => !CONTROL_EXCEPT_WHITESPACE.test(s), 'must not contain control characters'),
  })
  .strict();

export type ReleaseInput = z.infer<typeof releaseBodySchema>;

type Attempt = Omit<NewAuditEntry, 'result' | 'status' | 'code' | 'message'>;

function str(v: unknown): unknown {
  return typeof v === 'string' || typeof v === 'number' ? v : v === undefined || v === null ? null : JSON.stringify(v);
}

/** The audit fields of a request body, whatever shape it has (refused bodies included). */
function attemptFrom(body: unknown, principal: Principal | null): Attempt {
  const b = (body !== null && typeof body === 'object' && !Array.isArray(body) ? body : {}) as Record<string, unknown>;
  return {
    at: Date.now(),
    actor: principal?.actor ?? 'anonymous',
    via: principal?.via ?? null,
    backend: clip(str(b.backend), 64),
    key: clip(str(b.key), 512),
    owner: null,
    fence: null,
    expectOwner: clip(str(b.owner), 512),
    expectFence: clip(str(b.fence), 200),
    reason: clip(str(b.reason), 500),
    action: b.action === 'revoke-lease' ? 'revoke-lease' : 'release',
  };
}

function canRevoke(b: LockBackend): b is LockBackend & LeaseRevoker {
  return typeof (b as Partial<LeaseRevoker>).revokeLease === 'function';
}

function backendLabel(id: string | null): string {
  return id !== null && getRegistry().has(id) ? id : 'unknown';
}

function record(a: Attempt, result: AuditResult, status: number, code: string | null, message: string | null): void {
  getMetrics().forcedReleases.inc({ backend: backendLabel(a.backend), result });
  getAudit().append({ ...a, result, status, code, message });
}

async function peekBody(request: Request): Promise<unknown> {
  try {
    return await readJsonBody(request);
  } catch {
    return null;
  }
}

/** withAuth's `onRefused` for the release route: records the refusal with what the body named. */
export async function auditRefusedRelease(request: Request, refusal: HttpError, principal: Principal | null): Promise<void> {
  const a = attemptFrom(await peekBody(request), principal);
  record(a, 'refused', refusal.status, refusal.code, refusal.message);
}

/** The release itself, for an authorized operator. Always audits before it returns. */
export async function handleRelease(request: Request, principal: Principal): Promise<Response> {
  let a: Attempt = attemptFrom(null, principal);
  let outcome: ForceReleaseResult | RevokeLeaseResult | undefined;
  try {
    const body = await readJsonBody(request);
    a = attemptFrom(body, principal);
    const waitMs = getReleaseLimiter(getTuning().releasesPerMinute).take(principal.actor);
    if (waitMs > 0) {
      throw new HttpError(429, 'rate_limited', `too many force-releases; try again in ${Math.ceil(waitMs / 1000)} s`, {
        'Retry-After': String(Math.ceil(waitMs / 1000)),
      });
    }
    const input = releaseBodySchema.parse(body);
    const action: AuditAction = input.action ?? 'release';
    a = { ...a, backend: input.backend, key: input.key, reason: input.reason, action };
    getRegistry().configOf(input.backend); // unknown → 400
    const expect: ForceReleaseExpectation & { valueHash?: string } = {};
    if (input.fence !== undefined) expect.fence = input.fence;
    if (input.owner !== undefined) expect.owner = input.owner;
    // Passed through to the Redis foreign-layout release, which checks it (formats.ts
    // ForeignReleaseExpectation); backends that do not know it ignore it.
    if (input.valueHash !== undefined) expect.valueHash = input.valueHash;
    if (action === 'revoke-lease') {
      // (A refusal thrown inside call() would be taken for a store failure: decide it outside.)
      const revoked = await getRegistry().call(input.backend, 'revokeLease', async (b) => (canRevoke(b) ? b.revokeLease(input.key, expect) : null));
      if (!revoked) throw new HttpError(400, 'not_supported', `backend "${input.backend}" has no leases to revoke: use a plain release`);
      outcome = revoked;
    } else {
      outcome = await getRegistry().call(input.backend, 'forceRelease', (b) => b.forceRelease(input.key, expect));
    }
    if (outcome.status === 'revoked') {
      const lock = publicLock(outcome.lock, input.backend);
      const message = `lease ${outcome.lease} revoked: ${outcome.keys.length} key(s) dropped`;
      record({ ...a, owner: lock.owner, fence: lock.fence }, 'released', 200, null, message);
      return jsonResponse({ released: true, lock, revoked: { lease: outcome.lease, keys: outcome.keys } });
    }
    if (outcome.status === 'released') {
      const lock = publicLock(outcome.lock, input.backend);
      record({ ...a, owner: lock.owner, fence: lock.fence }, 'released', 200, null, null);
      return jsonResponse({ released: true, lock });
    }
    if (outcome.status === 'changed') {
      const lock = publicLock(outcome.lock, input.backend);
      const message = `"${input.key}" is now held by ${lock.owner ?? 'an unknown owner'}${lock.fence ? ` (fence ${lock.fence})` : ''}, not the holder you named; nothing was released`;
      record({ ...a, owner: lock.owner, fence: lock.fence }, 'changed', 409, 'lock_changed', message);
      return jsonResponse({ error: { code: 'lock_changed', message }, lock }, 409);
    }
    const message = `nothing holds "${input.key}" on backend "${input.backend}"`;
    record(a, 'not-found', 404, 'not_found', message);
    return jsonResponse({ error: { code: 'not_found', message } }, 404);
  } catch (err) {
    const d = describeError(err);
    try {
      // Reached with an outcome only when recording it failed: do not record twice.
      if (outcome === undefined) record(a, d.status >= 500 ? 'error' : 'refused', d.status, d.code, d.message);
    } catch (auditErr) {
      console.error('[lockdeck] cannot write the audit log:', auditErr);
      return errorResponse(new HttpError(500, 'audit_failed', 'the attempt could not be recorded in the audit log'));
    }
    if (outcome !== undefined) {
      console.error('[lockdeck] cannot write the audit log:', err);
      const done = outcome.status === 'released' ? 'the lock WAS released, but ' : '';
      return errorResponse(new HttpError(500, 'audit_failed', `${done}the attempt could not be recorded in the audit log`));
    }
    return errorResponse(err);
  }
}
