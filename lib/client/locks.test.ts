import { describe, expect, it } from 'vitest';

import { formatDuration, shortHash } from './format';
import { filterLocks, filtersToSearch, liveHealth, lockHref, parseFilters, shortFence, sortLocks, summarize, DEFAULT_FILTERS, LONG_HELD_MS } from './locks';
import { releaseRequestFor } from './release';
import type { LockInfo } from './types';

const NOW = 10_000_000;

function lock(key: string, over: Partial<LockInfo> = {}): LockInfo {
  return {
    backend: 'local', key, format: 'lockdeck', kind: 'mutex', owner: 'w1', holders: [], fence: '1',
    acquiredAt: NOW - 1000, expiresAt: NOW + 60_000, ttlMs: 60_000, waiters: [], health: 'ok', ...over,
  };
}

describe('liveHealth', () => {
  it('turns an ok lease into expired the moment the server clock passes its expiry', () => {
    expect(liveHealth(lock('a'), NOW)).toBe('ok');
    expect(liveHealth(lock('a', { expiresAt: NOW - 1 }), NOW)).toBe('expired');
    expect(liveHealth(lock('a', { health: 'orphaned', expiresAt: null }), NOW)).toBe('orphaned');
  });
});

describe('filters in the URL', () => {
  it('round-trip, leaving defaults out', () => {
    const f = { ...DEFAULT_FILTERS, q: 'billing:inv', backend: 'cache', health: 'expired' as const, sort: 'ttl' as const, dir: 'asc' as const };
    const search = filtersToSearch(f);
    expect(search).toBe('?q=billing%3Ainv&backend=cache&health=expired&sort=ttl');
    expect(parseFilters(new URLSearchParams(search))).toEqual(f);
    expect(filtersToSearch(DEFAULT_FILTERS)).toBe('');
  });

  it('ignore values they do not know', () => {
    expect(parseFilters(new URLSearchParams('sort=nope&health=weird&dir=up'))).toEqual(DEFAULT_FILTERS);
  });
});

describe('filterLocks and sortLocks', () => {
  const locks = [
    lock('b/2', { expiresAt: NOW + 5000, acquiredAt: NOW - 50_000, waiters: [{ owner: 'x', since: NOW }] }),
    lock('a/1', { expiresAt: null, health: 'orphaned', owner: 'host-7', acquiredAt: null }),
    lock('c/3', { expiresAt: NOW - 10, acquiredAt: NOW - 100_000 }),
    lock('d/4', { backend: 'cache', format: 'shedlock', waiters: [{ owner: 'y', since: NOW }, { owner: 'z', since: NOW }] }),
  ];

  it('match key or owner, case-insensitively, plus backend, format and live health', () => {
    expect(filterLocks(locks, { ...DEFAULT_FILTERS, q: 'HOST-7' }, NOW).map((l) => l.key)).toEqual(['a/1']);
    expect(filterLocks(locks, { ...DEFAULT_FILTERS, backend: 'cache' }, NOW).map((l) => l.key)).toEqual(['d/4']);
    expect(filterLocks(locks, { ...DEFAULT_FILTERS, format: 'shedlock' }, NOW).map((l) => l.key)).toEqual(['d/4']);
    expect(filterLocks(locks, { ...DEFAULT_FILTERS, health: 'expired' }, NOW).map((l) => l.key)).toEqual(['c/3']);
  });

  it('sort by TTL, age and waiters with unknowns last; attention puts stuck locks first', () => {
    const keys = (s: Parameters<typeof sortLocks>[1], d: Parameters<typeof sortLocks>[2]) => sortLocks([...locks], s, d, NOW).map((l) => l.key);
    expect(keys('ttl', 'asc')).toEqual(['c/3', 'b/2', 'd/4', 'a/1']);
    expect(keys('age', 'desc')).toEqual(['c/3', 'b/2', 'd/4', 'a/1']);
    expect(keys('waiters', 'desc')).toEqual(['d/4', 'b/2', 'a/1', 'c/3']);
    expect(keys('attention', 'asc').slice(0, 2)).toEqual(['c/3', 'a/1']);
  });

  it('summarize counts health, waiters, long-held and per backend', () => {
    const s = summarize([...locks, lock('e/5', { acquiredAt: NOW - LONG_HELD_MS - 1 })], NOW);
    expect(s.total).toBe(5);
    expect(s.waiters).toBe(3);
    expect(s.contended).toBe(2);
    expect(s.byHealth.expired).toBe(1);
    expect(s.byHealth.orphaned).toBe(1);
    expect(s.longHeld).toBe(1);
    expect(s.mostContended[0]!.key).toBe('d/4');
    expect(s.byBackend.get('cache')).toEqual({ locks: 1, waiters: 2 });
  });
});

describe('links and display', () => {
  it('shows a long fence by its end, where two holders differ', () => {
    expect(shortFence('42')).toBe('42');
    expect(shortFence('4294967310')).toBe('4294967310');
    expect(shortFence('1795705635120136')).toBe('…35120136');
    expect(shortFence('1795705635121274')).not.toBe(shortFence('1795705635120136'));
  });
  it('puts keys with slashes and colons in query parameters', () => {
    const href = lockHref('zk', '/locks/report:nightly job');
    expect(href).toBe('/lock?backend=zk&key=%2Flocks%2Freport%3Anightly+job');
    expect(new URL(href, 'http://x').searchParams.get('key')).toBe('/locks/report:nightly job');
  });

  it('formats durations densely and hashes short', () => {
    expect(formatDuration(45_400)).toBe('45s');
    expect(formatDuration(243_000)).toBe('4m 03s');
    expect(formatDuration(2 * 3600_000 + 5 * 60_000)).toBe('2h 05m');
    expect(formatDuration(-5)).toBe('0s');
    expect(shortHash('0123456789abcdef')).toBe('01234567');
  });
});

describe('releaseRequestFor', () => {
  it('sends the holder that was shown, and the value hash for foreign layouts', () => {
    expect(releaseRequestFor(lock('k', { fence: '7', owner: 'w' }), ' stuck ')).toEqual({ backend: 'local', key: 'k', fence: '7', owner: 'w', reason: 'stuck' });
    const foreign = lock('job-lock:default:x', { format: 'shedlock', fence: null, owner: 'host-1', meta: { valueHash: 'abcdef0123' } });
    expect(releaseRequestFor(foreign, 'r')).toEqual({ backend: 'local', key: 'job-lock:default:x', owner: 'host-1', valueHash: 'abcdef0123', reason: 'r' });
  });
});
