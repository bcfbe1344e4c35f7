/**
 * The contract every LockBackend must meet, run once per backend against a real server
 * (`test/<backend>.contract.test.ts` is a few lines that call `runBackendContract`).
 *
 * Each test uses its own key prefix and removes only what it made.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import {
  AcquireTimeoutError,
  compareFences,
  InvalidArgumentError,
  LockLostError,
  withLock,
  type LockBackend,
  type LockChange,
  type LockHandle,
} from '../lib/locks';
import { randomId } from '../lib/locks/util';

export interface ContractFixture {
  /** Makes a new, independent backend instance (its own connections), as another process would. */
  make(): Promise<LockBackend>;
  /** Called once after the suite; backends made by `make` are closed by the suite itself. */
  teardown?(): Promise<void>;
  /**
   * Put before every lock name the suite makes, for stores whose lock names are paths
   * (ZooKeeper: "/lockdeck-ct/", so that LockInfo.key, the absolute path, equals the name).
   */
  keyPrefix?: string;
}

/** Waits until `pred` holds, checking on every macrotask; fails after `timeoutMs`. */
export async function eventually(pred: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function runBackendContract(name: string, fixture: () => Promise<ContractFixture>): void {
  describe(`${name}: LockBackend contract`, { timeout: 30_000 }, () => {
    let fx: ContractFixture;
    const made: LockBackend[] = [];
    const make = async () => {
      const b = await fx.make();
      made.push(b);
      return b;
    };
    let a: LockBackend;
    let b: LockBackend;
    const prefix = `ct-${randomId(4)}`;
    let n = 0;
    const key = (label: string) => `${fx.keyPrefix ?? ''}${prefix}-${++n}-${label}`;

    beforeAll(async () => {
      fx = await fixture();
      a = await make();
      b = await make();
    });

    afterAll(async () => {
      await Promise.all(made.map((x) => x.close()));
      await fx?.teardown?.();
    });

    it('grants a free lock and refuses it to a second client until it is released', async () => {
      const k = key('basic');
      const h1 = await a.tryAcquire(k, { ttlMs: 5000 });
      expect(h1).not.toBeNull();
      expect(h1!.held).toBe(true);
      expect(await b.tryAcquire(k, { ttlMs: 5000 })).toBeNull();
      await h1!.release();
      expect(h1!.held).toBe(false);
      const h2 = await b.tryAcquire(k, { ttlMs: 5000 });
      expect(h2).not.toBeNull();
      await h2!.release();
    });

    it('gives fences that strictly increase across holders', async () => {
      const k = key('fence');
      const fences: string[] = [];
      for (let i = 0; i < 6; i++) {
        const h = await (i % 2 ? a : b).acquire(k, { ttlMs: 5000 });
        fences.push(h.fence);
        await h.release();
      }
      for (let i = 1; i < fences.length; i++) expect(compareFences(fences[i]!, fences[i - 1]!)).toBe(1);
    });

    it('keeps mutual exclusion under contention: 0 violations on a fenced register', async () => {
      const k = key('mutex');
      const workers = await Promise.all(Array.from({ length: 6 }, () => make()));
      const perWorker = 8;
      // The protected resource: it refuses a write whose fence is not newer than the last one.
      let lastFence: string | null = null;
      let inside = 0;
      let overlaps = 0;
      let staleWrites = 0;
      let writes = 0;
      await Promise.all(
        workers.map(async (w) => {
          for (let i = 0; i < perWorker; i++) {
            await withLock(w, k, { ttlMs: 5000, waitMs: 20_000 }, async (_signal, h) => {
              if (++inside > 1) overlaps++;
              await new Promise((r) => setTimeout(r, Math.random() * 3));
              if (lastFence !== null && compareFences(h.fence, lastFence) <= 0) staleWrites++;
              else {
                lastFence = h.fence;
                writes++;
              }
              inside--;
            });
          }
        }),
      );
      expect({ overlaps, staleWrites, writes }).toEqual({ overlaps: 0, staleWrites: 0, writes: workers.length * perWorker });
    });

    it('frees an expired lock and aborts the holder that let it expire', async () => {
      const k = key('expiry');
      const h1 = await a.acquire(k, { ttlMs: 300, autoRenew: false });
      const started = Date.now();
      const h2 = await b.acquire(k, { ttlMs: 5000, waitMs: 5000 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(150);
      expect(h1.signal.aborted).toBe(true);
      expect(h1.signal.reason).toBeInstanceOf(LockLostError);
      expect(compareFences(h2.fence, h1.fence)).toBe(1);
      await h2.release();
      await h1.release(); // releasing a lost lock is a no-op, not an error
    });

    it('regression (torture: clock-jump): a waiter whose wall clock stepped an hour ahead takes no live lock', async () => {
      // Found on SQLite (leases on the writer's wall clock) and DynamoDB (takeover by the stored
      // wall-clock expiry): 129 and 135 overlapping critical sections in the torture clock-jump
      // cells. Expiry must come from the store's clock or a monotonic one, never Date.now().
      const k = key('clock-step');
      const held = await a.acquire(k, { ttlMs: 10_000, autoRenew: false });
      const realNow = Date.now.bind(Date);
      try {
        vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 3_600_000); // an NTP step, or an operator
        expect(await b.tryAcquire(k, { ttlMs: 10_000 })).toBeNull();
        await expect(b.acquire(k, { ttlMs: 10_000, waitMs: 1000 })).rejects.toThrow(AcquireTimeoutError);
        expect(held.held).toBe(true);
      } finally {
        vi.restoreAllMocks();
      }
      await held.release();
      const next = await b.acquire(k, { ttlMs: 10_000, waitMs: 5000 });
      await next.release();
    });

    it('keeps a lock past its TTL while it is renewed automatically', async () => {
      const k = key('renew');
      const h = await a.acquire(k, { ttlMs: 300 });
      await new Promise((r) => setTimeout(r, 800));
      expect(h.held).toBe(true);
      expect(h.signal.aborted).toBe(false);
      expect(await b.tryAcquire(k, { ttlMs: 1000 })).toBeNull();
      await h.release();
    });

    it('tells the holder when its lock is force-released', async () => {
      const k = key('forced');
      const h = await a.acquire(k, { ttlMs: 3000 });
      const res = await b.forceRelease(k, { fence: h.fence });
      expect(res.status).toBe('released');
      // Our own holders learn at once where the backend can push, else by their next renewal.
      await eventually(() => h.signal.aborted, a.capabilities.notifiesHolderOnForce ? 1000 : 3000, 'holder signal');
      expect((h.signal.reason as LockLostError).reason).toBe(a.capabilities.notifiesHolderOnForce ? 'forced' : 'renewal-failed');
      await expect(h.extend()).rejects.toBeInstanceOf(LockLostError);
    });

    it('changes nothing when force-released with a stale fence or owner', async () => {
      const k = key('stale');
      const h1 = await a.acquire(k, { ttlMs: 5000 });
      const oldFence = h1.fence;
      await h1.release();
      const h2 = await b.acquire(k, { ttlMs: 5000, owner: 'second-holder' });
      expect((await a.forceRelease(k, { fence: oldFence })).status).toBe('changed');
      expect((await a.forceRelease(k, { owner: 'someone-else' })).status).toBe('changed');
      expect(h2.held).toBe(true);
      await h2.extend();
      const info = await a.get(k);
      expect(info?.fence).toBe(h2.fence);
      expect((await a.forceRelease(`${k}-missing`)).status).toBe('not-found');
      await h2.release();
    });

    it('wakes waiters in the order they started waiting (where the backend queues them)', async () => {
      const k = key('order');
      const holder = await a.acquire(k, { ttlMs: 10_000 });
      const clients = await Promise.all([make(), make(), make()]);
      const order: number[] = [];
      const waits: Promise<void>[] = [];
      for (let i = 0; i < clients.length; i++) {
        waits.push(
          clients[i]!.acquire(k, { ttlMs: 5000, waitMs: 15_000 }).then(async (h) => {
            order.push(i);
            await h.release();
          }),
        );
        // Start the next waiter only once this one is recorded as waiting.
        await eventually(async () => ((await a.get(k))?.waiters.length ?? 0) === i + 1, 5000, `waiter ${i} recorded`);
      }
      await holder.release();
      await Promise.all(waits);
      if (a.capabilities.fifo) expect(order).toEqual([0, 1, 2]);
      else expect([...order].sort()).toEqual([0, 1, 2]);
    });

    it('hands a released lock to a blocked waiter without waiting for a timer', async () => {
      const k = key('handoff');
      const holder = await a.acquire(k, { ttlMs: 10_000 });
      const waiting = b.acquire(k, { ttlMs: 5000, waitMs: 10_000 });
      await eventually(async () => ((await a.get(k))?.waiters.length ?? 0) === 1, 5000, 'waiter recorded');
      const t0 = performance.now();
      await holder.release();
      const h = await waiting;
      const ms = performance.now() - t0;
      // Generous bound: the point is "no fixed retry timer" (node-redlock waits 200 ms ± 100 ms).
      expect(ms).toBeLessThan(100);
      await h.release();
    });

    it('gives up with AcquireTimeoutError and forgets the waiter', async () => {
      const k = key('timeout');
      const holder = await a.acquire(k, { ttlMs: 5000 });
      await expect(b.acquire(k, { ttlMs: 1000, waitMs: 200 })).rejects.toBeInstanceOf(AcquireTimeoutError);
      expect((await a.get(k))?.waiters).toEqual([]);
      await holder.release();
    });

    it('stops waiting when the signal aborts', async () => {
      const k = key('abort');
      const holder = await a.acquire(k, { ttlMs: 5000 });
      const ac = new AbortController();
      const waiting = b.acquire(k, { ttlMs: 1000, waitMs: 10_000, signal: ac.signal });
      await eventually(async () => ((await a.get(k))?.waiters.length ?? 0) === 1, 5000, 'waiter recorded');
      ac.abort(new Error('caller gave up'));
      await expect(waiting).rejects.toThrow('caller gave up');
      expect((await a.get(k))?.waiters).toEqual([]);
      await holder.release();
      // The aborted waiter must not have been handed the lock.
      const h = await a.tryAcquire(k, { ttlMs: 1000 });
      expect(h).not.toBeNull();
      await h!.release();
    });

    it('regression (ZooKeeper, etcd): an abort while the first attempt is still in flight ends the wait with the caller\'s reason', async () => {
      // Before: an abort during the contender's create (or first look) was not heard, so the wait
      // ran its whole waitMs and ended in a timeout instead.
      const k = key('abort-early');
      const holder = await a.acquire(k, { ttlMs: 5000 });
      const ac = new AbortController();
      const waiting = b.acquire(k, { ttlMs: 1000, waitMs: 10_000, signal: ac.signal });
      ac.abort(new Error('caller gave up early')); // the first request is still on its way
      await expect(waiting).rejects.toThrow('caller gave up early');
      await eventually(async () => ((await a.get(k))?.waiters.length ?? 0) === 0, 5000, 'no waiter left');
      await holder.release();
      const h = await a.tryAcquire(k, { ttlMs: 1000 });
      expect(h).not.toBeNull();
      await h!.release();
    });

    it('shows a held lock with owner, fence, TTL and waiters to the inspector', async () => {
      const k = key('inspect');
      const h = await a.acquire(k, { ttlMs: 5000, owner: 'report-job@worker-1', labels: { job: 'report' } });
      const waiting = b.acquire(k, { ttlMs: 5000, waitMs: 10_000, owner: 'waiter-2' });
      await eventually(async () => ((await a.get(k))?.waiters.length ?? 0) === 1, 5000, 'waiter recorded');
      const info = await b.get(k);
      expect(info).toMatchObject({
        backend: a.id,
        key: k,
        format: 'lockdeck',
        kind: 'mutex',
        owner: 'report-job@worker-1',
        fence: h.fence,
        health: 'ok',
        labels: { job: 'report' },
      });
      expect(info!.holders).toEqual([{ owner: 'report-job@worker-1', fence: h.fence, acquiredAt: info!.acquiredAt }]);
      if (a.capabilities.ttl) {
        expect(info!.ttlMs).toBeGreaterThan(3000);
        expect(info!.ttlMs).toBeLessThanOrEqual(5000);
        expect(info!.expiresAt! - info!.acquiredAt!).toBeGreaterThanOrEqual(4900);
      } else {
        // Session-bound locks (ZooKeeper): the store has no lease clock to show.
        expect(info!.ttlMs).toBeNull();
        expect(info!.expiresAt).toBeNull();
        expect(typeof info!.acquiredAt).toBe('number');
      }
      expect(info!.waiters).toHaveLength(1);
      expect(info!.waiters[0]!.owner).toBe('waiter-2');
      expect(typeof info!.waiters[0]!.since).toBe('number');
      expect(JSON.stringify(info)).not.toMatch(/token"?\s*:/i);
      const listed = await b.list({ q: k.toUpperCase() });
      expect(listed.map((l) => l.key)).toEqual([k]);
      expect(await b.get(`${k}-nothing`)).toBeNull();
      await h.release();
      await (await waiting).release();
    });

    it('pushes acquired and released changes to watchers', async () => {
      const k = key('watch');
      const seen: LockChange[] = [];
      const stop = b.watch((c) => {
        if (c.key === k) seen.push(c);
      });
      try {
        await new Promise((r) => setTimeout(r, 100)); // let the watch subscribe
        const h = await a.acquire(k, { ttlMs: 5000 });
        await eventually(() => seen.some((c) => c.type === 'acquired'), 2000, 'acquired event');
        await h.release();
        await eventually(() => seen.some((c) => c.type === 'released'), 2000, 'released event');
        const acquired = seen.find((c) => c.type === 'acquired')!;
        expect(acquired.lock?.fence).toBe(h.fence);
      } finally {
        stop();
      }
    });

    it('tells watchers how long an acquirer waited and a holder held the lock', async () => {
      const k = key('stats');
      const seen: LockChange[] = [];
      const stop = b.watch((c) => {
        if (c.key === k) seen.push(c);
      });
      try {
        await new Promise((r) => setTimeout(r, 100));
        const holder = await a.acquire(k, { ttlMs: 5000 });
        const waiting = b.acquire(k, { ttlMs: 5000, waitMs: 5000 });
        await new Promise((r) => setTimeout(r, 200));
        await holder.release();
        const h = await waiting;
        await eventually(() => seen.filter((c) => c.type === 'acquired').length >= 2 && seen.some((c) => c.type === 'released'), 3000, 'events');
        const released = seen.find((c) => c.type === 'released')!;
        expect(released.heldMs).toBeGreaterThanOrEqual(150);
        const second = seen.filter((c) => c.type === 'acquired')[1]!;
        expect(second.waitedMs).toBeGreaterThanOrEqual(150);
        expect(seen.filter((c) => c.type === 'acquired')[0]!.waitedMs).toBeLessThan(100);
        await h.release();
      } finally {
        stop();
      }
    });

    it('tells watchers of refused attempts and of holders that lost their lock (client telemetry)', async () => {
      const k = key('telemetry');
      if (a.capabilities.telemetry === false) {
        // A store without client telemetry says so, and its watchers see lock changes only.
        const seen: LockChange[] = [];
        const stop = b.watch((c) => void (c.key === k && seen.push(c)), { telemetry: true });
        try {
          await new Promise((r) => setTimeout(r, 100));
          const h = await a.acquire(k, { ttlMs: 5000 });
          expect(await b.tryAcquire(k, { ttlMs: 5000 })).toBeNull();
          expect((await b.forceRelease(k, { fence: h.fence })).status).toBe('released');
          await eventually(() => seen.some((c) => c.type === 'forced' || c.type === 'released'), 3000, 'the forced release');
          expect(seen.filter((c) => c.type === 'attempt' || c.type === 'lost')).toEqual([]);
        } finally {
          stop();
        }
        return;
      }
      const seen: LockChange[] = [];
      const plain: LockChange[] = [];
      const stop = b.watch(
        (c) => {
          if (c.key === k) seen.push(c);
        },
        { telemetry: true },
      );
      // Without asking for telemetry a watcher sees lock changes only.
      const stopPlain = b.watch((c) => {
        if (c.key === k) plain.push(c);
      });
      try {
        await new Promise((r) => setTimeout(r, 100));
        const h = await a.acquire(k, { ttlMs: 5000 });
        // A refused try is one `attempt`; it changes no lock.
        expect(await b.tryAcquire(k, { ttlMs: 5000 })).toBeNull();
        await eventually(() => seen.some((c) => c.type === 'attempt'), 3000, 'attempt event');
        expect(seen.filter((c) => c.type === 'attempt')).toHaveLength(1);
        // Let the holder's process channel come up (tryAcquire-style holders do not wait for it).
        await new Promise((r) => setTimeout(r, 100));
        const res = await b.forceRelease(k, { fence: h.fence });
        expect(res.status).toBe('released');
        await eventually(() => h.signal.aborted, 2000, 'holder signal');
        await eventually(() => seen.some((c) => c.type === 'forced') && seen.some((c) => c.type === 'lost'), 3000, 'forced and lost events');
        const lost = seen.filter((c) => c.type === 'lost');
        expect(lost).toHaveLength(1);
        expect(lost[0]!.reason).toBe('forced');
        expect(lost[0]!.lock?.fence).toBe(h.fence);
        expect(lost[0]!.lock?.owner).toBe(h.owner.id);
        expect(seen.filter((c) => c.type === 'attempt')).toHaveLength(1);
        expect(plain.some((c) => c.type === 'forced')).toBe(true);
        expect(plain.filter((c) => c.type === 'attempt' || c.type === 'lost')).toEqual([]);
      } finally {
        stop();
        stopPlain();
      }
    });

    it('releases the lock when the scope ends, even when the work throws', async () => {
      const k = key('scope');
      await expect(withLock(a, k, { ttlMs: 5000 }, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
      {
        await using h = await a.acquire(k, { ttlMs: 5000 });
        expect(h.held).toBe(true);
      }
      const again: LockHandle | null = await b.tryAcquire(k, { ttlMs: 5000 });
      expect(again).not.toBeNull();
      await again!.release();
    });

    it('rejects bad arguments with an error that names the problem', async () => {
      await expect(a.acquire('', { ttlMs: 1000 })).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(a.acquire(key('bad'), { ttlMs: 1.5 })).rejects.toThrow(/ttlMs/);
      await expect(a.acquire(key('bad'), { waitMs: -1 })).rejects.toThrow(/waitMs/);
      await expect(a.acquire('bad\u0000name')).rejects.toThrow(/control character/);
    });

    it('answers a ping with its latency', async () => {
      const ms = await a.ping();
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThan(1000);
    });
  });
}
