/**
 * Renewal traffic (perf-reliability-anchors P8: ≤ 1 request per session per TTL/3 for etcd and
 * ZooKeeper): locks held through a session renew without a request of their own. etcd: a
 * handle's renewal is answered from the session's last keepalive while that is under half a
 * lease old; ZooKeeper: from the watch on its node while it is armed. etcd's keepalives are
 * counted by a server of its own (its metrics are per server); ZooKeeper's requests per session,
 * on the shared server. (Redis batches EXTENDs instead: bench.)
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, inject, it } from 'vitest';

import { createEtcdBackend } from '../lib/backends/etcd';
import { createZooKeeperBackend } from '../lib/backends/zookeeper';
import type { LockBackend, LockHandle } from '../lib/locks';
import { startEtcd } from '../scripts/etcd-server';
import { fourLetterWord, type RunningServer } from '../scripts/servers';

const LOCKS = 40;
const TTL_MS = 1500;
const WINDOW_MS = 3000;

/** Takes `LOCKS` locks 10 ms apart, so their renewal timers fall in different ticks. */
async function holdMany(b: LockBackend, prefix: string): Promise<LockHandle[]> {
  const handles: LockHandle[] = [];
  for (let i = 0; i < LOCKS; i++) {
    const h = await b.tryAcquire(`${prefix}lock-${i}`, { ttlMs: TTL_MS });
    if (!h) throw new Error(`lock-${i} unexpectedly held`);
    handles.push(h);
    await sleep(10);
  }
  return handles;
}

describe('renewal traffic of session-bound locks', { timeout: 60_000 }, () => {
  const stops: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  });
  const own = <T extends RunningServer>(s: T) => (stops.push(() => s.stop()), s);

  it(`etcd: ${LOCKS} locks on one session send the session's keepalives only`, async () => {
    const server = own(await startEtcd());
    const keepalives = async () => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const m = /^grpc_server_msg_received_total\{grpc_method="LeaseKeepAlive"[^}]*\} (\d+)$/m.exec(text);
      return Number(m?.[1] ?? 0);
    };
    const b = createEtcdBackend({ id: 'renew-etcd', type: 'etcd', endpoints: server.endpoints, prefixes: ['/renew/'] });
    stops.push(() => b.close());
    const handles = await holdMany(b, '/renew/');
    await sleep(TTL_MS); // every handle past its first renewal
    const before = await keepalives();
    await sleep(WINDOW_MS);
    const sent = (await keepalives()) - before;
    // One lease of 2 s (1.5 s rounded up) beats every 667 ms: ~5 in the window. Renewing per
    // lock would be 40 locks × 6 renewals (one a TTL/3) = 240.
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThanOrEqual(Math.ceil(WINDOW_MS / (2000 / 3)) + 2);
    expect(handles.every((h) => h.held)).toBe(true);
    expect((await b.list()).length).toBe(LOCKS);
  });

  it(`ZooKeeper: ${LOCKS} locks on one session send no request per lock`, async () => {
    const [host, port] = inject('zookeeperConnect').split(',')[0]!.split(':') as [string, string];
    const b = createZooKeeperBackend({ id: 'renew-zk', type: 'zookeeper', connect: `${host}:${port}`, roots: [`/renew-${process.pid}`] });
    stops.push(() => b.close());
    const handles = await holdMany(b, '');
    // This backend's session only (bench-style peek at its private session): other test files
    // share the server.
    const sid = (b as unknown as { zk: { sessionId(): string | null } }).zk.sessionId()!;
    const requests = async () => {
      for (const m of (await fourLetterWord(host, Number(port), 'cons', 3000)).matchAll(/sid=0x([0-9a-f]+)[^)]*?lcxid=0x([0-9a-f]+)/g)) {
        if (BigInt(`0x${m[1]}`) === BigInt(`0x${sid}`)) return parseInt(m[2]!, 16);
      }
      throw new Error(`session ${sid} not in cons`);
    };
    await sleep(TTL_MS);
    const before = await requests();
    await sleep(WINDOW_MS);
    const sent = (await requests()) - before;
    // Renewing by an exists() per lock would be 40 × 6 = 240 requests (pings do not count: they
    // carry no client xid).
    expect(sent).toBeLessThanOrEqual(2);
    expect(handles.every((h) => h.held)).toBe(true);
    expect((await b.list()).length).toBe(LOCKS);
  });
});
