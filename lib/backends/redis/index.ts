/**
 * The Redis backend: lockdeck's own locks (client + inspector) on one Redis server, a Sentinel
 * master set or a Cluster, plus the foreign layouts that `formats.ts` recognises.
 *
 * One round trip per acquire, release and renewal (a Lua script each, see scripts.ts). Waiting is
 * push-based: each backend instance subscribes once to its own channel, a release hands the lock
 * to the oldest waiter on the server and publishes "granted" there. A bounded re-check (at the
 * holder's expiry, at most every `recheckMs`) covers a lost message or a holder that died.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';

import { abortError, AcquireTimeoutError, BackendUnavailableError, InvalidArgumentError } from '../../locks/errors';
import { ManagedHandle } from '../../locks/handle';
import { lockHealth } from '../../locks/health';
import type {
  AcquireOptions,
  Capabilities,
  ForceReleaseExpectation,
  ForceReleaseResult,
  ListFilter,
  LockBackend,
  LockChange,
  LockHandle,
  LockInfo,
  OwnerInfo,
  Unsubscribe,
  WaiterInfo,
} from '../../locks/types';
import { makeOwner, randomId, resolveAcquireOptions, tokenHash, validateName } from '../../locks/util';
import type { RedisBackendConfig } from '../config';
import { DEFAULT_MATCH, forceReleaseForeign, inspectForeignKey, scanForeign, validateMatchGlob } from './formats';
import { ACQUIRE, CANCEL, EXTEND, FORCE, RELEASE } from './scripts';

type Conn = Redis | Cluster;

export interface RedisBackendOptions {
  /** Longest a waiter goes without re-checking the lock (covers lost pub/sub messages). */
  recheckMs: number;
  /** First lease of a lock handed to a waiter; the waiter tops it up to its TTL at once. */
  handoffTtlMs: number;
  /** Per-command timeout: a slow or dead server fails calls instead of hanging them. */
  commandTimeoutMs: number;
  /** Extra ioredis options (TLS, username...). Never taken from a request. */
  redisOptions: RedisOptions;
}

const DEFAULTS: Readonly<RedisBackendOptions> = Object.freeze({
  recheckMs: 2000,
  handoffTtlMs: 5000,
  commandTimeoutMs: 5000,
  redisOptions: {},
});

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;
interface ScriptedConn {
  ldAcquire: ScriptFn;
  ldRelease: ScriptFn;
  ldExtend: ScriptFn;
  ldCancel: ScriptFn;
  ldForce: ScriptFn;
}

interface PendingWait {
  name: string;
  onGrant(fence: string, exp: number, leaseMs: number): void;
}

const CAPABILITIES: Capabilities = Object.freeze({
  fencing: true,
  ttl: true,
  waiters: true,
  pushWatch: true,
  notifiesHolderOnForce: true,
});

/** Creates the backend. Connections open lazily; `ping()` tells whether the server answers. */
export function createRedisBackend(config: RedisBackendConfig, options: Partial<RedisBackendOptions> = {}): LockBackend {
  if (config.urls) {
    throw new InvalidArgumentError(`backend "${config.id}": Redlock over several masters (urls) is not supported yet`);
  }
  return new RedisBackend(config, { ...DEFAULTS, ...options });
}

class RedisBackend implements LockBackend {
  readonly type = 'redis' as const;
  readonly capabilities = CAPABILITIES;
  readonly id: string;
  private readonly prefix: string;
  private readonly instance = randomId(9);
  private readonly owner: OwnerInfo;
  private readonly channel: string;
  private readonly eventsChannel: string;
  private readonly indexKey: string;
  private readonly isCluster: boolean;
  private readonly match: string[];
  private readonly cmd: Conn & ScriptedConn;
  private sub: Conn | undefined;
  private subReady: Promise<void> | undefined;
  private readonly pending = new Map<string, PendingWait>();
  private readonly held = new Map<string, ManagedHandle>(); // `${name}\n${fence}` -> handle
  private readonly watchers = new Set<(c: LockChange) => void>();
  private sweepTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly config: RedisBackendConfig,
    private readonly opts: RedisBackendOptions,
  ) {
    this.id = config.id;
    this.prefix = config.prefix ?? 'lockdeck';
    this.owner = makeOwner(this.instance);
    this.channel = `${this.prefix}:proc:${this.instance}`;
    this.eventsChannel = `${this.prefix}:events`;
    this.indexKey = `${this.prefix}:index`;
    this.isCluster = !!config.cluster;
    this.match = (config.match ?? [...DEFAULT_MATCH]).map(validateMatchGlob);
    this.cmd = this.connect() as Conn & ScriptedConn;
    this.cmd.on('error', () => undefined); // surfaced per call; ioredis reconnects by itself
    const define = (name: keyof ScriptedConn, lua: string) => this.cmd.defineCommand(name, { numberOfKeys: 5, lua });
    define('ldAcquire', ACQUIRE);
    define('ldRelease', RELEASE);
    define('ldExtend', EXTEND);
    define('ldCancel', CANCEL);
    define('ldForce', FORCE);
  }

  private connect(): Conn {
    const base: RedisOptions = {
      lazyConnect: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: 1,
      commandTimeout: this.opts.commandTimeoutMs,
      connectTimeout: this.opts.commandTimeoutMs,
      // Back off to at most 2 s between reconnects: a down server recovers by itself.
      retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
      password: this.config.password,
      ...this.opts.redisOptions,
    };
    if (this.config.sentinel) {
      const sentinels = this.config.sentinel.sentinels.map((s) => {
        const [host, port] = s.split(':');
        return { host: host!, port: Number(port) };
      });
      return new Redis({ ...base, sentinels, name: this.config.sentinel.name });
    }
    if (this.config.cluster) {
      return new Cluster([this.config.url!], { redisOptions: base, scaleReads: 'master' });
    }
    return new Redis(this.config.url!, base);
  }

  private keys(name: string): string[] {
    const base = `${this.prefix}:{${name}}`;
    // In Cluster mode the index is in another slot: pass a same-slot stand-in the scripts ignore.
    return [base, `${base}:fence`, `${base}:q`, `${base}:w`, this.isCluster ? `${base}:noindex` : this.indexKey];
  }

  private get useIndex(): string {
    return this.isCluster ? '0' : '1';
  }

  // ---------------------------------------------------------------- client face

  async tryAcquire(name: string, opts?: Partial<Omit<AcquireOptions, 'waitMs'>>): Promise<LockHandle | null> {
    try {
      return await this.acquire(name, { ...opts, waitMs: 0 });
    } catch (err) {
      if (err instanceof AcquireTimeoutError) return null;
      throw err;
    }
  }

  async acquire(name: string, partial?: Partial<AcquireOptions>): Promise<LockHandle> {
    validateName(name);
    const o = resolveAcquireOptions(partial);
    o.signal?.throwIfAborted();
    const token = randomId();
    const owner = o.owner ? makeOwner(this.instance, o.owner) : this.owner;
    const labels = JSON.stringify(o.labels ?? {});
    const waiting = o.waitMs > 0;
    const waiterId = waiting ? randomId(9) : '';
    const startedAt = performance.now();
    const deadline = o.waitMs === Infinity ? Infinity : startedAt + o.waitMs;
    const waitLeaseMs = this.opts.recheckMs * 3;

    let granted: { fence: string; exp: number; lease: number; at: number } | undefined;
    let wake: (() => void) | undefined;
    if (!waiting) {
      // Holders listen on our channel too, so a forced release reaches them at once. Not awaited:
      // until it is up, renewal failure is the (slower) way they learn.
      void this.ensureSubscribed().catch(() => undefined);
    } else {
      // Subscribe before queueing, so a grant published right after we join cannot be missed.
      await this.ensureSubscribed();
      this.pending.set(waiterId, {
        name,
        onGrant: (fence, exp, lease) => {
          granted = { fence, exp, lease, at: performance.now() };
          wake?.();
        },
      });
    }
    try {
      for (;;) {
        const sent = performance.now();
        const r = (await this.call(() =>
          this.cmd.ldAcquire(
            ...this.keys(name),
            name, token, o.ttlMs, owner.id, owner.host, owner.pid, owner.instance, this.channel, labels,
            waiterId, waitLeaseMs, this.useIndex, this.eventsChannel, this.opts.handoffTtlMs,
          ),
        )) as [number, string | number, string | number, number, number];
        if (r[0] === 1) {
          const lease = Number(r[4]);
          return this.makeHandle(name, token, owner, o, String(r[1]), Number(r[2]), lease > 0 ? lease : o.ttlMs, sent);
        }
        if (granted) break;
        if (!waiting) throw new AcquireTimeoutError(name, 0);
        const now = performance.now();
        if (now >= deadline) throw new AcquireTimeoutError(name, Math.round(now - startedAt));
        const pttl = Number(r[1]);
        // Re-check when the holder's lease runs out (it may have died), at most every recheckMs.
        const recheckIn = Math.min(pttl > 0 ? pttl + 1 : this.opts.recheckMs, this.opts.recheckMs, deadline - now);
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(done, Math.max(0, recheckIn));
          const onAbort = () => done(abortError(o.signal!));
          function done(err?: unknown) {
            clearTimeout(timer);
            o.signal?.removeEventListener('abort', onAbort);
            wake = undefined;
            if (err) reject(err);
            else resolve();
          }
          wake = () => done();
          o.signal?.addEventListener('abort', onAbort, { once: true });
          if (granted) done();
        });
        if (granted) break;
      }
      const g = granted!;
      return this.makeHandle(name, token, owner, o, g.fence, g.exp, g.lease, g.at);
    } catch (err) {
      if (waiting && !granted) {
        // Leave the queue; if a release handed us the lock meanwhile, CANCEL passes it on.
        await this.call(() =>
          this.cmd.ldCancel(...this.keys(name), name, waiterId, token, this.useIndex, this.eventsChannel, this.opts.handoffTtlMs),
        ).catch(() => undefined);
      }
      throw err;
    } finally {
      if (waiting) this.pending.delete(waiterId);
    }
  }

  private makeHandle(
    name: string, token: string, owner: OwnerInfo, o: AcquireOptions,
    fence: string, exp: number, leaseMs: number, leaseStart: number,
  ): ManagedHandle {
    const k = this.keys(name);
    const handle: ManagedHandle = new ManagedHandle({
      backend: this.id,
      name,
      fence,
      owner,
      ttlMs: o.ttlMs,
      leaseMs,
      leaseStart,
      expiresAt: exp,
      autoRenew: o.autoRenew ?? true,
      onDone: (h) => this.held.delete(`${name}\n${h.fence}`),
      ops: {
        extend: async (ttlMs) => {
          const r = (await this.call(() => this.cmd.ldExtend(...k, name, token, ttlMs, this.useIndex, this.eventsChannel))) as
            | [number, number]
            | 0;
          if (r === 0) return null;
          if (this.isCluster) void this.cmd.zadd(this.indexKey, r[0], name).catch(() => undefined);
          return Number(r[0]);
        },
        release: async () => {
          await this.call(() => this.cmd.ldRelease(...k, name, token, this.useIndex, this.eventsChannel, this.opts.handoffTtlMs));
          if (this.isCluster) void this.cmd.zrem(this.indexKey, name).catch(() => undefined);
        },
      },
    });
    this.held.set(`${name}\n${fence}`, handle);
    if (this.isCluster) void this.cmd.zadd(this.indexKey, exp, name).catch(() => undefined);
    return handle;
  }

  /** One subscriber connection per instance: our process channel (grants, lost locks) and events. */
  private ensureSubscribed(): Promise<void> {
    this.subReady ??= (async () => {
      const sub = this.connect();
      sub.on('error', () => undefined);
      sub.on('message', (channel: string, message: string) => this.onMessage(channel, message));
      this.sub = sub;
      await sub.subscribe(this.channel);
    })().catch((err) => {
      this.subReady = undefined;
      const s = this.sub;
      this.sub = undefined;
      s?.disconnect();
      throw new BackendUnavailableError(`redis "${this.id}": cannot subscribe: ${String(err)}`, { cause: err });
    });
    return this.subReady;
  }

  private onMessage(channel: string, message: string): void {
    if (channel === this.channel) {
      if (message.startsWith('g|')) {
        const [, waiterId, fence, exp, lease] = message.split('|');
        this.pending.get(waiterId!)?.onGrant(fence!, Number(exp), Number(lease));
      } else if (message.startsWith('l|')) {
        const i = message.indexOf('|', 2);
        const fence = message.slice(2, i);
        const name = message.slice(i + 1);
        this.held.get(`${name}\n${fence}`)?.markLost('forced');
      }
    } else if (channel === this.eventsChannel) {
      void this.onEvent(message);
    }
  }

  // ---------------------------------------------------------------- inspector face

  async ping(): Promise<number> {
    const t = performance.now();
    await this.call(() => this.cmd.ping());
    return performance.now() - t;
  }

  /** The server's clock, so TTLs are shown from the same clock that expires the locks. */
  private async serverNow(): Promise<number> {
    const [s, us] = (await this.call(() => this.cmd.time())) as [string | number, string | number];
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }

  async list(filter: ListFilter = {}): Promise<LockInfo[]> {
    const limit = Math.max(1, Math.min(filter.limit ?? 10_000, 100_000));
    const q = filter.q?.toLowerCase();
    const now = await this.serverNow();
    // Entries whose expiry passed a minute ago are certainly stale: a live lock's renewal moves its
    // score forward, and releases remove theirs.
    await this.call(() => this.cmd.zremrangebyscore(this.indexKey, '-inf', `(${now - 60_000}`));
    let names = (await this.call(() => this.cmd.zrange(this.indexKey, 0, -1))) as string[];
    if (q) names = names.filter((n) => n.toLowerCase().includes(q));
    const own = (await this.readOwn(names.slice(0, limit), now)).filter((l): l is LockInfo => l !== null);
    if (own.length >= limit) return own;
    const foreign = await scanForeign(this.cmd, {
      backendId: this.id,
      match: this.match,
      ownPrefix: this.prefix,
      q: filter.q,
      limit: limit - own.length,
      now,
    });
    return [...own, ...foreign.locks];
  }

  async get(key: string): Promise<LockInfo | null> {
    const now = await this.serverNow();
    const [own] = await this.readOwn([key], now);
    if (own) return own;
    return inspectForeignKey(this.cmd, this.id, key, now);
  }

  /** Reads our own locks (hash, queue, waiter entries) for many names in one pipeline. */
  private async readOwn(names: string[], now: number): Promise<(LockInfo | null)[]> {
    if (names.length === 0) return [];
    const pipe = this.cmd.pipeline();
    for (const n of names) {
      const [lock, , q, w] = this.keys(n);
      pipe.hgetall(lock!).pttl(lock!).zrange(q!, 0, -1, 'WITHSCORES').hgetall(w!);
    }
    const res = await this.call(() => pipe.exec());
    const out: (LockInfo | null)[] = [];
    for (let i = 0; i < names.length; i++) {
      const [hErr, h] = res?.[i * 4] ?? [];
      if (hErr) throw hErr;
      const fields = h as Record<string, string>;
      if (!fields || !fields.token) {
        out.push(null);
        continue;
      }
      const pttl = Number(res?.[i * 4 + 1]?.[1]);
      const queue = (res?.[i * 4 + 2]?.[1] ?? []) as string[];
      const entries = (res?.[i * 4 + 3]?.[1] ?? {}) as Record<string, string>;
      out.push(this.toInfo(names[i]!, fields, pttl, now, waitersFrom(queue, entries, now)));
    }
    return out;
  }

  private toInfo(name: string, f: Record<string, string>, pttl: number, now: number, waiters: WaiterInfo[]): LockInfo {
    const acquiredAt = Number(f.acq);
    const expiresAt = pttl > 0 ? now + pttl : Number(f.exp);
    const ttl = Number(f.ttl);
    let labels: Record<string, string> = {};
    try {
      labels = JSON.parse(f.labels ?? '{}') as Record<string, string>;
    } catch {
      labels = {};
    }
    const owner = f.owner ?? null;
    return {
      backend: this.id,
      key: name,
      format: 'lockdeck',
      kind: 'mutex',
      owner,
      holders: [{ owner, fence: f.fence ?? null, acquiredAt }],
      fence: f.fence ?? null,
      acquiredAt,
      expiresAt,
      ttlMs: expiresAt - now,
      waiters,
      health: lockHealth({ now, expiresAt, ttlMs: ttl }),
      meta: {
        host: f.host ?? null,
        pid: f.pid ? Number(f.pid) : null,
        instance: f.inst ?? null,
        leaseMs: ttl,
        tokenHash: f.token ? tokenHash(f.token) : null,
      },
      labels,
    };
  }

  async forceRelease(key: string, expect: ForceReleaseExpectation = {}): Promise<ForceReleaseResult> {
    validateName(key);
    const r = (await this.call(() =>
      this.cmd.ldForce(
        ...this.keys(key), key, expect.fence ?? '', expect.owner ?? '', this.useIndex, this.eventsChannel, this.opts.handoffTtlMs,
      ),
    )) as string[];
    if (r[0] === 'missing') {
      const now = await this.serverNow();
      return forceReleaseForeign(this.cmd, this.id, key, expect, now);
    }
    const f: Record<string, string> = {};
    for (let i = 1; i < r.length; i += 2) f[r[i]!] = r[i + 1]!;
    if (this.isCluster && r[0] === 'released') void this.cmd.zrem(this.indexKey, key).catch(() => undefined);
    const lock = this.toInfo(key, f, Number(f.pttl), Number(f.now), []);
    return { status: r[0] === 'released' ? 'released' : 'changed', lock };
  }

  watch(onChange: (change: LockChange) => void): Unsubscribe {
    this.watchers.add(onChange);
    if (this.watchers.size === 1) {
      void this.ensureSubscribed()
        .then(() => this.sub?.subscribe(this.eventsChannel))
        .catch(() => undefined);
      this.scheduleSweep(0);
    }
    return () => {
      this.watchers.delete(onChange);
      if (this.watchers.size === 0) {
        clearTimeout(this.sweepTimer);
        void this.sub?.unsubscribe(this.eventsChannel).catch(() => undefined);
      }
    };
  }

  private emit(change: LockChange): void {
    for (const w of this.watchers) {
      try {
        w(change);
      } catch {
        // A watcher's bug must not stop the others.
      }
    }
  }

  private async onEvent(message: string): Promise<void> {
    let ev: { type: string; key: string; at: number; fence?: string; owner?: string };
    try {
      ev = JSON.parse(message) as typeof ev;
    } catch {
      return;
    }
    if (ev.type === 'acquired' || ev.type === 'renewed') {
      const lock = await this.get(ev.key).catch(() => null);
      this.emit({ type: ev.type === 'acquired' ? 'acquired' : 'changed', backend: this.id, key: ev.key, lock, at: ev.at });
      if (lock?.expiresAt) this.scheduleSweep(Math.max(0, lock.expiresAt - ev.at));
    } else if (ev.type === 'released' || ev.type === 'forced') {
      this.emit({ type: ev.type, backend: this.id, key: ev.key, lock: null, at: ev.at });
    }
  }

  /**
   * Our locks expire silently (Redis publishes no event unless keyspace notifications are on), so
   * the watch sweeps the index at the earliest expiry it knows, and at least every few seconds.
   */
  private scheduleSweep(inMs: number): void {
    const at = Date.now() + inMs;
    if (this.sweepTimer && this.nextSweepAt <= at) return;
    clearTimeout(this.sweepTimer);
    this.nextSweepAt = at;
    this.sweepTimer = setTimeout(() => void this.sweep(), Math.min(inMs + 5, 5000));
    this.sweepTimer.unref?.();
  }
  private nextSweepAt = 0;

  private async sweep(): Promise<void> {
    this.sweepTimer = undefined;
    if (this.watchers.size === 0 || this.closed) return;
    try {
      const now = await this.serverNow();
      const due = (await this.call(() => this.cmd.zrangebyscore(this.indexKey, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 500))) as string[];
      const names = due.filter((_, i) => i % 2 === 0);
      const infos = await this.readOwn(names, now);
      const gone = names.filter((_, i) => infos[i] === null);
      if (gone.length) {
        await this.call(() => this.cmd.zrem(this.indexKey, ...gone));
        for (const key of gone) this.emit({ type: 'expired', backend: this.id, key, lock: null, at: now });
      }
      const next = (await this.call(() => this.cmd.zrange(this.indexKey, 0, 0, 'WITHSCORES'))) as string[];
      this.scheduleSweep(next[1] ? Math.max(0, Number(next[1]) - now) : 5000);
    } catch {
      this.scheduleSweep(2000);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.sweepTimer);
    await Promise.allSettled([...this.held.values()].map((h) => h.release()));
    this.sub?.disconnect();
    this.cmd.disconnect();
  }

  /** Runs a command, turning connection failures into BackendUnavailableError. */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof Error && /ECONNREFUSED|ETIMEDOUT|Command timed out|Connection is closed|max retries|ENOTFOUND|EHOSTUNREACH/i.test(err.message)) {
        throw new BackendUnavailableError(`redis "${this.id}": ${err.message}`, { cause: err });
      }
      throw err;
    }
  }
}

/** The live waiters of one lock, oldest first. Entries whose lease ran out are dead waiters. */
function waitersFrom(queue: string[], entries: Record<string, string>, now: number): WaiterInfo[] {
  const out: WaiterInfo[] = [];
  for (let i = 0; i < queue.length; i += 2) {
    const raw = entries[queue[i]!];
    if (!raw) continue;
    try {
      const e = JSON.parse(raw) as { o?: string; lu?: number };
      if ((e.lu ?? 0) < now) continue;
      out.push({ owner: e.o ?? null, since: Math.floor(Number(queue[i + 1]) / 1000) });
    } catch {
      continue;
    }
  }
  return out;
}
