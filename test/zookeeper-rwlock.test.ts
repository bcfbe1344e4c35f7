/**
 * lockdeck's ZooKeeper read/write lock (Curator InterProcessReadWriteLock layout): the sharing and
 * queueing rules on their own, then mixed with real Curator readers and writers on one path.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';

import { createZooKeeperBackend } from '../lib/backends/zookeeper';
import { compareFences, type LockBackend, type LockHandle, type ReadWriteLockProvider } from '../lib/locks';
import { randomId } from '../lib/locks/util';
import { eventually } from './contract';
import { compileCurator, curator, type Peer } from './fixtures/zk-peers';
import { connectRaw, rawCall } from './support/zk-raw';

const root = `/rw-${randomId(4).replace(/[^A-Za-z0-9]/g, 'x')}`;
let n = 0;
const path = (label: string) => `${root}/${++n}-${label}`;

type Zk = LockBackend & ReadWriteLockProvider;
let connect: string;
let a: Zk;
let b: Zk;
let inspector: Zk;

beforeAll(() => {
  connect = inject('zookeeperConnect');
  const make = () => createZooKeeperBackend({ id: 'zk', type: 'zookeeper', connect, roots: [root] });
  a = make();
  b = make();
  inspector = make();
});

afterAll(async () => {
  await Promise.all([a?.close(), b?.close(), inspector?.close()]);
});

/** Resolves to the handle, and records that it did, so a test can check "not yet". */
function pending(p: Promise<LockHandle>) {
  const state = { done: false, handle: null as LockHandle | null, promise: p };
  void p.then((h) => {
    state.done = true;
    state.handle = h;
  }, () => undefined);
  return state;
}

const waitersOf = async (p: string) => (await inspector.get(p))?.waiters.length ?? -1;

describe('ZooKeeper read/write lock', { timeout: 60_000 }, () => {
  it('writes Curator node names: _c_<uuid>-__READ__<seq> and _c_<uuid>-__WRIT__<seq>', async () => {
    const p = path('names');
    const r = await a.readWriteLock(p).readLock.acquire();
    const raw = await connectRaw(connect);
    try {
      const children = await rawCall<string[]>((cb) => raw.getChildren(p, cb));
      expect(children).toHaveLength(1);
      expect(children[0]).toMatch(/^_c_[0-9a-f-]{36}-__READ__\d{10}$/);
      await r.release();
      const w = await a.readWriteLock(p).writeLock.acquire();
      const after = await rawCall<string[]>((cb) => raw.getChildren(p, cb));
      expect(after).toEqual([expect.stringMatching(/^_c_[0-9a-f-]{36}-__WRIT__\d{10}$/)]);
      expect(compareFences(w.fence, r.fence)).toBe(1);
      await w.release();
    } finally {
      raw.close();
    }
  });

  it('readers share; a writer waits for every reader; the inspector shows readers as holders and the writer waiting', async () => {
    const p = path('share');
    const r1 = await a.readWriteLock(p).readLock.acquire({ owner: 'reader-1' });
    const r2 = await b.readWriteLock(p).readLock.tryAcquire({ owner: 'reader-2' });
    expect(r2).not.toBeNull();
    expect(await b.readWriteLock(p).writeLock.tryAcquire()).toBeNull();
    const w = pending(b.readWriteLock(p).writeLock.acquire({ waitMs: 30_000, owner: 'writer' }));
    await eventually(async () => (await waitersOf(p)) === 1, 10_000, 'writer queued');
    const info = (await inspector.get(p))!;
    expect(info).toMatchObject({ key: p, format: 'lockdeck', kind: 'read' });
    expect(info.holders.map((h) => h.owner)).toEqual(['reader-1', 'reader-2']);
    expect(info.waiters.map((x) => x.owner)).toEqual(['writer']);
    await r1.release();
    await new Promise((r) => setTimeout(r, 200));
    expect(w.done).toBe(false); // reader-2 still reads
    await r2!.release();
    const wh = await w.promise;
    expect(compareFences(wh.fence, r2!.fence)).toBe(1);
    expect((await inspector.get(p))).toMatchObject({ kind: 'write', owner: 'writer', waiters: [] });
    await wh.release();
  });

  it('a reader that comes after a waiting writer waits behind it (no writer starvation), then reads', async () => {
    const p = path('fifo');
    const r1 = await a.readWriteLock(p).readLock.acquire({ owner: 'early-reader' });
    const w = pending(b.readWriteLock(p).writeLock.acquire({ waitMs: 30_000, owner: 'writer' }));
    await eventually(async () => (await waitersOf(p)) === 1, 10_000, 'writer queued');
    const late = pending(a.readWriteLock(p).readLock.acquire({ waitMs: 30_000, owner: 'late-reader' }));
    await eventually(async () => (await waitersOf(p)) === 2, 10_000, 'late reader queued');
    expect(await a.readWriteLock(p).readLock.tryAcquire()).toBeNull();
    await r1.release();
    const wh = await w.promise;
    await new Promise((r) => setTimeout(r, 200));
    expect(late.done).toBe(false);
    expect((await inspector.get(p))?.waiters.map((x) => x.owner)).toEqual(['late-reader']);
    await wh.release();
    const rh = await late.promise;
    expect(rh.held).toBe(true);
    await rh.release();
  });

  it('a writer and a mutex exclude each other on one path (both count every contender)', async () => {
    const p = path('mixed');
    const m = await a.acquire(p);
    expect(await b.readWriteLock(p).writeLock.tryAcquire()).toBeNull();
    expect(await b.readWriteLock(p).readLock.tryAcquire()).toBeNull();
    await m.release();
    const r = await b.readWriteLock(p).readLock.acquire();
    expect(await a.tryAcquire(p)).toBeNull();
    await r.release();
  });

  it('refuses a bad name when the lock is made, not at the first acquire', () => {
    expect(() => a.readWriteLock('/bad//path')).toThrow(/empty/);
  });
});

describe('ZooKeeper read/write lock with real Curator peers', { timeout: 90_000 }, () => {
  let cp: { classpath: string; dispose(): void };
  const peers: Peer[] = [];
  const peer = (recipe: string, p: string) => {
    const x = curator(cp.classpath, connect, recipe, p);
    peers.push(x);
    return x;
  };

  beforeAll(() => {
    cp = compileCurator();
  });

  afterAll(async () => {
    await Promise.all(peers.map((x) => x.stop()));
    cp?.dispose();
  });

  it('a Curator writer blocks our readers; they read once it releases; a Curator reader shares with ours', async () => {
    const p = path('curator-writer');
    const cw = peer('write', p);
    await cw.line('acquired');
    expect(await a.readWriteLock(p).readLock.tryAcquire()).toBeNull();
    const r = pending(a.readWriteLock(p).readLock.acquire({ waitMs: 30_000, owner: 'our-reader' }));
    await eventually(async () => (await waitersOf(p)) === 1, 10_000, 'our reader queued');
    const info = (await inspector.get(p))!;
    expect(info).toMatchObject({ format: 'curator-rwlock', kind: 'write' });
    expect(info.waiters.map((x) => x.owner)).toEqual(['our-reader']);
    await new Promise((res) => setTimeout(res, 200));
    expect(r.done).toBe(false);
    cw.send('release');
    const rh = await r.promise;
    // A Curator reader joins ours at once.
    const cr = peer('read', p);
    await cr.line('acquired', 20_000);
    const shared = (await inspector.get(p))!;
    expect(shared.kind).toBe('read');
    expect(shared.holders).toHaveLength(2);
    cr.send('release');
    await cr.line('released');
    await rh.release();
  });

  it('our reader blocks a Curator writer, which gets the lock when we release; our writer then waits for it', async () => {
    const p = path('ours-first');
    const rh = await a.readWriteLock(p).readLock.acquire({ owner: 'our-reader' });
    const cw = peer('write', p);
    await cw.line('contending');
    await eventually(async () => (await waitersOf(p)) === 1, 20_000, 'Curator writer queued');
    await new Promise((res) => setTimeout(res, 300));
    expect(cw.has('acquired')).toBe(false);
    await rh.release();
    await cw.line('acquired', 10_000);
    expect(await b.readWriteLock(p).writeLock.tryAcquire()).toBeNull();
    const w = pending(b.readWriteLock(p).writeLock.acquire({ waitMs: 30_000 }));
    await eventually(async () => (await waitersOf(p)) === 1, 10_000, 'our writer queued');
    cw.send('release');
    const wh = await w.promise;
    expect(wh.held).toBe(true);
    await wh.release();
  });
});
