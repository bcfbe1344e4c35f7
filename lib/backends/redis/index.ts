/**
 * The Redis backend: lockdeck's own locks (client + inspector) on one Redis server, a Sentinel
 * master set or a Cluster (this file), or a Redlock quorum over independent masters
 * (`redlock.ts`), plus the foreign layouts that `formats.ts` recognises.
 *
 * One round trip per acquire, release and renewal (a Lua script each, see scripts.ts). Waiting is
 * push-based: each backend instance subscribes once to its own channel, and a release hands the
 * lock to the oldest waiter on the server and publishes "granted" there. A bounded re-check (at
 * the holder's expiry, at most every `recheckMs`) covers a lost message or a holder that died.
 */
import type { LeaseOps } from '../../locks/handle';
import type { AcquireOptions, Capabilities, ForceReleaseExpectation, ForceReleaseResult, LockBackend, LockInfo, OwnerInfo, RunStoreProvider } from '../../locks/types';
import type { RedisBackendConfig } from '../config';
import { DEFAULTS, RedisBackendBase, type Attempt, type RedisBackendOptions } from './base';
import { ownLockInfo, type RedisNode } from './node';
import { RedlockBackend } from './redlock';

export type { RedisBackendOptions } from './base';

/**
 * Creates the backend. Connections open in the background; `ping()` tells whether Redis answers.
 *
 * `config.waitReplicas` (+ `waitTimeoutMs`, default 1000): replicated locks on a Sentinel set or a
 * Cluster with replicas, as Redisson's `checkLockSyncedSlaves`. Every grant, renewal and release
 * is followed by `WAIT` on its connection (base.ts confirmGrant, node.ts ReplicaWait); an acquire
 * whose grant fewer replicas acknowledged gives the lock back and throws ReplicationError. It
 * narrows, not closes, the failover window: WAIT does not make Redis replication synchronous (a
 * replica that acknowledged may still not be the one promoted). Refused for Redlock (`urls`).
 */
export function createRedisBackend(config: RedisBackendConfig, options: Partial<RedisBackendOptions> = {}): LockBackend & RunStoreProvider {
  const opts = { ...DEFAULTS, ...options };
  if (config.urls) {
    return new RedlockBackend(config, opts);
  }
  return new SingleRedisBackend(config, opts);
}

const SINGLE_CAPABILITIES: Capabilities = Object.freeze({
  fencing: true,
  ttl: true,
  waiters: true,
  fifo: true,
  pushWatch: true,
  notifiesHolderOnForce: true,
  telemetry: true,
});

/** One server, a Sentinel master set, or a Cluster: server-side FIFO handoff. */
class SingleRedisBackend extends RedisBackendBase {
  readonly capabilities = SINGLE_CAPABILITIES;
  protected readonly nodes: RedisNode[];
  private readonly node: RedisNode;

  constructor(config: RedisBackendConfig, opts: RedisBackendOptions) {
    super(config, opts);
    this.node = this.makeNode(config.id, config);
    this.nodes = [this.node];
  }

  protected waiterSubscriptions(): Promise<void> {
    return this.subscribeProcessChannel();
  }

  protected async attempt(name: string, token: string, owner: OwnerInfo, o: AcquireOptions, labels: string, waiterId: string, waitedMs: number): Promise<Attempt> {
    const leaseStart = performance.now();
    const r = await this.node.acquire({
      name, token, ttlMs: o.ttlMs, owner, channel: this.channel, labels, waiterId,
      waitLeaseMs: this.opts.recheckMs * 3,
      handoffTtlMs: this.opts.handoffTtlMs,
      waitedMs,
    });
    if (r.ok) {
      // `acked` only for a grant this call wrote; a lock handed to us earlier is confirmed by base.ts.
      return { ok: true, fence: r.fence, expiresAt: r.expiresAt, leaseMs: r.leaseMs > 0 ? r.leaseMs : o.ttlMs, leaseStart, ...(r.grantedHere && r.acked !== undefined ? { acked: r.acked } : {}) };
    }
    // Re-check when the holder's lease runs out (it may have died without releasing).
    return { ok: false, retryInMs: r.pttl > 0 ? r.pttl + 1 : this.opts.recheckMs, clock: { serverMs: r.now, sentAt: leaseStart } };
  }

  protected cancel(name: string, waiterId: string, token: string): Promise<void> {
    return this.node.cancel(name, waiterId, token, this.opts.handoffTtlMs);
  }

  protected leaseOps(name: string, token: string): LeaseOps {
    return new NodeLease(this.node, name, token, this.opts.handoffTtlMs);
  }

  protected async readOwn(names: string[] | null, now: number, q?: string, limit = Infinity): Promise<LockInfo[]> {
    let list = names ?? (await this.node.indexedNames(now));
    if (q) list = list.filter((n) => n.toLowerCase().includes(q));
    const locks = await this.node.readOwn(list.slice(0, limit), now);
    return locks.filter((l) => l !== null).map((l) => ownLockInfo(this.id, l));
  }

  protected async forceOwn(key: string, expect: ForceReleaseExpectation): Promise<ForceReleaseResult> {
    const r = await this.node.force(key, expect, this.opts.handoffTtlMs);
    if (r.status === 'missing') return { status: 'not-found' };
    const lock = ownLockInfo(this.id, { name: key, fields: r.fields, pttl: Number(r.fields.pttl), now: Number(r.fields.now), waiters: [] });
    return { status: r.status, lock };
  }
}

/** A held lock's renew and release on one node: a small class, not two closures per acquire. */
class NodeLease implements LeaseOps {
  constructor(
    private readonly node: RedisNode,
    private readonly name: string,
    private readonly token: string,
    private readonly handoffTtlMs: number,
  ) {}

  extend(ttlMs: number): Promise<number | null> {
    return this.node.extend(this.name, this.token, ttlMs);
  }

  release(): Promise<void> {
    return this.node.release(this.name, this.token, this.handoffTtlMs).then(noop);
  }
}

function noop(): void {}
