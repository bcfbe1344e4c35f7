/**
 * One Redis deployment (a server, a Sentinel master set or a Cluster) speaking lockdeck's layout:
 * the connection, the typed script calls, and reading our locks back. The single-server backend
 * uses one node; the Redlock backend uses one per independent master.
 */
import { Cluster, Redis, ReplyError, type RedisOptions } from 'ioredis';

import { BackendUnavailableError, ReplicationError } from '../../locks/errors';
import { lockHealth } from '../../locks/health';
import type { LockInfo, OwnerInfo, WaiterInfo } from '../../locks/types';
import { tokenHash } from '../../locks/util';
import { ACQUIRE, CANCEL, EXTEND, FORCE, RAISE_FENCE, RELEASE } from './scripts';
import { readOwnScripted } from './read-own';

export type Conn = Redis | Cluster;

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;
interface ScriptedConn {
  ldAcquire: ScriptFn;
  ldRelease: ScriptFn;
  ldExtend: ScriptFn;
  ldCancel: ScriptFn;
  ldForce: ScriptFn;
  ldRaiseFence: ScriptFn;
}

export interface NodeTarget {
  url?: string;
  cluster?: boolean;
  sentinel?: { name: string; sentinels: string[] };
  password?: string;
}

export interface NodeOptions {
  prefix: string;
  commandTimeoutMs: number;
  redisOptions: RedisOptions;
  /** Called for every pub/sub message on the subscriber connection. */
  onMessage(channel: string, message: string): void;
  /** Called for every pattern message (keyspace notifications). */
  onPatternMessage?(pattern: string, channel: string, message: string): void;
  /** Replicated writes (config `waitReplicas`): see {@link ReplicaWait}. */
  wait?: ReplicaWait;
}

/**
 * `WAIT replicas timeoutMs` after our writes (Redisson `checkLockSyncedSlaves`). WAIT counts the
 * replicas that acknowledged the *calling connection's* last propagated write: Redis sets a
 * client's offset only from its own commands (redis/redis src/server.c, call():
 * `if (old_master_repl_offset != server.master_repl_offset) c->woff = server.master_repl_offset`,
 * read by waitCommand in replication.c). So WAIT always goes in the same pipeline as the write it
 * confirms: one write to one socket, hence the same connection and, in a Cluster, the node that
 * owns the key's slot (ioredis routes a pipeline by its keyed commands; a lone keyless WAIT would
 * go to a random node, where it would confirm nothing). A WAIT sent later on its own could also
 * land on a new connection after a reconnect or failover, where the offset is 0 and WAIT answers
 * "all replicas" at once.
 */
export interface ReplicaWait {
  replicas: number;
  timeoutMs: number;
}

export interface AcquireArgs {
  name: string;
  token: string;
  ttlMs: number;
  owner: OwnerInfo;
  /** Our process channel: grants and lost-lock notices come here. */
  channel: string;
  labels: string;
  /** '' for a single attempt that does not join the queue. */
  waiterId: string;
  waitLeaseMs: number;
  /** 0 disables server-side handoff (Redlock mode). */
  handoffTtlMs: number;
  /** How long the caller has waited so far, for the `acquired` event's statistics. */
  waitedMs: number;
}

export type AcquireResult =
  | {
      ok: true; fence: string; expiresAt: number; now: number; leaseMs: number;
      /** False when a release handed us the lock before this call (the releaser wrote the grant). */
      grantedHere: boolean;
      /** Replicas that acknowledged this call's grant (with `wait`, when grantedHere). */
      acked?: number;
    }
  | { ok: false; pttl: number; now: number; position: number };

export type ForceOutcome =
  | { status: 'missing' }
  | { status: 'changed' | 'released'; fields: Record<string, string> };

const UNAVAILABLE = /ECONNREFUSED|ETIMEDOUT|Command timed out|Connection is closed|max retries|ENOTFOUND|EHOSTUNREACH|Stream isn't writeable|All sentinels are unreachable|Failed to refresh slots cache/i;

export class RedisNode {
  readonly cmd: Conn & ScriptedConn;
  private sub: Conn | undefined;
  private subscribed = new Map<string, Promise<unknown>>();
  readonly isCluster: boolean;
  private readonly prefix: string;
  readonly indexKey: string;
  readonly eventsChannel: string;

  constructor(
    readonly label: string,
    private readonly target: NodeTarget,
    private readonly opts: NodeOptions,
  ) {
    this.prefix = opts.prefix;
    this.indexKey = `${this.prefix}:index`;
    this.eventsChannel = `${this.prefix}:events`;
    this.isCluster = !!target.cluster;
    this.cmd = this.connect() as Conn & ScriptedConn;
    this.cmd.on('error', () => undefined); // surfaced per call; ioredis reconnects by itself
    const define = (name: keyof ScriptedConn, lua: string) => this.cmd.defineCommand(name, { numberOfKeys: 5, lua });
    define('ldAcquire', ACQUIRE);
    define('ldRelease', RELEASE);
    define('ldExtend', EXTEND);
    define('ldCancel', CANCEL);
    define('ldForce', FORCE);
    define('ldRaiseFence', RAISE_FENCE);
  }

  private connect(): Conn {
    const base: RedisOptions = {
      enableOfflineQueue: true,
      maxRetriesPerRequest: 1,
      commandTimeout: this.opts.commandTimeoutMs,
      connectTimeout: this.opts.commandTimeoutMs,
      // Back off to at most 500 ms between reconnects: a server that comes back is used again
      // (and its subscriptions restored, so watchers and waiters hear it) within half a second,
      // for the price of two connection attempts a second while it is down.
      retryStrategy: (times) => Math.min(50 * 2 ** times, 500),
      password: this.target.password,
      ...this.opts.redisOptions,
    };
    if (this.target.sentinel) {
      const sentinels = this.target.sentinel.sentinels.map((s) => {
        const [host, port] = s.split(':');
        return { host: host!, port: Number(port) };
      });
      return new Redis({ ...base, sentinels, name: this.target.sentinel.name });
    }
    if (this.target.cluster) {
      return new Cluster([this.target.url!], { redisOptions: base, scaleReads: 'master' });
    }
    return new Redis(this.target.url!, base);
  }

  /** keys() results by name (bounded): built once per name, not on every acquire and release. */
  private readonly keyCache = new Map<string, readonly string[]>();

  /** KEYS of every script for lock `name`; all share the `{name}` hash tag, so one slot. */
  keys(name: string): readonly string[] {
    let k = this.keyCache.get(name);
    if (k) return k;
    const base = `${this.prefix}:{${name}}`;
    // In Cluster mode the index is in another slot: pass a same-slot stand-in the scripts ignore.
    k = [base, `${base}:fence`, `${base}:q`, `${base}:w`, this.isCluster ? `${base}:noindex` : this.indexKey];
    if (this.keyCache.size >= 4096) this.keyCache.delete(this.keyCache.keys().next().value!);
    this.keyCache.set(name, k);
    return k;
  }

  private get useIndex(): string {
    return this.isCluster ? '0' : '1';
  }

  /** Beside the scripts in Cluster mode (the index is in another slot); a hint either way. */
  private indexHint(op: 'add' | 'rem', name: string, score = 0): void {
    if (!this.isCluster) return;
    const p = op === 'add' ? this.cmd.zadd(this.indexKey, score, name) : this.cmd.zrem(this.indexKey, name);
    void p.catch(() => undefined);
  }

  async acquire(a: AcquireArgs): Promise<AcquireResult> {
    const args = [
      ...this.keys(a.name),
      a.name, a.token, a.ttlMs, a.owner.id, a.owner.host, a.owner.pid, a.owner.instance, a.channel, a.labels,
      a.waiterId, a.waitLeaseMs, this.useIndex, this.eventsChannel, a.handoffTtlMs, Math.round(a.waitedMs),
    ];
    let r: [number, string | number, string | number, number, number, number?];
    let acked: number | undefined;
    if (this.opts.wait) {
      // Same pipeline, so WAIT confirms this script's writes (see ReplicaWait). A refused attempt
      // waits too (for its queue entry): cheap while replicas keep up, and it keeps one round trip.
      const [res, n] = await this.withWait((p) => p.ldAcquire(...args));
      r = res[0] as typeof r;
      acked = n;
    } else {
      r = (await this.call(() => this.cmd.ldAcquire(...args))) as typeof r;
    }
    if (r[0] === 1) {
      const expiresAt = Number(r[2]);
      this.indexHint('add', a.name, expiresAt);
      const grantedHere = r[5] !== 0;
      return { ok: true, fence: String(r[1]), expiresAt, now: Number(r[3]), leaseMs: Number(r[4]), grantedHere, ...(grantedHere && acked !== undefined ? { acked } : {}) };
    }
    return { ok: false, pttl: Number(r[1]), now: Number(r[2]), position: Number(r[3]) };
  }

  /**
   * Runs `add`'s keyed commands and then `WAIT` in one pipeline (see ReplicaWait). Resolves to the
   * commands' replies and the number of replicas that acknowledged; a command's error rejects.
   */
  private async withWait(add: (p: PipeWithScripts) => void): Promise<[unknown[], number]> {
    const w = this.opts.wait!;
    const pipe = this.cmd.pipeline() as unknown as PipeWithScripts;
    add(pipe);
    pipe.wait(w.replicas, w.timeoutMs);
    const res = await this.call(() => pipe.exec());
    if (!res) throw new BackendUnavailableError(`redis ${this.label}: Connection is closed (no pipeline reply)`);
    const out: unknown[] = [];
    for (const [err, v] of res) {
      if (err) await this.call(() => Promise.reject(err));
      out.push(v);
    }
    return [out.slice(0, -1), Number(out.at(-1))];
  }

  /**
   * Confirms a lock a release handed us (its grant was the releaser's write, which our WAIT would
   * not cover): an EXTEND by our token, a write on our connection that comes after the grant in
   * the primary's replication stream, then WAIT. Offsets only grow, so replicas that acknowledged
   * the EXTEND have the grant too. Also tops the short handoff lease up to `ttlMs`.
   * Null when the lock is not ours any more.
   */
  async confirmGrant(name: string, token: string, ttlMs: number): Promise<{ expiresAt: number; acked: number } | null> {
    const [[r], acked] = await this.withWait((p) => p.ldExtend(...this.keys(name), name, token, ttlMs, this.useIndex, this.eventsChannel));
    if (r === 0 || !Array.isArray(r)) return null;
    this.indexHint('add', name, Number(r[0]));
    return { expiresAt: Number(r[0]), acked };
  }

  /** Renewals asked for in the current tick, sent together at its end (see extend). */
  private extendBatch: PendingExtend[] | undefined;

  /**
   * Resolves to the new expiry, or null when the lock is not ours any more.
   *
   * Renewals asked for in the same tick go out as one pipeline (one write, one round trip): the
   * backend renews all of a process's due locks in one pass (base.ts, runRenewals), so N held
   * locks cost one round trip per TTL/3 instead of N (anchors §5.1 P8; Redisson batches its
   * watchdog the same way, `renewal/RenewalTask.java`). Each lock keeps its own EXTEND script and
   * compare-on-token, so batching changes no lock's safety.
   */
  extend(name: string, token: string, ttlMs: number): Promise<number | null> {
    return new Promise<number | null>((resolve, reject) => {
      if (!this.extendBatch) {
        this.extendBatch = [];
        queueMicrotask(() => this.flushExtends());
      }
      this.extendBatch.push({ name, token, ttlMs, resolve, reject });
    });
  }

  private flushExtends(): void {
    const batch = this.extendBatch ?? [];
    this.extendBatch = undefined;
    const done = (e: PendingExtend, r: unknown) => {
      if (r === 0 || !Array.isArray(r)) return e.resolve(null);
      this.indexHint('add', e.name, Number(r[0]));
      e.resolve(Number(r[0]));
    };
    const one = (e: PendingExtend) => this.cmd.ldExtend(...this.keys(e.name), e.name, e.token, e.ttlMs, this.useIndex, this.eventsChannel);
    const w = this.opts.wait;
    if (w) {
      // One WAIT per pipeline tick (per renewal in a Cluster, where a pipeline keeps to one slot).
      // A renewal the replicas did not confirm rejects (ReplicationError), as a transport error
      // does: the handle keeps the deadline of its last confirmed lease (the one a promoted replica
      // knows) and the backend retries soon; if replicas never catch up, the handle expires at that
      // deadline and signals it (lost: 'expired'). Resolving instead would let the holder run on
      // past the only lease a failover would keep.
      for (const group of this.isCluster ? batch.map((e) => [e]) : [batch]) {
        this.withWait((p) => {
          for (const e of group) p.ldExtend(...this.keys(e.name), e.name, e.token, e.ttlMs, this.useIndex, this.eventsChannel);
        }).then(
          ([res, acked]) =>
            group.forEach((e, i) => {
              const r = res[i];
              if (r !== 0 && Array.isArray(r) && acked < w.replicas) {
                e.reject(new ReplicationError(e.name, 'renew', acked, w.replicas, w.timeoutMs, 'the holder keeps its previous deadline'));
              } else done(e, r);
            }),
          (err: unknown) => group.forEach((e) => e.reject(err)),
        );
      }
      return;
    }
    // A Cluster pipeline must stay within one slot: there, each renewal is its own command (still
    // sent in the same tick).
    if (batch.length === 1 || this.isCluster) {
      for (const e of batch) this.call(() => one(e)).then((r) => done(e, r), e.reject);
      return;
    }
    const pipe = this.cmd.pipeline() as unknown as { ldExtend: ScriptFn; exec(): Promise<[Error | null, unknown][] | null> };
    for (const e of batch) pipe.ldExtend(...this.keys(e.name), e.name, e.token, e.ttlMs, this.useIndex, this.eventsChannel);
    this.call(() => pipe.exec()).then(
      (res) =>
        batch.forEach((e, i) => {
          const [err, r] = res?.[i] ?? [new Error('Connection is closed (no pipeline reply)'), null];
          if (err) this.call(() => Promise.reject(err)).catch(e.reject);
          else done(e, r);
        }),
      (err: unknown) => batch.forEach((e) => e.reject(err)),
    );
  }

  /**
   * Compare-and-delete by token (or hand over to the next waiter). With `wait` (and `confirm`),
   * WAIT in the same pipeline, so that a handoff grant made by this release is on the replicas
   * before release() resolves. Fewer acknowledgements reject with ReplicationError *after* the
   * release took effect on the primary: nothing to undo, but the caller learns that a failover now
   * could bring the lock back (held by this token until its lease ends: a liveness cost only; the
   * next holder confirms its own grant, see base.ts). `confirm` false: giving back a grant that
   * failed its own WAIT (no second wait for replicas that just did not answer).
   */
  async release(name: string, token: string, handoffTtlMs: number, confirm = true): Promise<boolean> {
    const args = [...this.keys(name), name, token, this.useIndex, this.eventsChannel, handoffTtlMs];
    const w = this.opts.wait;
    if (w && confirm) {
      const [[r], acked] = await this.withWait((p) => p.ldRelease(...args));
      this.indexHint('rem', name);
      if (r === 1 && acked < w.replicas) {
        throw new ReplicationError(name, 'release', acked, w.replicas, w.timeoutMs, 'released on the primary, but a failover now could bring it back until its lease ends');
      }
      return r === 1;
    }
    const r = await this.call(() => this.cmd.ldRelease(...args));
    this.indexHint('rem', name);
    return r === 1;
  }

  async cancel(name: string, waiterId: string, token: string, handoffTtlMs: number): Promise<void> {
    await this.call(() => this.cmd.ldCancel(...this.keys(name), name, waiterId, token, this.useIndex, this.eventsChannel, handoffTtlMs));
  }

  async raiseFence(name: string, token: string, fence: string): Promise<boolean> {
    return (await this.call(() => this.cmd.ldRaiseFence(...this.keys(name), token, fence))) === 1;
  }

  async force(name: string, expect: { fence?: string; owner?: string }, handoffTtlMs: number): Promise<ForceOutcome> {
    const r = (await this.call(() =>
      this.cmd.ldForce(...this.keys(name), name, expect.fence ?? '', expect.owner ?? '', this.useIndex, this.eventsChannel, handoffTtlMs),
    )) as string[];
    if (r[0] === 'missing') return { status: 'missing' };
    const fields: Record<string, string> = {};
    for (let i = 1; i < r.length; i += 2) fields[r[i]!] = r[i + 1]!;
    if (r[0] === 'released') this.indexHint('rem', name);
    return { status: r[0] === 'released' ? 'released' : 'changed', fields };
  }

  async ping(): Promise<number> {
    const t = performance.now();
    await this.call(() => this.cmd.ping());
    return performance.now() - t;
  }

  /** The server's clock, so TTLs are shown from the same clock that expires the locks. */
  async serverNow(): Promise<number> {
    const [s, us] = (await this.call(() => this.cmd.time())) as [string | number, string | number];
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }

  /** Names in our index, after dropping entries that expired over a minute ago (certainly stale). */
  async indexedNames(now: number): Promise<string[]> {
    await this.call(() => this.cmd.zremrangebyscore(this.indexKey, '-inf', `(${now - 60_000}`));
    return (await this.call(() => this.cmd.zrange(this.indexKey, 0, -1))) as string[];
  }

  /** Index entries due to expire by `now`, and the next expiry after them (for the watch sweep). */
  async dueNames(now: number): Promise<{ due: string[]; next: number | null }> {
    const due = (await this.call(() => this.cmd.zrangebyscore(this.indexKey, '-inf', now, 'LIMIT', 0, 500))) as string[];
    const next = (await this.call(() => this.cmd.zrangebyscore(this.indexKey, `(${now}`, '+inf', 'WITHSCORES', 'LIMIT', 0, 1))) as string[];
    return { due, next: next[1] ? Number(next[1]) : null };
  }

  async dropFromIndex(names: string[]): Promise<void> {
    if (names.length) await this.call(() => this.cmd.zrem(this.indexKey, ...names));
  }

  /**
   * Reads our own locks (hash, queue, waiter entries) for many names: one read-only script call
   * per batch of names (read-own.ts), all sent at once, instead of four commands per lock.
   */
  async readOwn(names: string[], now: number): Promise<(OwnLock | null)[]> {
    if (names.length === 0) return [];
    const keysOf = (n: string): [string, string, string] => {
      const [lock, , q, w] = this.keys(n);
      return [lock!, q!, w!];
    };
    const raw = await this.call(() => readOwnScripted(this.cmd, names, keysOf, this.isCluster));
    return raw.map((r, i) =>
      r?.fields.token ? { name: names[i]!, fields: r.fields, pttl: r.pttl, now, waiters: waitersFrom(r.queue, r.entries, now) } : null,
    );
  }

  private subscriber(): Conn {
    if (!this.sub) {
      this.sub = this.connect();
      this.sub.on('error', () => undefined);
      this.sub.on('message', (ch: string, msg: string) => this.opts.onMessage(ch, msg));
      this.sub.on('pmessage', (pattern: string, ch: string, msg: string) => this.opts.onPatternMessage?.(pattern, ch, msg));
    }
    return this.sub;
  }

  /**
   * The database's keyspace-notification channel prefix, when the server publishes the events a
   * lock watch needs (K = keyspace channel; $ string and h hash writes, g generic DEL/EXPIRE,
   * x expired; A = all of them). Null when they are off, or CONFIG is forbidden (managed Redis):
   * we never turn them on ourselves, since they cost the server CPU (anchors §2.2).
   */
  /**
   * The keyspace-event channel prefix when the server emits the events foreign-lock watching
   * needs, else null (events off, or CONFIG refused, as managed Redis services do). Rejects when
   * the server could not be asked (down, timed out): the caller tries again.
   */
  async keyspaceChannelPrefix(): Promise<string | null> {
    if (this.isCluster) return null; // events are per node in a Cluster; the console reconciles instead
    let flags: string;
    try {
      [, flags] = (await this.cmd.config('GET', 'notify-keyspace-events')) as [string, string];
    } catch (err) {
      if (err instanceof ReplyError) return null; // the server answered: CONFIG is not for us
      throw err;
    }
    const has = (c: string) => flags.includes(c) || (flags.includes('A') && 'g$lshzxetm'.includes(c));
    if (!flags.includes('K') || !has('g') || !has('$') || !has('h') || !has('x')) return null;
    const db = (this.cmd as Redis).options?.db ?? 0;
    return `__keyspace@${db}__:`;
  }

  psubscribe(pattern: string): Promise<void> {
    return this.subscriber()
      .psubscribe(pattern)
      .then(() => undefined);
  }

  async punsubscribe(pattern: string): Promise<void> {
    await this.sub?.punsubscribe(pattern).catch(() => undefined);
  }

  /** Subscribes the (lazily made) subscriber connection to `channel`; once per channel. */
  subscribe(channel: string): Promise<void> {
    let p = this.subscribed.get(channel);
    if (!p) {
      p = this.subscriber().subscribe(channel).catch((err: unknown) => {
        this.subscribed.delete(channel);
        throw new BackendUnavailableError(`redis ${this.label}: cannot subscribe: ${String(err)}`, { cause: err });
      });
      this.subscribed.set(channel, p);
    }
    return p.then(() => undefined);
  }

  async unsubscribe(channel: string): Promise<void> {
    if (!this.subscribed.delete(channel)) return;
    await this.sub?.unsubscribe(channel).catch(() => undefined);
  }

  close(): void {
    this.sub?.disconnect();
    this.cmd.disconnect();
  }

  /** Runs a command, turning connection failures into BackendUnavailableError. */
  /** Runs one Redis call; a lost or refused connection becomes BackendUnavailableError. (No async frame: hot path.) */
  call<T>(fn: () => Promise<T>): Promise<T> {
    let p: Promise<T>;
    try {
      p = fn();
    } catch (err) {
      return Promise.reject(this.unavailable(err));
    }
    return p.catch(this.rethrow);
  }

  private readonly rethrow = (err: unknown): never => {
    throw this.unavailable(err);
  };

  private unavailable(err: unknown): unknown {
    if (err instanceof Error && UNAVAILABLE.test(err.message)) return new BackendUnavailableError(`redis ${this.label}: ${err.message}`, { cause: err });
    return err;
  }
}

/** An ioredis pipeline with our scripts (defineCommand adds them to pipelines too). */
interface PipeWithScripts {
  ldAcquire(...args: (string | number)[]): PipeWithScripts;
  ldExtend(...args: (string | number)[]): PipeWithScripts;
  ldRelease(...args: (string | number)[]): PipeWithScripts;
  wait(replicas: number, timeoutMs: number): PipeWithScripts;
  exec(): Promise<[Error | null, unknown][] | null>;
}

interface PendingExtend {
  name: string;
  token: string;
  ttlMs: number;
  resolve(expiresAt: number | null): void;
  reject(err: unknown): void;
}

/** Our lock as read from one node. */
export interface OwnLock {
  name: string;
  fields: Record<string, string>;
  pttl: number;
  now: number;
  waiters: WaiterInfo[];
}

/** Normalises our own lock to the console's LockInfo. Never includes the token itself. */
export function ownLockInfo(backend: string, l: OwnLock, extraMeta: Record<string, string | number | boolean | null> = {}): LockInfo {
  const f = l.fields;
  const acquiredAt = f.acq ? Number(f.acq) : null;
  const expiresAt = l.pttl > 0 ? l.now + l.pttl : f.exp ? Number(f.exp) : null;
  const ttl = Number(f.ttl);
  let labels: Record<string, string> = {};
  try {
    labels = JSON.parse(f.labels ?? '{}') as Record<string, string>;
  } catch {
    labels = {};
  }
  const owner = f.owner ?? null;
  const fence = f.fence ?? null;
  return {
    backend,
    key: l.name,
    format: 'lockdeck',
    kind: 'mutex',
    owner,
    holders: [{ owner, fence, acquiredAt }],
    fence,
    acquiredAt,
    expiresAt,
    ttlMs: expiresAt === null ? null : expiresAt - l.now,
    waiters: l.waiters,
    health: lockHealth({ now: l.now, expiresAt, ttlMs: ttl }),
    meta: {
      host: f.host ?? null,
      pid: f.pid ? Number(f.pid) : null,
      instance: f.inst ?? null,
      leaseMs: Number.isFinite(ttl) ? ttl : null,
      tokenHash: f.token ? tokenHash(f.token) : null,
      ...extraMeta,
    },
    labels,
  };
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
