import { LockLostError } from './errors';
import type { LockHandle, LostReason, OwnerInfo } from './types';

/** What a backend does for one held lock; the handle does the bookkeeping around it. */
export interface LeaseOps {
  /**
   * Extends the lease to `ttlMs` from now. Resolves to the new expiry (backend clock), or null when
   * the lock is no longer ours (expired, forced, taken). Rejects on transport errors.
   * A backend whose renewal rides on a session may answer from the session's last keepalive
   * instead of a request of its own: it then says when that proof was sent (`provenAt`, local
   * `performance.now()`), and the handle counts its lease from then, not from the call.
   */
  extend(ttlMs: number): Promise<number | null | { expiresAt: number; provenAt: number }>;
  /** Releases the lock if still ours. Rejects on transport errors. */
  release(): Promise<void>;
}

export interface ManagedHandleInit {
  backend: string;
  name: string;
  fence: string;
  owner: OwnerInfo;
  /** The lease length to renew to. */
  ttlMs: number;
  /** The lease actually granted (may be shorter, e.g. a handed-off lock's initial lease). */
  leaseMs: number;
  /** Local `performance.now()` taken before the request that granted the lease was sent. */
  leaseStart: number;
  expiresAt: number;
  autoRenew: boolean;
  ops: LeaseOps;
  /** Called once when the handle is released or lost, so the backend can forget it. */
  onDone?: (handle: ManagedHandle) => void;
  /**
   * Called once when the handle learns its lock is lost (not on release), before `onDone`: the
   * backend publishes a `lost` event. Must not throw (a throw is swallowed).
   */
  onLost?: (reason: LostReason, handle: ManagedHandle) => void;
}

/**
 * Clock drift allowance, as node-redlock and the Redlock paper do: we count a lease as gone
 * 1% + 2 ms early, so that a slow local clock never makes us believe in a lease that has expired
 * on the server (mike-marcacci/node-redlock src/index.ts, `driftFactor`).
 */
export function driftMs(ttlMs: number): number {
  return Math.ceil(ttlMs * 0.01) + 2;
}

/**
 * A held lock with automatic renewal and a lost-lock signal, shared by every backend.
 *
 * Timing uses the monotonic `performance.now()`, never `Date.now()`, so a wall-clock jump cannot
 * make a holder think it still has a lease that ran out. Renewal runs at a third of the TTL (as
 * etcd's and Redisson's keepalives do), retries on transport errors, and gives up when the local
 * lease deadline passes: the signal then aborts with reason `expired`.
 */
export class ManagedHandle implements LockHandle {
  readonly backend: string;
  readonly name: string;
  readonly owner: OwnerInfo;
  private _fence: string;
  private _expiresAt: number;
  private readonly ttlMs: number;
  private readonly ops: LeaseOps;
  private readonly autoRenew: boolean;
  /**
   * Made on first use of `signal`: an AbortController costs about 10 µs in Node 20, a sizeable
   * share of a sub-millisecond acquire+release, and many holders never look at their signal.
   */
  private controller: AbortController | undefined;
  private lost: LockLostError | undefined;
  private deadline: number;
  private renewTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private state: 'held' | 'released' | 'lost' = 'held';
  private inflight: Promise<unknown> | undefined;
  private readonly onDone: ((h: ManagedHandle) => void) | undefined;
  private readonly onLost: ((reason: LostReason, h: ManagedHandle) => void) | undefined;

  constructor(init: ManagedHandleInit) {
    this.backend = init.backend;
    this.name = init.name;
    this._fence = init.fence;
    this.owner = init.owner;
    this.ttlMs = init.ttlMs;
    this.ops = init.ops;
    this.autoRenew = init.autoRenew;
    this.onDone = init.onDone;
    this.onLost = init.onLost;
    this._expiresAt = init.expiresAt;
    this.deadline = init.leaseStart + init.leaseMs - driftMs(init.leaseMs);
    this.schedule(init.leaseStart, init.leaseMs);
  }

  get fence(): string {
    return this._fence;
  }
  get expiresAt(): number {
    return this._expiresAt;
  }
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.lost) this.controller.abort(this.lost);
    }
    return this.controller.signal;
  }
  get held(): boolean {
    return this.state === 'held';
  }

  async extend(ttlMs: number = this.ttlMs): Promise<void> {
    if (this.state !== 'held') throw this.lostError('renewal-failed');
    const start = performance.now();
    const op = this.ops.extend(ttlMs);
    this.inflight = op.catch(() => undefined);
    let renewed: Awaited<typeof op>;
    try {
      renewed = await op;
    } finally {
      this.inflight = undefined;
    }
    if (this.state !== 'held') throw this.lostError('renewal-failed');
    if (renewed === null) {
      this.markLost('renewal-failed');
      throw this.lostError('renewal-failed');
    }
    const proven = typeof renewed === 'number' ? start : Math.min(start, renewed.provenAt);
    this._expiresAt = typeof renewed === 'number' ? renewed : renewed.expiresAt;
    this.deadline = proven + ttlMs - driftMs(ttlMs);
    // The next renewal a third of a lease from now (not from the proof): a renewal answered from
    // a session's keepalive finds a newer one by then.
    this.schedule(start, ttlMs);
  }

  async release(): Promise<void> {
    if (this.state !== 'held') return;
    this.state = 'released';
    // A renewal in flight could otherwise land after the release and re-extend nothing useful;
    // waiting for it keeps the order of our own commands obvious.
    if (this.inflight) {
      this.clearTimers();
      await this.inflight;
    }
    try {
      let sent: Promise<void>;
      try {
        sent = this.ops.release();
      } finally {
        // After the release request went out: the timers are bookkeeping (they cannot fire in
        // between, and do nothing once the state is 'released'), the latency is to the request.
        this.clearTimers();
      }
      await sent;
    } finally {
      this.onDone?.(this);
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }

  /** Called by the backend when it learns the lock is gone (a push message, a session loss). */
  markLost(reason: LostReason, cause?: unknown): void {
    if (this.state !== 'held') return;
    this.state = 'lost';
    this.clearTimers();
    this.lost = this.lostError(reason, cause);
    this.controller?.abort(this.lost);
    try {
      this.onLost?.(reason, this);
    } catch {
      // Telemetry must never break the holder's bookkeeping.
    }
    this.onDone?.(this);
  }

  /** Used by backends that hand a lock over with a fresh fence (e.g. re-acquired in place). */
  protected setFence(fence: string): void {
    this._fence = fence;
  }

  private lostError(reason: LostReason, cause?: unknown): LockLostError {
    return new LockLostError(this.name, reason, cause === undefined ? undefined : { cause });
  }

  private schedule(leaseStart: number, leaseMs: number): void {
    this.clearTimers();
    const now = performance.now();
    this.expiryTimer = setTimeout(() => this.markLost('expired'), Math.max(0, this.deadline - now));
    this.expiryTimer.unref?.();
    if (!this.autoRenew) return;
    // Renew at a third of the lease. A short first lease (a lock handed to a waiter) is thus
    // topped up to the full TTL a third of the way in, not at once: the handoff itself stays at
    // one request and a dead waiter still cannot wedge the lock for longer than that lease.
    const renewAt = leaseStart + Math.min(leaseMs, this.ttlMs) / 3;
    this.renewTimer = setTimeout(() => void this.renew(), Math.max(0, renewAt - now));
    this.renewTimer.unref?.();
  }

  private async renew(): Promise<void> {
    if (this.state !== 'held') return;
    try {
      await this.extend(this.ttlMs);
    } catch (err) {
      if (this.state !== 'held') return;
      // Transport error: try again soon, but never past the deadline (the expiry timer fires).
      const retryIn = Math.min(Math.max(this.ttlMs / 10, 20), 1000);
      if (performance.now() + retryIn < this.deadline) {
        this.renewTimer = setTimeout(() => void this.renew(), retryIn);
        this.renewTimer.unref?.();
      }
      void err;
    }
  }

  private clearTimers(): void {
    clearTimeout(this.renewTimer);
    clearTimeout(this.expiryTimer);
    this.renewTimer = undefined;
    this.expiryTimer = undefined;
  }
}
