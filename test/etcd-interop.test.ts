/**
 * lockdeck's etcd mutex against real foreign peers on one etcd server: `etcdctl lock` (Debian
 * etcd-client, Go's concurrency.Mutex with a 10 s session) and python-etcd3's Lock (Debian
 * python3-etcd3, test/fixtures/etcd-python-lock.py).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { createEtcdBackend, type EtcdLockBackend } from '../lib/backends/etcd';
import { LockLostError, type LockChange } from '../lib/locks';
import { randomId } from '../lib/locks/util';
import { eventually } from './contract';

const PY_PEER = fileURLToPath(new URL('./fixtures/etcd-python-lock.py', import.meta.url));

/** A child process read line by line. */
class Peer {
  readonly lines: string[] = [];
  private exitCode: number | null = null;
  constructor(readonly proc: ChildProcessWithoutNullStreams) {
    createInterface({ input: proc.stdout }).on('line', (l) => this.lines.push(l));
    proc.stderr.on('data', () => undefined);
    proc.on('exit', (c) => (this.exitCode = c ?? -1));
  }
  async line(pred: (l: string) => boolean, timeoutMs = 10_000, what = 'line'): Promise<string> {
    let found: string | undefined;
    await eventually(() => (found = this.lines.find(pred)) !== undefined, timeoutMs, what);
    return found!;
  }
  get exited(): boolean {
    return this.exitCode !== null;
  }
  stop(): void {
    if (!this.exited) this.proc.kill('SIGTERM');
  }
}

describe('etcd interop with etcdctl lock and python-etcd3', { timeout: 60_000 }, () => {
  let endpoints: string[];
  let a: EtcdLockBackend;
  let b: EtcdLockBackend;
  const peers: Peer[] = [];
  const base = `/lockdeck-it/${randomId(4)}`;

  const etcdctl = (name: string): Peer => {
    // Hold mode: prints the key once it holds the lock, holds until signalled.
    const p = new Peer(spawn('etcdctl', [`--endpoints=${endpoints.join(',')}`, 'lock', name], { env: { ...process.env, ETCDCTL_API: '3' } }));
    peers.push(p);
    return p;
  };
  const python = (name: string, ttlS: number): Peer => {
    const host = endpoints[0]!.replace(/^http:\/\//, '');
    const p = new Peer(spawn('/usr/bin/python3', [PY_PEER, host, name, String(ttlS)]));
    peers.push(p);
    return p;
  };

  beforeAll(() => {
    endpoints = inject('etcdEndpoints');
    const config = { id: 'etcd-it', type: 'etcd' as const, endpoints, prefixes: ['/lockdeck-it/', '/locks/'] };
    a = createEtcdBackend(config);
    b = createEtcdBackend(config);
  });

  afterAll(async () => {
    for (const p of peers) p.stop();
    await Promise.all([a?.close(), b?.close()]);
  });

  it('excludes etcdctl lock both ways and shows it with its lease TTL and waiters', async () => {
    const name = `${base}/ctl`;
    const ctl = etcdctl(name);
    const ctlKey = await ctl.line((l) => l.startsWith(`${name}/`), 10_000, 'etcdctl holds');
    expect(await a.tryAcquire(name, { ttlMs: 5000 })).toBeNull();
    const waiting = a.acquire(name, { ttlMs: 5000, waitMs: 20_000, owner: 'lockdeck-waiter' });
    await eventually(async () => ((await b.get(name))?.waiters.length ?? 0) === 1, 5000, 'our waiter shown');
    const info = (await b.get(name))!;
    expect(info).toMatchObject({ key: name, format: 'etcd-mutex', kind: 'mutex', health: 'ok' });
    expect(info.meta?.holderKey).toBe(ctlKey);
    expect(info.owner).toBe(`lease ${ctlKey.slice(name.length + 1)}`);
    // etcdctl's session TTL is 10 s (lock_command.go --ttl).
    expect(info.ttlMs).toBeGreaterThan(0);
    expect(info.ttlMs).toBeLessThanOrEqual(10_000);
    expect(info.waiters).toEqual([{ owner: 'lockdeck-waiter', since: expect.any(Number) }]);
    expect((await b.list({ q: name })).map((l) => l.key)).toEqual([name]);
    // A second etcdctl queues behind our waiter.
    const ctl2 = etcdctl(name);
    await eventually(async () => ((await b.get(name))?.waiters.length ?? 0) === 2, 5000, 'etcdctl waiter shown');
    expect(ctl2.lines.some((l) => l.startsWith(`${name}/`))).toBe(false);
    ctl.stop(); // etcdctl unlocks on SIGTERM
    const h = await waiting;
    expect(BigInt(h.fence)).toBeGreaterThan(BigInt(info.fence!));
    await new Promise((r) => setTimeout(r, 300));
    expect(ctl2.lines.some((l) => l.startsWith(`${name}/`))).toBe(false); // still excluded by us
    await h.release();
    await ctl2.line((l) => l.startsWith(`${name}/`), 10_000, 'second etcdctl holds after our release');
    ctl2.stop();
  });

  it('hands the lock to a waiting etcdctl lock when an operator force-releases our holder', async () => {
    const name = `${base}/forced`;
    const h = await a.acquire(name, { ttlMs: 5000 });
    const ctl = etcdctl(name);
    await eventually(async () => ((await b.get(name))?.waiters.length ?? 0) === 1, 5000, 'etcdctl waiting');
    expect(ctl.lines.some((l) => l.startsWith(`${name}/`))).toBe(false);
    const res = await b.forceRelease(name, { fence: h.fence });
    expect(res.status).toBe('released');
    await ctl.line((l) => l.startsWith(`${name}/`), 5000, 'etcdctl holds after the forced release');
    await eventually(() => h.signal.aborted, 2000, 'our holder told');
    expect((h.signal.reason as LockLostError).reason).toBe('forced');
    const now = (await b.get(name))!;
    expect(now.format).toBe('etcd-mutex');
    expect((await b.forceRelease(name, { fence: h.fence })).status).toBe('changed');
    ctl.stop();
    await eventually(async () => (await b.get(name)) === null, 5000, 'etcdctl released');
  });

  it('shows python-etcd3 locks with their uuid and lease TTL, and force-releases them to the next python waiter', async () => {
    const name = `lockdeck-it-${randomId(4)}`;
    const key = `/locks/${name}`;
    const p1 = python(name, 20);
    const got = await p1.line((l) => l.startsWith('acquired '), 15_000, 'python holds');
    const uuidHex = got.split(' ')[1]!;
    const info = (await b.get(key))!;
    expect(info).toMatchObject({ key, format: 'python-etcd3-lock', kind: 'mutex', waiters: [] });
    expect(info.owner!.replace(/-/g, '')).toBe(`uuid1 ${uuidHex}`);
    expect(info.ttlMs).toBeGreaterThan(10_000);
    expect(info.ttlMs).toBeLessThanOrEqual(20_000);
    expect((await b.list({ q: name })).map((l) => l.key)).toEqual([key]);
    // A second python client waits (python-etcd3 watches the key; its waiters are invisible).
    const p2 = python(name, 20);
    await p2.line((l) => l === 'waiting', 15_000, 'python 2 started');
    await new Promise((r) => setTimeout(r, 500));
    expect(p2.lines.some((l) => l.startsWith('acquired'))).toBe(false);
    expect((await b.forceRelease(key, { fence: '1' })).status).toBe('changed');
    expect((await b.forceRelease(key, { fence: info.fence! })).status).toBe('released');
    await p2.line((l) => l.startsWith('acquired '), 15_000, 'python 2 holds after the forced release');
    p1.proc.stdin.write('\n');
    expect(await p1.line((l) => l.startsWith('released '), 10_000, 'python 1 release')).toBe('released false');
    p2.proc.stdin.write('\n');
    expect(await p2.line((l) => l.startsWith('released '), 10_000, 'python 2 release')).toBe('released true');
  });

  it('reports etcdctl lock acquiring and releasing as watch() events, once each', async () => {
    const name = `${base}/watched`;
    const seen: LockChange[] = [];
    const off = b.watch((c) => {
      if (c.key === name) seen.push(c);
    });
    try {
      // watch() reads the prefix first and watches from the revision after: give it that moment.
      await new Promise((r) => setTimeout(r, 300));
      const ctl = etcdctl(name);
      const ctlKey = await ctl.line((l) => l.startsWith(`${name}/`), 10_000, 'etcdctl holds');
      await eventually(() => seen.some((c) => c.type === 'acquired'), 5000, 'acquired event');
      const acquired = seen.find((c) => c.type === 'acquired')!;
      expect(acquired.lock).toMatchObject({ key: name, format: 'etcd-mutex', owner: `lease ${ctlKey.slice(name.length + 1)}` });
      expect(acquired.lock!.meta?.holderKey).toBe(ctlKey);
      // A second etcdctl queues: a `changed` event with one waiter, no new holder.
      const ctl2 = etcdctl(name);
      await eventually(() => seen.some((c) => c.type === 'changed' && c.lock?.waiters.length === 1), 10_000, 'waiter event');
      ctl.stop();
      const ctl2Key = await ctl2.line((l) => l.startsWith(`${name}/`), 10_000, 'second etcdctl holds');
      await eventually(() => seen.filter((c) => c.type === 'acquired').length === 2, 5000, 'second acquired event');
      ctl2.stop();
      await eventually(() => seen.filter((c) => c.type === 'released').length === 2, 5000, 'second released event');
      await new Promise((r) => setTimeout(r, 300)); // nothing more may follow
      const holderChanges = seen.filter((c) => c.type !== 'changed').map((c) => `${c.type} ${String(c.lock?.meta?.holderKey)}`);
      expect(holderChanges).toEqual([`acquired ${ctlKey}`, `released ${ctlKey}`, `acquired ${ctl2Key}`, `released ${ctl2Key}`]);
      expect(seen.find((c) => c.type === 'released')!.heldMs).toBeGreaterThanOrEqual(0);
    } finally {
      off();
    }
  });

  it('revokes a holder lease on request, naming every key it carried', async () => {
    const name = `${base}/revoke`;
    const ctl = etcdctl(name);
    const ctlKey = await ctl.line((l) => l.startsWith(`${name}/`), 10_000, 'etcdctl holds');
    const info = (await b.get(name))!;
    expect((await b.revokeLease(name, { fence: '1' })).status).toBe('changed');
    const res = await b.revokeLease(name, { fence: info.fence! });
    expect(res).toMatchObject({ status: 'revoked', lease: ctlKey.slice(name.length + 1), keys: [ctlKey] });
    expect(await b.get(name)).toBeNull();
    ctl.stop();
  });
});
