/**
 * The browser's copy of every held lock, and how stream events change it. Pure functions, unit
 * tested in live-state.test.ts; lib/client/events.ts applies them to the TanStack Query cache.
 *
 * Rules (the event stream's contract, lib/console/events.ts):
 *  - `snapshot` replaces everything (sent first on every (re)connection);
 *  - `acquired` / `changed` upsert the lock they carry;
 *  - `released` / `expired` / `forced` remove the key (the lock is gone);
 *  - `lost` (a lockdeck holder's telemetry) and `attempt` (never streamed) change nothing;
 *  - `backend` down: that backend's locks can no longer be vouched for, so they leave the list and
 *    the backend joins `unavailable` (the page says "down", never "no locks"); back up: it leaves
 *    `unavailable`, and the caller refetches the listing to get its locks back.
 * Applying an event twice, or an event the state already reflects, changes nothing, which is what
 * lets a listing that raced with the stream be corrected by replaying the events it may have
 * missed (live-log.ts).
 */
import { lockId } from './locks';
import type { BackendStatus, HistoryEvent, LockInfo, LockList, SnapshotEvent } from './types';

export interface LocksState {
  /** Server epoch ms of the listing or snapshot this state started from. */
  now: number;
  /** Browser epoch ms when the last change was applied ("updated 3 s ago"). */
  updatedAt: number;
  /** By {@link lockId}. A new Map on every change (the cache compares by reference). */
  locks: ReadonlyMap<string, LockInfo>;
  /** Backends whose locks are missing, and why. */
  unavailable: ReadonlyArray<{ backend: string; error: string }>;
  /** The server cut the listing at its limit. */
  truncated: boolean;
}

export type LiveEvent =
  | { kind: 'snapshot'; snapshot: SnapshotEvent; receivedAt: number }
  | { kind: 'lock'; event: HistoryEvent; receivedAt: number }
  | { kind: 'backend'; status: BackendStatus; receivedAt: number };

const REMOVING = new Set(['released', 'expired', 'forced']);
/** Telemetry: about a client, not the lock; the lock's own change comes as its own event. */
const IGNORED = new Set(['lost', 'attempt']);

export function stateFromList(list: Pick<LockList, 'now' | 'locks' | 'unavailable' | 'truncated'>, receivedAt: number): LocksState {
  const locks = new Map<string, LockInfo>();
  for (const l of list.locks) locks.set(lockId(l.backend, l.key), l);
  return { now: list.now, updatedAt: receivedAt, locks, unavailable: list.unavailable ?? [], truncated: !!list.truncated };
}

/**
 * `state` with `events` applied, in order. Without a state and without a snapshot among the
 * events there is nothing to apply them to: undefined (the listing, when it lands, replays them).
 */
export function applyLiveEvents(state: LocksState | undefined, events: readonly LiveEvent[]): LocksState | undefined {
  let start = 0;
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    if (e.kind === 'snapshot') {
      state = stateFromList(e.snapshot, e.receivedAt);
      start = i + 1;
      break;
    }
  }
  if (!state || start >= events.length) return state;

  let locks: Map<string, LockInfo> | null = null;
  let unavailable = state.unavailable;
  let updatedAt = state.updatedAt;
  const mutable = () => (locks ??= new Map(state!.locks));
  for (let i = start; i < events.length; i++) {
    const e = events[i]!;
    updatedAt = Math.max(updatedAt, e.receivedAt);
    if (e.kind === 'lock') {
      const ev = e.event;
      const id = lockId(ev.backend, ev.key);
      if (IGNORED.has(ev.type)) continue;
      if (REMOVING.has(ev.type)) {
        if ((locks ?? state.locks).has(id)) mutable().delete(id);
      } else if (ev.lock) {
        mutable().set(id, { ...ev.lock, backend: ev.backend });
      }
    } else if (e.kind === 'backend') {
      const s = e.status;
      if (s.status === 'down') {
        const m = mutable();
        for (const [id, l] of m) if (l.backend === s.id) m.delete(id);
        unavailable = [...unavailable.filter((u) => u.backend !== s.id), { backend: s.id, error: s.error ?? 'down' }].sort((a, b) =>
          a.backend < b.backend ? -1 : 1,
        );
      } else if (unavailable.some((u) => u.backend === s.id)) {
        unavailable = unavailable.filter((u) => u.backend !== s.id);
      }
    }
  }
  return { ...state, locks: locks ?? state.locks, unavailable, updatedAt };
}

/** Applies a backend status event to the backends list (unknown ids are appended). */
export function applyBackendStatus(list: BackendStatus[], status: BackendStatus): BackendStatus[] {
  let found = false;
  const out = list.map((b) => {
    if (b.id !== status.id) return b;
    found = true;
    // A transition event carries no latency for a backend that is down; keep the rest as sent.
    return { ...b, ...status };
  });
  return found ? out : [...out, status];
}
