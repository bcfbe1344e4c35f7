/**
 * What the embedded store promises beyond the shared contract: locks and wake-ups between
 * processes, FIFO fairness against newcomers and crashed waiters, fences that survive the lock
 * row and the connection, the inspector's view of expired rows, and a close() that lets the
 * process exit.
 */
import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { createSqliteBackend, type SqliteBackendOptions } from '../lib/backends/sqlite';
import { BackendUnavailableError, compareFences, InvalidArgumentError, type LockBackend, type LockChange } from '../lib/locks';
import { eventually } from './contract';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURE = join(ROOT, 'test/fixtures/sqlite-child.ts');

interface ChildMessage {
  pid: number;
  event: string;
  [k: string]: unknown;
}

interface Child {
  readonly proc: ChildProcess;
  readonly messages: ChildMessage[];
  next(event: string, timeoutMs?: number): Promise<ChildMessage>;
  readonly exited: Promise<number | null>;
}

let dir: string;
let path: string;
const backends: LockBackend[] = [];
const children: Child[] = [];

function open(opts?: SqliteBackendOptions): LockBackend {
  const b = createSqliteBackend({ id: 'local', type: 'sqlite', path }, opts);
  backends.push(b);
  return b;
}

function child(...args: string[]): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', FIXTURE, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const messages: ChildMessage[] = [];
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: proc.stdout! }).on('line', (line) => messages.push(JSON.parse(line) as ChildMessage));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));
  const c: Child = {
    proc,
    messages,
    exited,
    async next(event, timeoutMs = 20_000) {
      await eventually(
        () => {
          if (exitCode !== undefined && !messages.some((m) => m.event === event)) {
            throw new Error(`child exited (${String(exitCode)}) before "${event}": ${stderr}`);
          }
          return messages.some((m) => m.event === event);
        },
        timeoutMs,
        `child event "${event}"`,
      );
      return messages.find((m) => m.event === event)!;
    },
  };
  children.push(c);
  return c;
}

/** Writes a waiter row as a process would that queued and then froze or died. */
function insertStaleWaiter(name: string, leaseMs: number): void {
  const db = new Database(path);
  try {
    const now = Date.now();
    db.prepare('INSERT INTO waiters (name, owner, instance, since, lease_until) VALUES (?, ?, ?, ?, ?)').run(name, 'frozen', 'gone', now, now + leaseMs);
  } finally {
    db.close();
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'lockdeck-sqlite-'));
  path = join(dir, 'locks.db');
});

afterEach(async () => {
  for (const c of children.splice(0)) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
  await Promise.all(backends.splice(0).map((b) => b.close()));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sqlite: between processes', { timeout: 60_000 }, () => {
  it('keeps mutual exclusion between processes, with fences that strictly increase', async () => {
    const log = join(dir, 'mutex.log');
    writeFileSync(log, '');
    const iterations = 15;
    const kids = [1, 2, 3].map(() => child('mutex', path, 'xp-mutex', String(iterations), log));
    await Promise.all(kids.map((k) => k.next('done', 50_000)));
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    let inside: string | null = null;
    let overlaps = 0;
    let lastFence: string | null = null;
    let stale = 0;
    let enters = 0;
    for (const line of lines) {
      const [what, pid, fence] = line.split(' ') as [string, string, string];
      if (what === 'enter') {
        enters++;
        if (inside !== null) overlaps++;
        if (lastFence !== null && compareFences(fence, lastFence) <= 0) stale++;
        lastFence = fence;
        inside = `${pid} ${fence}`;
      } else {
        if (inside !== `${pid} ${fence}`) overlaps++;
        inside = null;
      }
    }
    expect({ overlaps, stale, enters }).toEqual({ overlaps: 0, stale: 0, enters: 3 * iterations });
  });

  it('wakes a waiter in another process as soon as the lock is released', async () => {
    const a = open();
    const h = await a.acquire('xp-wake', { ttlMs: 20_000 });
    const kid = child('wait', path, 'xp-wake');
    await eventually(async () => ((await a.get('xp-wake'))?.waiters.length ?? 0) === 1, 20_000, 'child queued');
    expect((await a.get('xp-wake'))!.waiters[0]!.owner).toBe(`child-${kid.proc.pid}`);
    const released = Date.now();
    await h.release();
    const got = await kid.next('acquired');
    // The child's fallback re-check is 10 s: anything near this bound came from the wake-up.
    expect((got.at as number) - released).toBeLessThan(500);
    expect(compareFences(got.fence as string, h.fence)).toBe(1);
    expect(await kid.exited).toBe(0);
  });

  it("tells another process's holder at once when its lock is force-released", async () => {
    const a = open();
    const kid = child('hold', path, 'xp-force');
    const { fence } = await kid.next('acquired');
    const forced = Date.now();
    const res = await a.forceRelease('xp-force', { fence: fence as string });
    expect(res.status).toBe('released');
    const lost = await kid.next('lost');
    expect(lost.reason).toBe('forced');
    // Its renewal is 10 s away: only the wake-up can explain this.
    expect((lost.at as number) - forced).toBeLessThan(1000);
    expect(await kid.exited).toBe(0);
  });

  it('leaves nothing that keeps a process alive after close()', async () => {
    const kid = child('close', path, 'xp-close');
    const closed = await kid.next('closed');
    expect(closed).toMatchObject({ held: false, waiter: 'BackendUnavailableError' });
    const code = await Promise.race([kid.exited, new Promise((r) => setTimeout(() => r('still running'), 5000))]);
    expect(code).toBe(0);
    const b = open();
    expect(await b.get('xp-close')).toBeNull();
  });
});

describe('sqlite: queue and fairness', { timeout: 30_000 }, () => {
  it('refuses a newcomer while a live waiter queues, even when nobody holds the lock', async () => {
    const a = open();
    insertStaleWaiter('fair-newcomer', 800);
    expect(await a.tryAcquire('fair-newcomer', { ttlMs: 1000 })).toBeNull();
    await new Promise((r) => setTimeout(r, 900));
    // The queued process never refreshed its lease: it is pruned and no longer blocks anyone.
    const h = await a.tryAcquire('fair-newcomer', { ttlMs: 1000 });
    expect(h).not.toBeNull();
    await h!.release();
  });

  it('hands the lock on past a head waiter that died, once its lease runs out', async () => {
    const a = open();
    const b = open();
    const holder = await a.acquire('fair-dead-head', { ttlMs: 10_000 });
    insertStaleWaiter('fair-dead-head', 700);
    const waiting = b.acquire('fair-dead-head', { ttlMs: 5000, waitMs: 10_000 });
    await eventually(async () => ((await a.get('fair-dead-head'))?.waiters.length ?? 0) === 2, 5000, 'two waiters');
    const info = await a.get('fair-dead-head');
    expect(info!.waiters.map((w) => w.owner)).toEqual(['frozen', expect.any(String)]);
    await holder.release();
    const h = await waiting;
    expect(compareFences(h.fence, holder.fence)).toBe(1);
    await h.release();
  });

  it('keeps waiters in order across instances and removes the ones that give up', async () => {
    const a = open();
    const [w1, w2, w3] = [open(), open(), open()];
    const holder = await a.acquire('fair-order', { ttlMs: 10_000 });
    const ac = new AbortController();
    const p1 = w1.acquire('fair-order', { ttlMs: 5000, waitMs: 10_000, owner: 'first' });
    await eventually(async () => (await a.get('fair-order'))?.waiters.length === 1);
    const p2 = w2.acquire('fair-order', { ttlMs: 5000, waitMs: 10_000, owner: 'second', signal: ac.signal });
    await eventually(async () => (await a.get('fair-order'))?.waiters.length === 2);
    const p3 = w3.acquire('fair-order', { ttlMs: 5000, waitMs: 10_000, owner: 'third' });
    await eventually(async () => (await a.get('fair-order'))?.waiters.length === 3);
    expect((await a.get('fair-order'))!.waiters.map((w) => w.owner)).toEqual(['first', 'second', 'third']);
    ac.abort(new Error('gave up'));
    await expect(p2).rejects.toThrow('gave up');
    expect((await a.get('fair-order'))!.waiters.map((w) => w.owner)).toEqual(['first', 'third']);
    await holder.release();
    const h1 = await p1;
    expect(h1.owner.id).toBe('first');
    await h1.release();
    const h3 = await p3;
    expect(h3.owner.id).toBe('third');
    await h3.release();
  });

  it('hands the lock down a queue of waiters in one instance, in order, by wake-ups alone', async () => {
    // A wake-up makes only the oldest local waiter of a name look (the others are behind it);
    // with the fallback re-check an hour away, a waiter left out would hang this test.
    const a = open();
    const b = open({ recheckMs: 3_600_000 });
    let h = await a.acquire('fair-local', { ttlMs: 60_000 });
    const order: string[] = [];
    const waits = ['w1', 'w2', 'w3', 'w4', 'w5'].map((owner) => {
      const p = b.acquire('fair-local', { ttlMs: 60_000, waitMs: 20_000, owner });
      return p.then((x) => (order.push(owner), x));
    });
    await eventually(async () => (await a.get('fair-local'))?.waiters.length === 5);
    for (const p of waits) {
      await h.release();
      h = await p;
    }
    await h.release();
    expect(order).toEqual(['w1', 'w2', 'w3', 'w4', 'w5']);
  });

  it('queues again when its waiter row was pruned while it stalled', async () => {
    const a = open();
    const b = open({ recheckMs: 100 });
    const holder = await a.acquire('fair-requeue', { ttlMs: 10_000 });
    const waiting = b.acquire('fair-requeue', { ttlMs: 5000, waitMs: 10_000, owner: 'stalled' });
    await eventually(async () => (await a.get('fair-requeue'))?.waiters.length === 1);
    const db = new Database(path);
    db.prepare('DELETE FROM waiters WHERE name = ?').run('fair-requeue');
    db.close();
    await eventually(async () => (await a.get('fair-requeue'))?.waiters[0]?.owner === 'stalled', 3000, 're-queued');
    await holder.release();
    const h = await waiting;
    await h.release();
  });

  it('still grants the lock without wake-ups, by the bounded re-check', async () => {
    const a = open();
    const deaf = open({ wakeups: false, recheckMs: 200 });
    const holder = await a.acquire('fallback', { ttlMs: 10_000 });
    const waiting = deaf.acquire('fallback', { ttlMs: 5000, waitMs: 10_000 });
    await eventually(async () => (await a.get('fallback'))?.waiters.length === 1);
    const t0 = performance.now();
    await holder.release();
    const h = await waiting;
    expect(performance.now() - t0).toBeLessThan(1000);
    await h.release();
  });
});

describe('sqlite: fences, expiry and the inspector', { timeout: 30_000 }, () => {
  it('keeps fences increasing after force-release and across reopening the file', async () => {
    const a = open();
    const h1 = await a.acquire('fence-reopen', { ttlMs: 5000 });
    expect((await a.forceRelease('fence-reopen')).status).toBe('released');
    expect(await a.get('fence-reopen')).toBeNull();
    const h2 = await a.acquire('fence-reopen', { ttlMs: 5000 });
    expect(compareFences(h2.fence, h1.fence)).toBe(1);
    await h2.release();
    await a.close();
    const b = open();
    const h3 = await b.acquire('fence-reopen', { ttlMs: 5000 });
    expect(compareFences(h3.fence, h2.fence)).toBe(1);
    expect(h3.fence).toMatch(/^\d+$/);
    await h3.release();
  });

  it('shows an expired row as expired, lets the next acquirer take it, and tells watchers', async () => {
    const a = open();
    const b = open();
    const watcher = open();
    const seen: LockChange[] = [];
    const stop = watcher.watch((c) => {
      if (c.key.startsWith('expiry-')) seen.push(c);
    });
    try {
      const h1 = await a.acquire('expiry-takeover', { ttlMs: 200, autoRenew: false });
      await new Promise((r) => setTimeout(r, 250));
      const info = await b.get('expiry-takeover');
      // The watcher may already have swept it; if not, it is shown, free, as expired.
      if (info) expect(info).toMatchObject({ health: 'expired', ttlMs: 0, fence: h1.fence });
      const h2 = await b.tryAcquire('expiry-takeover', { ttlMs: 5000 });
      expect(h2).not.toBeNull();
      expect(compareFences(h2!.fence, h1.fence)).toBe(1);
      expect(h1.held).toBe(false);
      await h2!.release();

      // Nobody acquires this one: the watching instance sweeps it at its expiry.
      await a.acquire('expiry-sweep', { ttlMs: 200, autoRenew: false });
      await eventually(() => seen.some((c) => c.key === 'expiry-sweep' && c.type === 'expired'), 3000, 'expired event');
      expect(await b.get('expiry-sweep')).toBeNull();
      const types = seen.filter((c) => c.key === 'expiry-takeover').map((c) => c.type);
      expect(types).toEqual(['acquired', 'expired', 'acquired', 'released']);
      expect(seen.find((c) => c.type === 'expired')!.lock!.health).toBe('expired');
    } finally {
      stop();
    }
  });

  it('pushes forced releases and queue changes from other instances', async () => {
    const a = open();
    const b = open();
    const seen: LockChange[] = [];
    const stop = a.watch((c) => {
      if (c.key === 'watch-forced') seen.push(c);
    });
    try {
      const h = await b.acquire('watch-forced', { ttlMs: 5000 });
      const waiting = b.acquire('watch-forced', { ttlMs: 5000, waitMs: 5000, owner: 'queued' });
      await eventually(() => seen.some((c) => c.type === 'changed' && c.lock?.waiters.length === 1), 2000, 'queue change');
      expect((await b.forceRelease('watch-forced', { fence: h.fence })).status).toBe('released');
      const next = await waiting;
      await eventually(() => seen.filter((c) => c.type === 'acquired').length === 2, 2000, 'second acquired');
      expect(seen.map((c) => c.type)).toEqual(['acquired', 'changed', 'forced', 'acquired']);
      expect(seen[2]!.lock).toMatchObject({ fence: h.fence, backend: 'local' });
      expect(h.signal.aborted).toBe(true);
      await next.release();
    } finally {
      stop();
    }
  });

  it('filters by plain, case-insensitive text and never shows the token', async () => {
    const a = open();
    const names = ['List-100%_Done', 'list-100x-done', 'Über-Job', 'other'];
    const hs = await Promise.all(names.map((n) => a.acquire(n, { ttlMs: 5000, labels: { n } })));
    expect((await a.list({ q: '100%_' })).map((l) => l.key)).toEqual(['List-100%_Done']);
    expect((await a.list({ q: 'LIST-100' })).map((l) => l.key)).toEqual(['List-100%_Done', 'list-100x-done']);
    expect((await a.list({ q: 'über' })).map((l) => l.key)).toEqual(['Über-Job']);
    expect(await a.list({ q: 'list', limit: 1 })).toHaveLength(1);
    const info = (await a.get('other'))!;
    expect(info.labels).toEqual({ n: 'other' });
    expect(info.meta?.tokenHash).toMatch(/^[0-9a-f]{10}$/);
    expect(JSON.stringify(await a.list())).not.toMatch(/"token"/);
    await expect(a.list({ limit: -1 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await Promise.all(hs.map((h) => h.release()));
  });

  it('extends by token to the new TTL and refuses a bad one', async () => {
    const a = open();
    const h = await a.acquire('extend-ttl', { ttlMs: 1000, autoRenew: false });
    await h.extend(8000);
    const info = (await a.get('extend-ttl'))!;
    expect(info.ttlMs).toBeGreaterThan(7000);
    expect(info.meta?.leaseMs).toBe(8000);
    expect(info.health).toBe('ok');
    await expect(h.extend(1.5)).rejects.toThrow(/ttlMs/);
    expect(h.held).toBe(true);
    await h.release();
    await expect(h.extend()).rejects.toThrow(/lost/);
  });

  it('releases held locks and refuses further calls on close()', async () => {
    const a = open();
    const b = open();
    const h = await a.acquire('close-release', { ttlMs: 5000 });
    await a.close();
    expect(h.held).toBe(false);
    expect(h.signal.aborted).toBe(false);
    await expect(a.tryAcquire('close-release')).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(a.ping()).rejects.toBeInstanceOf(BackendUnavailableError);
    const again = await b.tryAcquire('close-release', { ttlMs: 5000 });
    expect(again).not.toBeNull();
    await again!.release();
  });

  it('refuses a file written by a newer layout', () => {
    const newer = join(dir, 'newer.db');
    const db = new Database(newer);
    db.pragma('user_version = 99');
    db.close();
    expect(() => createSqliteBackend({ id: 'x', type: 'sqlite', path: newer })).toThrow(/newer lockdeck/);
  });
});
