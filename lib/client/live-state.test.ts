import { describe, expect, it } from 'vitest';

import { liveLog } from './live-log';
import { applyBackendStatus, applyLiveEvents, stateFromList, type LiveEvent, type LocksState } from './live-state';
import type { BackendStatus, HistoryEvent, LockInfo, SnapshotEvent } from './types';

function lock(backend: string, key: string, over: Partial<LockInfo> = {}): LockInfo {
  return {
    backend, key, format: 'lockdeck', kind: 'mutex', owner: 'w1', holders: [], fence: '1',
    acquiredAt: 1000, expiresAt: 61_000, ttlMs: 60_000, waiters: [], health: 'ok', ...over,
  };
}

let id = 0;
function ev(type: HistoryEvent['type'], l: LockInfo, at = 5000): LiveEvent {
  return { kind: 'lock', receivedAt: at, event: { id: ++id, at, type, backend: l.backend, key: l.key, owner: l.owner, fence: l.fence, source: 'watch', lock: l } };
}

const status = (id: string, up: boolean): BackendStatus => ({ id, type: 'redis', status: up ? 'up' : 'down', ...(up ? {} : { error: 'ECONNREFUSED' }), checkedAt: 1, capabilities: null });

function snapshot(locks: LockInfo[], at = 1000): LiveEvent {
  const s: SnapshotEvent = { now: at, locks, unavailable: [], truncated: false, backends: [] };
  return { kind: 'snapshot', snapshot: s, receivedAt: at };
}

const keys = (s: LocksState | undefined) => [...(s?.locks.keys() ?? [])].map((k) => k.replace('\n', '/')).sort();

describe('applyLiveEvents', () => {
  const base = stateFromList({ now: 1000, locks: [lock('a', 'k1'), lock('b', 'k2')], unavailable: [], truncated: false }, 1000);

  it('upserts acquired and changed locks, removes released, expired and forced ones', () => {
    const s = applyLiveEvents(base, [ev('acquired', lock('a', 'k3')), ev('released', lock('a', 'k1')), ev('changed', lock('b', 'k2', { owner: 'w9' }))]);
    expect(keys(s)).toEqual(['a/k3', 'b/k2']);
    expect(s!.locks.get('b\nk2')!.owner).toBe('w9');
    expect(keys(applyLiveEvents(s, [ev('expired', lock('a', 'k3')), ev('forced', lock('b', 'k2'))]))).toEqual([]);
  });

  it('never mutates the state it was given (the cache compares by reference)', () => {
    const before = keys(base);
    const s = applyLiveEvents(base, [ev('released', lock('a', 'k1'))]);
    expect(keys(base)).toEqual(before);
    expect(s).not.toBe(base);
    expect(s!.locks).not.toBe(base.locks);
  });

  it('a snapshot replaces everything before it; later events apply on top', () => {
    const s = applyLiveEvents(base, [ev('acquired', lock('a', 'x')), snapshot([lock('c', 'only')]), ev('acquired', lock('c', 'after'))]);
    expect(keys(s)).toEqual(['c/after', 'c/only']);
  });

  it('without a state, only a snapshot can start one', () => {
    expect(applyLiveEvents(undefined, [ev('acquired', lock('a', 'k'))])).toBeUndefined();
    expect(keys(applyLiveEvents(undefined, [snapshot([]), ev('acquired', lock('a', 'k'))]))).toEqual(['a/k']);
  });

  it('is idempotent: replaying events a listing already reflects changes nothing', () => {
    const events = [ev('acquired', lock('a', 'k3')), ev('released', lock('a', 'k1'))];
    const once = applyLiveEvents(base, events)!;
    const twice = applyLiveEvents(once, events)!;
    expect(keys(twice)).toEqual(keys(once));
  });

  it('a backend that goes down takes its locks out and is listed as unavailable, never as empty', () => {
    const down = applyLiveEvents(base, [{ kind: 'backend', status: status('a', false), receivedAt: 2 }])!;
    expect(keys(down)).toEqual(['b/k2']);
    expect(down.unavailable).toEqual([{ backend: 'a', error: 'ECONNREFUSED' }]);
    const up = applyLiveEvents(down, [{ kind: 'backend', status: status('a', true), receivedAt: 3 }])!;
    expect(up.unavailable).toEqual([]);
  });
});

describe('liveLog', () => {
  it('replays to a listing exactly the events that arrived while it was in flight', () => {
    liveLog.push(ev('acquired', lock('a', 'before')));
    const mark = liveLog.mark();
    const during = ev('acquired', lock('a', 'during'));
    liveLog.push(during);
    expect(liveLog.since(mark)).toEqual([during]);
    liveLog.release(mark);
    expect(liveLog.since(mark)).toEqual([]);
  });

  it('a listing that raced with a release does not bring the lock back', () => {
    const mark = liveLog.mark();
    const gone = lock('a', 'k1');
    liveLog.push(ev('released', gone));
    // The listing was read before the release reached the server's list.
    const listed = stateFromList({ now: 1000, locks: [gone], unavailable: [], truncated: false }, 1000);
    expect(keys(applyLiveEvents(listed, liveLog.since(mark)))).toEqual([]);
    liveLog.release(mark);
  });
});

describe('applyBackendStatus', () => {
  it('updates the one backend, appends unknown ones', () => {
    const list = [status('a', true), status('b', true)];
    expect(applyBackendStatus(list, status('b', false)).map((b) => b.status)).toEqual(['up', 'down']);
    expect(applyBackendStatus(list, status('c', true)).map((b) => b.id)).toEqual(['a', 'b', 'c']);
  });
});
