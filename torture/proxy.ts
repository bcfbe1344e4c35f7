/**
 * Network faults without `tc netem`: a userspace TCP proxy on loopback between a group of workers
 * and a server (the lock store, and the fenced register). On this box `tc qdisc add ... netem`
 * fails with "Specified qdisc kind is unknown" (no sch_netem module in the kernel, no modprobe),
 * although `ip netns` and veth pairs work; and netem on `lo` would slow every other process on the
 * box. The proxy only touches connections made through it.
 *
 *  - delay(ms): every chunk is forwarded `ms` later, in both directions (order kept);
 *  - partition(): nothing is forwarded either way; bytes are held, as a TCP stack retransmitting
 *    into a partition would, and delivered on heal(): the stale holder's late write of Kleppmann's
 *    example arrives after its lease is gone, and the resource must refuse it by its fence.
 * New connections are accepted during a partition (and connected upstream) but carry nothing.
 *
 * With `delayed`, the delay applies only to the connections it selects from the first bytes their
 * client sends (e.g. a Redis replica's REPLCONF handshake: torture/sentinel-lag.ts); the others pass
 * undelayed. A connection whose other side closes is closed at once and the bytes held for it are
 * dropped, not flushed, as a crashed host loses what it had in flight.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

interface Pipe {
  queue: Array<{ at: number; buf: Buffer }>;
  timer: NodeJS.Timeout | undefined;
  to: Socket;
  /** Whether setDelay() applies to this connection (FaultProxyOptions.delayed). */
  delayed: boolean;
}

export interface FaultProxyOptions {
  /**
   * Selects the connections setDelay() applies to, from the bytes their client has sent so far
   * (latin1, up to the first 4 KiB; asked again on each chunk until it says yes). Default: all.
   */
  delayed?: (firstBytes: string) => boolean;
}

/** How much of a connection's first bytes `delayed` gets to see. */
const SNIFF_BYTES = 4096;

export class FaultProxy {
  private server: Server | undefined;
  private delayMs = 0;
  private partitioned = false;
  private readonly pipes = new Set<Pipe>();
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(
    private readonly targetHost: string,
    readonly targetPort: number,
    private readonly opts: FaultProxyOptions = {},
  ) {}

  async start(): Promise<number> {
    this.server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(0, '127.0.0.1', () => resolve());
    });
    const addr = this.server.address();
    if (typeof addr !== 'object' || !addr) throw new Error('proxy: no address');
    this.port = addr.port;
    return this.port;
  }

  private accept(client: Socket): void {
    const upstream = connect({ host: this.targetHost, port: this.targetPort });
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    this.sockets.add(client).add(upstream);
    const { delayed } = this.opts;
    const up: Pipe = { queue: [], timer: undefined, to: upstream, delayed: !delayed };
    const down: Pipe = { queue: [], timer: undefined, to: client, delayed: !delayed };
    this.pipes.add(up).add(down);
    let sniffed = '';
    client.on('data', (buf) => {
      if (delayed && !up.delayed && sniffed.length < SNIFF_BYTES) {
        sniffed += buf.toString('latin1');
        // From this chunk on, both directions (a replication stream one way, its ACKs the other).
        if (delayed(sniffed)) up.delayed = down.delayed = true;
      }
      this.push(up, buf);
    });
    upstream.on('data', (buf) => this.push(down, buf));
    const close = () => {
      client.destroy();
      upstream.destroy();
      for (const p of [up, down]) {
        clearTimeout(p.timer);
        p.queue.length = 0;
        this.pipes.delete(p);
      }
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    // A server restart or a client going away closes both sides, as a real connection would
    // (only after the held bytes are gone: a partition keeps the connection up).
    client.on('close', close);
    upstream.on('close', close);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  }

  private push(p: Pipe, buf: Buffer): void {
    p.queue.push({ at: performance.now() + (p.delayed ? this.delayMs : 0), buf });
    this.pump(p);
  }

  private pump(p: Pipe): void {
    clearTimeout(p.timer);
    p.timer = undefined;
    if (this.partitioned) return;
    const now = performance.now();
    while (p.queue.length && p.queue[0]!.at <= now) {
      const { buf } = p.queue.shift()!;
      if (!p.to.destroyed) p.to.write(buf);
    }
    if (p.queue.length) p.timer = setTimeout(() => this.pump(p), Math.max(0, p.queue[0]!.at - now));
  }

  setDelay(ms: number): void {
    this.delayMs = ms;
  }

  partition(): void {
    this.partitioned = true;
    for (const p of this.pipes) clearTimeout(p.timer);
  }

  heal(): void {
    this.partitioned = false;
    for (const p of this.pipes) this.pump(p);
  }

  /** Drops every connection and the bytes held for it (a crashed server or middlebox). */
  reset(): void {
    for (const p of this.pipes) p.queue.length = 0;
    for (const sock of this.sockets) sock.destroy();
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    for (const p of this.pipes) clearTimeout(p.timer);
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

/** Every `127.0.0.1:<port>` / `localhost:<port>` a backend configuration points at. */
export function configPorts(config: unknown): number[] {
  const ports = new Set<number>();
  for (const m of JSON.stringify(config).matchAll(/(?:127\.0\.0\.1|localhost):(\d+)/g)) ports.add(Number(m[1]));
  return [...ports];
}

/** The configuration with each server port replaced by its proxy's port. */
export function rewriteConfig<T>(config: T, portMap: Map<number, number>): T {
  const text = JSON.stringify(config).replace(/(127\.0\.0\.1|localhost):(\d+)/g, (all, host: string, port: string) => {
    const p = portMap.get(Number(port));
    return p ? `${host}:${p}` : all;
  });
  return JSON.parse(text) as T;
}
