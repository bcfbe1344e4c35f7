/**
 * Load on the console's server: N concurrent `/api/events` clients and a steady request rate
 * while locks change on SQLite and Redis, against a real `next start` (test/console/harness.ts).
 *
 * Measures the server's resident memory (VmRSS of the `next start` process, from /proc) over the
 * run, and checks that every client ends with the true final state: each client keeps the locks
 * it was told about (the snapshot, then every change event, reconnecting to a fresh snapshot if
 * the server drops it, as a browser does), and once the churn stops and the last changes are
 * made, every client's view of the churned keys must equal what the lock stores hold.
 *
 *   npx tsx scripts/console-load.ts --clients 200 --seconds 60 [--rate 20] [--changes 20]
 *
 * test/console/load.test.ts runs the short form (200 clients for about 10 s) through
 * {@link runLoad}.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createRedisBackend } from '../lib/backends/redis';
import { createSqliteBackend } from '../lib/backends/sqlite';
import type { LockBackend, LockHandle } from '../lib/locks/types';
import { readSse, startConsole } from '../test/console/harness';
import { startRedis, type RunningServer } from './servers';

export interface LoadOptions {
  clients: number;
  seconds: number;
  /** API requests per second (GET /api/locks, /api/backends, /api/locks/detail, /api/metrics). */
  requestRate?: number;
  /** Lock changes (acquire or release) per second, over both backends. */
  changeRate?: number;
  /** Keys churned per backend. */
  keysPerBackend?: number;
  /** An existing Redis (else one is started for the run). */
  redisUrl?: string;
  /** How long every client has to converge on the final state. */
  settleMs?: number;
  /** NODE_OPTIONS for the server, e.g. `--max-old-space-size=128` to tell a leak from lazy GC. */
  nodeOptions?: string;
  log?: (line: string) => void;
}

export interface RssSample {
  /** ms since the clients started connecting. */
  t: number;
  rssKb: number;
  phase: 'connect' | 'load' | 'settle' | 'closed';
}

export interface ClientResult {
  id: number;
  /** ms from the request to the first snapshot. */
  snapshotMs: number | null;
  events: number;
  /** Streams the server ended (slow client dropped, error) that the client re-opened. */
  reconnects: number;
  /** The client's view of the churned keys equals the stores'. */
  converged: boolean;
  /** Keys where it did not (first few), as `backend/key: saw → truth`. */
  mismatches: string[];
  error: string | null;
}

export interface LoadResult {
  serverPid: number;
  rss: RssSample[];
  /** Median RSS over the first seconds of the load phase (after every client had its snapshot). */
  warmRssKb: number;
  /** Median RSS over the last seconds of the load phase. */
  endRssKb: number;
  peakRssKb: number;
  /** After every client closed and a pause. */
  closedRssKb: number;
  clients: ClientResult[];
  requests: { sent: number; byStatus: Record<string, number>; failures: string[]; p50Ms: number; p99Ms: number };
  changes: number;
  /** `lockdeck_console_event_streams` after every client closed. */
  streamsAfterClose: number | null;
  finalLocks: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function quantile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

interface LockEventData {
  backend: string;
  key: string;
  fence?: string | null;
  lock?: { fence: string | null } | null;
}

/** One event-stream client that keeps the state of the keys under `prefix`. */
class StreamClient {
  readonly state = new Map<string, string | null>();
  events = 0;
  reconnects = 0;
  snapshotMs: number | null = null;
  error: string | null = null;
  private ac = new AbortController();
  private closed = false;
  private gotSnapshot!: () => void;
  readonly snapshot = new Promise<void>((r) => (this.gotSnapshot = r));

  constructor(
    readonly id: number,
    private readonly url: string,
    private readonly token: string,
    private readonly prefix: string,
  ) {}

  start(): void {
    void this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      const started = performance.now();
      try {
        const res = await fetch(`${this.url}/api/events`, { headers: { authorization: `Bearer ${this.token}` }, signal: this.ac.signal });
        if (res.status !== 200 || !res.body) throw new Error(`status ${res.status}`);
        await this.read(res.body, started);
      } catch (err) {
        if (this.closed) return;
        this.error = err instanceof Error ? err.message : String(err);
      }
      if (this.closed) return;
      // The server ended the stream: a browser reconnects (after `retry`) to a fresh snapshot.
      this.reconnects++;
      await sleep(200);
    }
  }

  private read(body: NonNullable<Response['body']>, started: number): Promise<void> {
    return readSse(body, (b) => {
      if (b.data) this.apply(b.event, JSON.parse(b.data) as unknown, started);
    });
  }

  private apply(event: string, data: unknown, started: number): void {
    const k = (d: { backend: string; key: string }) => `${d.backend}/${d.key}`;
    if (event === 'snapshot') {
      const snap = data as { locks: Array<{ backend: string; key: string; fence: string | null }> };
      this.state.clear();
      for (const l of snap.locks) if (l.key.startsWith(this.prefix)) this.state.set(k(l), l.fence);
      this.snapshotMs ??= performance.now() - started;
      this.gotSnapshot();
      return;
    }
    if (event === 'ping' || event === 'backend' || event === 'retry') return;
    this.events++;
    const d = data as LockEventData;
    if (typeof d.key !== 'string' || !d.key.startsWith(this.prefix)) return;
    if (event === 'acquired' || event === 'changed') this.state.set(k(d), d.lock?.fence ?? d.fence ?? null);
    else if (event === 'released' || event === 'expired' || event === 'forced') this.state.delete(k(d));
  }

  close(): void {
    this.closed = true;
    this.ac.abort();
  }
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const log = opts.log ?? (() => {});
  const requestRate = opts.requestRate ?? 20;
  const changeRate = opts.changeRate ?? 20;
  const keysPerBackend = opts.keysPerBackend ?? 20;
  const settleMs = opts.settleMs ?? 15_000;
  const OP = `op-${randomBytes(12).toString('hex')}`;
  const VW = `vw-${randomBytes(12).toString('hex')}`;
  const prefix = `load-${randomBytes(3).toString('hex')}/`;
  const dir = mkdtempSync(join(tmpdir(), 'lockdeck-load-'));
  const sqlitePath = join(dir, 'locks.db');
  let redisServer: RunningServer | undefined;
  const redisUrl = opts.redisUrl ?? (redisServer = await startRedis()).url;
  const local = createSqliteBackend({ id: 'local', type: 'sqlite', path: sqlitePath });
  const cache = createRedisBackend({ id: 'cache', type: 'redis', url: redisUrl });
  const backends: LockBackend[] = [local, cache];
  const held = new Map<string, LockHandle>();
  const clients: StreamClient[] = [];
  const server = await startConsole({
    config: {
      backends: [
        { id: 'local', type: 'sqlite', path: sqlitePath },
        { id: 'cache', type: 'redis', url: redisUrl },
      ],
    },
    env: { LOCKDECK_OPERATOR_TOKEN: OP, LOCKDECK_VIEWER_TOKEN: VW, LOCKDECK_HEARTBEAT_MS: '1000', LOCKDECK_RECONCILE_INTERVAL_MS: '1000', ...(opts.nodeOptions ? { NODE_OPTIONS: opts.nodeOptions } : {}) },
  });
  const pid = server.process.pid!;
  const t0 = performance.now();
  const rss: RssSample[] = [];
  let phase: RssSample['phase'] = 'connect';
  const sampler = setInterval(() => {
    try {
      rss.push({ t: Math.round(performance.now() - t0), rssKb: rssKb(pid), phase });
    } catch {
      // the server is gone; the run fails elsewhere
    }
  }, 250);
  const latencies: number[] = [];
  const byStatus: Record<string, number> = {};
  const failures: string[] = [];
  let sent = 0;
  let changes = 0;
  try {
    log(`server pid ${pid} at ${server.url}; RSS before clients ${rssKb(pid)} kB`);
    // Connect in waves, as browsers would after a deploy, not in one burst.
    for (let i = 0; i < opts.clients; i++) {
      const c = new StreamClient(i, server.url, VW, prefix);
      clients.push(c);
      c.start();
      if (i % 25 === 24) await sleep(50);
    }
    const connectTimeout = sleep(60_000).then(() => 'timeout' as const);
    if ((await Promise.race([Promise.all(clients.map((c) => c.snapshot)), connectTimeout])) === 'timeout') {
      throw new Error(`only ${clients.filter((c) => c.snapshotMs !== null).length} of ${opts.clients} clients got a snapshot within 60 s`);
    }
    log(`${opts.clients} clients have their snapshot after ${Math.round(performance.now() - t0)} ms`);
    phase = 'load';
    const loadStart = performance.now();
    const until = loadStart + opts.seconds * 1000;

    // Lock churn: take a free key or release a held one, alternately on both backends.
    const keys = Array.from({ length: keysPerBackend }, (_, i) => `${prefix}k${i}`);
    const churn = (async () => {
      let n = 0;
      while (performance.now() < until) {
        const b = backends[n % backends.length]!;
        const key = keys[Math.floor(Math.random() * keys.length)]!;
        const id = `${b.id}/${key}`;
        const h = held.get(id);
        try {
          if (h) {
            held.delete(id);
            await h.release();
          } else {
            const got = await b.tryAcquire(key, { ttlMs: 120_000 });
            if (got) held.set(id, got);
          }
          changes++;
        } catch (err) {
          failures.push(`churn ${id}: ${err instanceof Error ? err.message : String(err)}`);
        }
        n++;
        await sleep(1000 / changeRate);
      }
    })();

    // Steady request rate (a fixed schedule, not "as fast as answers come").
    const paths = [`/api/locks?q=${encodeURIComponent(prefix)}`, '/api/backends', `/api/locks/detail?backend=local&key=${encodeURIComponent(keys[0]!)}`, '/api/metrics', '/api/locks?limit=50'];
    const inflight: Array<Promise<void>> = [];
    const requests = (async () => {
      let n = 0;
      while (performance.now() < until) {
        const path = paths[n++ % paths.length]!;
        const started = performance.now();
        sent++;
        inflight.push(
          fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${VW}` }, signal: AbortSignal.timeout(20_000) })
            .then(async (res) => {
              await res.arrayBuffer();
              latencies.push(performance.now() - started);
              byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
              const fine = res.status === 200 || (res.status === 404 && path.startsWith('/api/locks/detail'));
              if (!fine) failures.push(`${path}: ${res.status}`);
            })
            .catch((err: unknown) => {
              byStatus.error = (byStatus.error ?? 0) + 1;
              failures.push(`${path}: ${err instanceof Error ? err.message : String(err)}`);
            }),
        );
        await sleep(1000 / requestRate);
      }
    })();

    let lastReport = performance.now();
    while (performance.now() < until) {
      await sleep(250);
      if (performance.now() - lastReport >= 5000) {
        lastReport = performance.now();
        const last = rss.at(-1);
        log(`t=${((performance.now() - loadStart) / 1000).toFixed(0)} s  RSS ${last?.rssKb} kB  changes ${changes}  requests ${sent}  events/client (median) ${median(clients.map((c) => c.events))}`);
      }
    }
    await Promise.all([churn, requests]);
    await Promise.all(inflight);

    // The final changes: release half of what is held, take one marker per backend.
    phase = 'settle';
    let i = 0;
    for (const [id, h] of [...held]) {
      if (i++ % 2 === 0) {
        held.delete(id);
        await h.release();
      }
    }
    for (const b of backends) held.set(`${b.id}/${prefix}final`, await b.acquire(`${prefix}final`, { ttlMs: 120_000 }));
    const truth = new Map([...held].map(([id, h]) => [id, h.fence]));

    const diff = (c: StreamClient): string[] => {
      const out: string[] = [];
      for (const [id, fence] of truth) if (c.state.get(id) !== fence) out.push(`${id}: ${c.state.has(id) ? c.state.get(id) : 'free'} → ${fence}`);
      for (const [id, fence] of c.state) if (!truth.has(id)) out.push(`${id}: ${fence} → free`);
      return out;
    };
    const settleUntil = performance.now() + settleMs;
    while (performance.now() < settleUntil && clients.some((c) => diff(c).length > 0)) await sleep(200);
    log(`settled after ${Math.round(performance.now() - (settleUntil - settleMs))} ms: ${clients.filter((c) => diff(c).length === 0).length}/${clients.length} clients agree with the stores (${truth.size} held locks)`);

    const results: ClientResult[] = clients.map((c) => {
      const d = diff(c);
      return { id: c.id, snapshotMs: c.snapshotMs === null ? null : Math.round(c.snapshotMs), events: c.events, reconnects: c.reconnects, converged: d.length === 0, mismatches: d.slice(0, 5), error: c.error };
    });

    const loadSamples = rss.filter((s) => s.phase === 'load');
    const window = Math.max(1, Math.floor(loadSamples.length / 5));
    const warmRssKb = median(loadSamples.slice(0, window).map((s) => s.rssKb));
    const endRssKb = median(loadSamples.slice(-window).map((s) => s.rssKb));
    const peakRssKb = Math.max(...rss.map((s) => s.rssKb));

    for (const c of clients) c.close();
    phase = 'closed';
    // Every stream must be dropped on the server once its client is gone.
    let streamsAfterClose: number | null = null;
    const closeUntil = performance.now() + 10_000;
    for (;;) {
      const text = await (await fetch(`${server.url}/api/metrics`, { headers: { authorization: `Bearer ${VW}` } })).text();
      streamsAfterClose = Number(/^lockdeck_console_event_streams (\d+)/m.exec(text)?.[1] ?? NaN);
      if (streamsAfterClose === 0 || performance.now() > closeUntil) break;
      await sleep(250);
    }
    await sleep(1000);
    const closedRssKb = rssKb(pid);
    return {
      serverPid: pid,
      rss,
      warmRssKb,
      endRssKb,
      peakRssKb,
      closedRssKb,
      clients: results,
      requests: { sent, byStatus, failures: failures.slice(0, 20), p50Ms: Math.round(quantile(latencies, 0.5)), p99Ms: Math.round(quantile(latencies, 0.99)) },
      changes,
      streamsAfterClose,
      finalLocks: truth.size,
    };
  } finally {
    clearInterval(sampler);
    for (const c of clients) c.close();
    await Promise.allSettled([...held.values()].map((h) => h.release()));
    await Promise.allSettled(backends.map((b) => b.close()));
    await server.stop();
    await redisServer?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- command line ---------------------------------------------------------------------------

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} needs a positive number`);
  return v;
}

async function main(): Promise<void> {
  const opts: LoadOptions = {
    clients: arg('clients', 200),
    seconds: arg('seconds', 60),
    requestRate: arg('rate', 20),
    changeRate: arg('changes', 20),
    log: (l) => console.log(`[load] ${l}`),
  };
  const nodeOptions = process.argv.indexOf('--node-options');
  if (nodeOptions >= 0) opts.nodeOptions = process.argv[nodeOptions + 1];
  console.log(`[load] ${opts.clients} event-stream clients, ${opts.seconds} s, ${opts.requestRate} requests/s, ${opts.changeRate} lock changes/s`);
  const r = await runLoad(opts);
  console.log('\nRSS of the next start process (kB), one sample per second:');
  let lastT = -1000;
  for (const s of r.rss) {
    if (s.t - lastT < 1000) continue;
    lastT = s.t;
    console.log(`  t=${(s.t / 1000).toFixed(1).padStart(6)} s  ${String(s.rssKb).padStart(8)}  ${s.phase}`);
  }
  console.log(`\nRSS: warm ${r.warmRssKb} kB, end of load ${r.endRssKb} kB (${r.endRssKb - r.warmRssKb >= 0 ? '+' : ''}${r.endRssKb - r.warmRssKb} kB), peak ${r.peakRssKb} kB, after clients closed ${r.closedRssKb} kB`);
  console.log(`requests: ${r.requests.sent} sent, by status ${JSON.stringify(r.requests.byStatus)}, p50 ${r.requests.p50Ms} ms, p99 ${r.requests.p99Ms} ms`);
  console.log(`lock changes: ${r.changes}; final held locks: ${r.finalLocks}; streams open after close: ${r.streamsAfterClose}`);
  if (r.requests.failures.length) console.log(`failures: ${r.requests.failures.join('; ')}`);
  console.log('\nper client: id snapshot-ms events reconnects converged [mismatches] [error]');
  for (const c of r.clients) {
    console.log(`  ${String(c.id).padStart(4)} ${String(c.snapshotMs).padStart(6)} ${String(c.events).padStart(7)} ${String(c.reconnects).padStart(3)} ${c.converged ? 'yes' : 'NO '} ${c.mismatches.join(', ')} ${c.error ?? ''}`);
  }
  const ok = r.clients.every((c) => c.converged) && r.requests.failures.length === 0 && r.streamsAfterClose === 0;
  const events = r.clients.map((c) => c.events);
  console.log(`\nsummary: ${r.clients.filter((c) => c.converged).length}/${r.clients.length} clients converged; events per client min ${Math.min(...events)} median ${median(events)} max ${Math.max(...events)}; reconnects ${r.clients.reduce((a, c) => a + c.reconnects, 0)}; ${ok ? 'OK' : 'FAILED'}`);
  process.exitCode = ok ? 0 : 1;
}

if (process.argv[1] && /console-load\.[tj]s$/.test(process.argv[1])) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
