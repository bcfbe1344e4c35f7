/**
 * Renewal traffic of session-bound locks (perf-reliability-anchors P8: "≤ 1 request per session
 * per TTL/3 for etcd/ZK"; the "renewal traffic batched"). One backend instance holds L
 * locks with autoRenew on a server of its own (so no other session's traffic lands in the count),
 * and the server counts what the session sent over a window of several TTL/3 periods:
 *
 *  - etcd: LeaseKeepAlive stream messages received (grpc_server_msg_received_total), and unary
 *    RPCs handled (nothing else should happen);
 *  - ZooKeeper: requests answered (Δ lcxid from `cons`; pings carry no client xid) and pings
 *    (packets received minus requests).
 *
 * Redis batches its EXTENDs instead (the redis section's renewal row); DynamoDB has no session:
 * every lock heartbeats with its own conditional UpdateItem, as the AWS lock client does.
 */
import { createEtcdBackend } from '../lib/backends/etcd/index';
import { createZooKeeperBackend } from '../lib/backends/zookeeper/index';
import type { LockBackend, LockHandle } from '../lib/locks/types';
import { startEtcd } from '../scripts/etcd-server';
import { fourLetterWord, startZooKeeper, type RunningServer } from '../scripts/servers';
import { scaled, type BenchContext } from './lib/context';
import { pin } from './lib/machine';
import { atMost, type Row } from './lib/report';
import { sleep } from './lib/stats';

const TTL_MS = 3000;

interface Counts {
  /** What the session sent that renews it (etcd keepalives; ZooKeeper pings). */
  beats: number;
  /** Other requests (etcd unary RPCs; ZooKeeper requests with a client xid). */
  requests: number;
}

async function holdAndCount(
  ctx: BenchContext, S: string, server: RunningServer, backend: LockBackend, count: () => Promise<Counts>, names: (i: number) => string,
): Promise<{ locks: number; windowMs: number; thirds: number; d: Counts; allHeld: boolean }> {
  if (ctx.pin && server.process.pid) pin(server.process.pid, ctx.pin.server);
  const locks = scaled(ctx, 200, 50);
  const handles: LockHandle[] = [];
  try {
    for (let i = 0; i < locks; i++) {
      const h = await backend.tryAcquire(names(i), { ttlMs: TTL_MS });
      if (!h) throw new Error(`${S} renewal: ${names(i)} unexpectedly held`);
      handles.push(h);
      // Spread over a TTL/3, so the handles' renewal timers fall in different ticks.
      await sleep(TTL_MS / 3 / locks);
    }
    await sleep(TTL_MS); // past every handle's first renewal
    const windowMs = scaled(ctx, 3 * TTL_MS, TTL_MS);
    const a = await count();
    await sleep(windowMs);
    const b = await count();
    const allHeld = handles.every((h) => h.held);
    return { locks, windowMs, thirds: windowMs / (TTL_MS / 3), d: { beats: b.beats - a.beats, requests: b.requests - a.requests }, allHeld };
  } finally {
    await Promise.allSettled(handles.map((h) => h.release()));
  }
}

export async function etcdRenewal(ctx: BenchContext, S: string): Promise<void> {
  const server = await startEtcd();
  try {
    const backend = createEtcdBackend({ id: 'bench-renewal', type: 'etcd', endpoints: server.endpoints, prefixes: ['/renewal/'] });
    try {
      const count = async (): Promise<Counts> => {
        const text = await (await fetch(`${server.url}/metrics`)).text();
        let beats = 0;
        let requests = 0;
        for (const m of text.matchAll(/^grpc_server_(msg_received|handled)_total\{([^}]*)\} (\S+)$/gm)) {
          const method = /grpc_method="(\w+)"/.exec(m[2]!)?.[1];
          const n = Number(m[3]);
          if (m[1] === 'msg_received' && method === 'LeaseKeepAlive') beats += n;
          if (m[1] === 'handled' && method !== 'LeaseKeepAlive' && method !== 'Watch') requests += n;
        }
        return { beats, requests };
      };
      const r = await holdAndCount(ctx, S, server, backend, count, (i) => `/renewal/lock-${i}`);
      const perThird = r.d.beats / r.thirds;
      ctx.log(`${S} renewal: ${r.locks} locks, TTL ${TTL_MS} ms, ${r.d.beats} keepalives and ${r.d.requests} other RPCs in ${r.windowMs} ms; all held ${r.allHeld}`);
      ctx.rows.push({
        section: S, figure: `renewal: keepalives per session per TTL/3 (${r.locks} locks)`, value: perThird, unit: 'req', baseline: '—', ratio: null,
        target: '≤ 1 (P8)', verdict: r.allHeld ? atMost(perThird, 1) : 'FAIL',
        note: `one backend holding ${r.locks} locks with autoRenew, TTL ${TTL_MS} ms, on an etcd of its own: ${r.d.beats} LeaseKeepAlive messages and ${r.d.requests} other RPCs over ${r.windowMs} ms ` +
          `(${(r.d.beats / r.locks / r.thirds).toFixed(3)} per lock per TTL/3; renewing each lock would be 1); all still held: ${r.allHeld}`,
      });
      ctx.details[`${S}Renewal`] = { ...r, ttlMs: TTL_MS, perThird };
    } finally {
      await backend.close();
    }
  } finally {
    await server.stop();
  }
}

export async function zookeeperRenewal(ctx: BenchContext, S: string): Promise<void> {
  const server = await startZooKeeper();
  try {
    const backend = createZooKeeperBackend({ id: 'bench-renewal', type: 'zookeeper', connect: `${server.host}:${server.port}`, roots: ['/renewal'] });
    try {
      const count = async (): Promise<Counts> => {
        let received = 0;
        let requests = 0;
        for (const m of (await fourLetterWord(server.host, server.port, 'cons', 3000)).matchAll(/recved=(\d+),sent=\d+,sid=0x[0-9a-f]+[^)]*?lcxid=0x([0-9a-f]+)/g)) {
          received += Number(m[1]);
          requests += parseInt(m[2]!, 16);
        }
        return { beats: received - requests, requests };
      };
      const r = await holdAndCount(ctx, S, server, backend, count, (i) => `renewal/lock-${i}`);
      const perThird = r.d.requests / r.thirds;
      ctx.log(`${S} renewal: ${r.locks} locks, TTL ${TTL_MS} ms, ${r.d.requests} requests and ${r.d.beats} pings in ${r.windowMs} ms; all held ${r.allHeld}`);
      ctx.rows.push({
        section: S, figure: `renewal: requests per session per TTL/3 (${r.locks} locks)`, value: perThird, unit: 'req', baseline: '—', ratio: null,
        target: '≤ 1 (P8)', verdict: r.allHeld ? atMost(perThird, 1) : 'FAIL',
        note: `one backend holding ${r.locks} locks with autoRenew, TTL ${TTL_MS} ms, on a ZooKeeper of its own: ${r.d.requests} requests (Δ lcxid) and ${r.d.beats} session pings over ${r.windowMs} ms; ` +
          `a renewal is proven by the armed watch on the lock's node, so locks add no traffic (an exists() per lock would be 1 per lock per TTL/3); all still held: ${r.allHeld}`,
      });
      ctx.details[`${S}Renewal`] = { ...r, ttlMs: TTL_MS, perThird };
    } finally {
      await backend.close();
    }
  } finally {
    await server.stop();
  }
}
