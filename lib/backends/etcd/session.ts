/**
 * Sessions: etcd leases that lockdeck's keys are attached to, kept alive over ONE LeaseKeepAlive
 * stream per backend (every lease's keepalives and every handle's renewal ride on it).
 *
 * A session is what Go calls a `concurrency.Session` (client/v3/concurrency/session.go): one lease,
 * kept alive every TTL/3 (client/v3/lease.go), shared by every lock taken through it. Its lease id
 * is also the last segment of each of its contender keys. When the lease is lost, every key on it
 * is gone, so every handle on it is lost.
 */
import type { Etcd3 } from 'etcd3';

import { BackendUnavailableError } from '../../locks/errors';
import { leaseHex } from './layout';

interface KeepAliveStream {
  write(req: { ID: string }): void;
  on(ev: 'data', fn: (res: { ID: string; TTL: string }) => void): KeepAliveStream;
  on(ev: 'error' | 'end', fn: (err?: unknown) => void): KeepAliveStream;
  end(): void;
}

interface Group {
  resolve: (ttl: number) => void;
  reject: (err: unknown) => void;
}

/**
 * One LeaseKeepAlive stream for all the backend's leases. Requests asked for in the same tick are
 * sent as one message per lease (a batch); responses come back in order per lease, so each batch
 * is answered by the response to its own request, never by an earlier one (an earlier answer would
 * prove the lease alive at a time before the caller asked).
 */
export class LeaseKeeper {
  private stream: KeepAliveStream | null = null;
  private connecting: Promise<KeepAliveStream> | null = null;
  private readonly inflight = new Map<string, Group[][]>();
  private readonly next = new Map<string, Group[]>();
  private flushScheduled = false;
  private closed = false;

  constructor(private readonly client: Etcd3, private readonly timeoutMs: number) {}

  /** One keepalive of lease `id`: resolves to its TTL in seconds (0 or less: the lease is gone). */
  keepAlive(id: string): Promise<number> {
    if (this.closed) return Promise.reject(new BackendUnavailableError('etcd backend is closed'));
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new BackendUnavailableError(`lease keepalive for ${leaseHex(id)} got no answer in ${this.timeoutMs} ms`)), this.timeoutMs);
      timer.unref?.();
      const g: Group = {
        resolve: (ttl) => {
          clearTimeout(timer);
          resolve(ttl);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      let batch = this.next.get(id);
      if (!batch) this.next.set(id, (batch = []));
      batch.push(g);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const batches = [...this.next];
    this.next.clear();
    let stream: KeepAliveStream;
    try {
      stream = await this.open();
    } catch (err) {
      for (const [, b] of batches) for (const g of b) g.reject(new BackendUnavailableError('cannot open the lease keepalive stream', { cause: err }));
      return;
    }
    for (const [id, b] of batches) {
      let q = this.inflight.get(id);
      if (!q) this.inflight.set(id, (q = []));
      q.push(b);
      stream.write({ ID: id });
    }
  }

  private open(): Promise<KeepAliveStream> {
    if (this.stream) return Promise.resolve(this.stream);
    this.connecting ??= this.client.leaseClient.leaseKeepAlive().then((raw) => {
      const s = raw as unknown as KeepAliveStream;
      const fail = (err?: unknown) => {
        if (this.stream !== s) return;
        this.stream = null;
        const e = new BackendUnavailableError('lease keepalive stream broke', { cause: err });
        for (const q of this.inflight.values()) for (const b of q) for (const g of b) g.reject(e);
        this.inflight.clear();
      };
      s.on('data', (res) => {
        const q = this.inflight.get(res.ID);
        const b = q?.shift();
        if (q && !q.length) this.inflight.delete(res.ID);
        const ttl = Number(res.TTL);
        for (const g of b ?? []) g.resolve(ttl);
      });
      s.on('error', fail);
      s.on('end', fail);
      this.stream = s;
      this.connecting = null;
      return s;
    });
    this.connecting.catch(() => (this.connecting = null));
    return this.connecting;
  }

  close(): void {
    this.closed = true;
    const s = this.stream;
    this.stream = null;
    const e = new BackendUnavailableError('etcd backend is closed');
    for (const q of this.inflight.values()) for (const b of q) for (const g of b) g.reject(e);
    this.inflight.clear();
    try {
      s?.end();
    } catch {
      // already broken
    }
  }
}

/**
 * One lease with its keepalive loop. `names` are the lock names that have (or are about to have) a
 * key on it: Go's layout gives a session one key per name, so a second lock of the same name in this
 * process must use another session (EtcdLockBackend picks one).
 */
export class Session {
  readonly names = new Set<string>();
  id = '';
  hex = '';
  grantedTtlS = 0;
  dead = false;
  /** performance.now() when the last keepalive that succeeded was sent (or the grant). */
  lastAliveAt = 0;
  idleSince = performance.now();
  readonly ready: Promise<void>;
  private timer: NodeJS.Timeout | undefined;
  private readonly lostListeners = new Set<(err: Error) => void>();

  constructor(
    private readonly client: Etcd3,
    private readonly keeper: LeaseKeeper,
    readonly ttlS: number,
  ) {
    const t0 = performance.now();
    this.ready = client.leaseClient.leaseGrant({ TTL: ttlS, ID: 0 }).then((res) => {
      this.id = res.ID;
      this.hex = leaseHex(res.ID);
      this.grantedTtlS = Number(res.TTL);
      this.lastAliveAt = t0;
      if (this.dead) {
        void this.revoke();
        throw new BackendUnavailableError('session closed while its lease was being granted');
      }
      this.schedule();
    });
    this.ready.catch(() => this.die(new BackendUnavailableError('cannot grant a lease')));
  }

  onLost(fn: (err: Error) => void): () => void {
    this.lostListeners.add(fn);
    return () => this.lostListeners.delete(fn);
  }

  /**
   * A keepalive now (batched with any others of this tick). Resolves true while the lease lives,
   * false once etcd says it is gone (the session then dies). Rejects on transport errors.
   */
  async refresh(): Promise<boolean> {
    if (this.dead) return false;
    await this.ready;
    const sent = performance.now();
    const ttl = await this.keeper.keepAlive(this.id);
    if (ttl <= 0) {
      this.die(new BackendUnavailableError(`lease ${this.hex} expired or was revoked`));
      return false;
    }
    this.lastAliveAt = Math.max(this.lastAliveAt, sent);
    return true;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (this.dead) return;
    this.timer = setTimeout(() => void this.beat(), (this.grantedTtlS * 1000) / 3);
    this.timer.unref?.();
  }

  private async beat(): Promise<void> {
    try {
      await this.refresh();
    } catch {
      // Transport error: retried sooner; the lease is presumed lost once its TTL has passed
      // since the last keepalive that got through (our clock, so never later than etcd's).
      if (performance.now() - this.lastAliveAt > this.grantedTtlS * 1000) {
        this.die(new BackendUnavailableError(`lease ${this.hex}: no keepalive got through for its whole TTL`));
        return;
      }
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.beat(), Math.min(500, (this.grantedTtlS * 1000) / 6));
      this.timer.unref?.();
      return;
    }
    this.schedule();
  }

  die(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    clearTimeout(this.timer);
    for (const fn of [...this.lostListeners]) {
      try {
        fn(err);
      } catch {
        // a listener must not stop the others
      }
    }
    this.lostListeners.clear();
  }

  /** Ends the session: revokes the lease, which deletes every key still on it. */
  async revoke(): Promise<void> {
    const wasDead = this.dead;
    this.dead = true;
    clearTimeout(this.timer);
    this.lostListeners.clear();
    if (!this.id) return;
    if (wasDead && this.grantedTtlS === 0) return;
    try {
      await this.client.leaseClient.leaseRevoke({ ID: this.id });
    } catch {
      // gone already, or unreachable: it expires by itself
    }
  }
}
