/**
 * Force-release as the dialog uses it: the request carries exactly what the operator was shown
 * (fence, owner, and for foreign layouts the hash of the stored value), so the server's
 * compare-and-delete refuses with 409 if the lock changed hands in between, and nothing else is
 * ever released. On success the lock leaves the cache at once (the stream's `forced` event says
 * the same a moment later; applying both is harmless).
 */
import { useMutation, useQueryClient } from '@tanstack/react-query';

import { api } from './api';
import { lockId } from './locks';
import { queryKeys, type LockDetailData } from './queries';
import type { LocksState } from './live-state';
import type { LockInfo, ReleaseRequest } from './types';

/** The request body for releasing `lock` as shown, with `reason`. */
export function releaseRequestFor(lock: LockInfo, reason: string, action: 'release' | 'revoke-lease' = 'release'): ReleaseRequest {
  const body: ReleaseRequest = { backend: lock.backend, key: lock.key, reason: reason.trim() };
  if (action === 'revoke-lease') body.action = action;
  if (lock.fence !== null) body.fence = lock.fence;
  if (lock.owner !== null) body.owner = lock.owner;
  const valueHash = lock.meta?.valueHash;
  // Foreign layouts (redis-py, ShedLock, Redisson...) often have no fence and no reliable owner:
  // the hash of the value that was shown is what pins "the lock I saw".
  if (lock.format !== 'lockdeck' && typeof valueHash === 'string' && /^[0-9a-f]{6,64}$/.test(valueHash)) body.valueHash = valueHash;
  return body;
}

/** Same holder: same fence, owner and stored value (as far as each is known). */
export function sameHolder(a: LockInfo, b: LockInfo): boolean {
  return a.fence === b.fence && a.owner === b.owner && (a.meta?.valueHash ?? null) === (b.meta?.valueHash ?? null);
}

export function useReleaseLock() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: ({ lock, reason, action }: { lock: LockInfo; reason: string; action?: 'release' | 'revoke-lease' }) =>
      api.release(releaseRequestFor(lock, reason, action)),
    onSuccess: (answer, { lock }) => {
      const released = answer.lock ?? lock;
      const id = lockId(lock.backend, lock.key);
      // Only the holder that was released: a waiter may already hold it (its `acquired` event can
      // arrive before this answer), and that entry must stay.
      qc.setQueryData<LocksState>(queryKeys.locks(), (old) => {
        const cur = old?.locks.get(id);
        if (!old || !cur || !sameHolder(cur, released)) return old;
        const locks = new Map(old.locks);
        locks.delete(id);
        return { ...old, locks, updatedAt: Date.now() };
      });
      qc.setQueryData<LockDetailData>(queryKeys.lock(lock.backend, lock.key), (old) =>
        old && old.lock && sameHolder(old.lock, released) ? { ...old, lock: null } : old,
      );
    },
    onSettled: () => {
      void qc.invalidateQueries({ queryKey: queryKeys.auditRoot() });
    },
  });
}
