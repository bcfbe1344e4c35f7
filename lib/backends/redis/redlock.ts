/**
 * Redlock over N independent Redis masters (config `urls`), as in the Redis documentation's
 * distributed-locks page and node-redlock (mike-marcacci/node-redlock src/index.ts):
 * the same script runs on every master in parallel; the lock is ours when a majority
 * (floor(N/2)+1) granted it within its validity (TTL minus the time the attempt took minus a
 * drift allowance of 1% + 2 ms); otherwise we release what we got and wait.
 *
 * Differences from node-redlock, and why:
 *  - Fencing: each master keeps its own counter; after winning we raise the winners' counters to
 *    the highest fence any gave (RAISE_FENCE) before handing out the handle. Any later majority
 *    overlaps ours in at least one master, whose counter then yields a strictly higher fence.
 *    That costs a second round trip when the counters disagree, and none when they agree.
 *  - Waiting is push-based: every master publishes releases on lockdeck's events channel, and a
 *    waiter retries when one arrives, or when the holder's lease runs out, instead of polling every
 *    200 ms. No single master may hand the lock over (it cannot grant a quorum), so waiters are
 *    recorded on each master only for the console to see.
 */
import { BackendUnavailableError } from '../../locks/errors';
import { driftMs, type LeaseOps } from '../../locks/handle';
import type { AcquireOptions, Capabilities, ForceReleaseExpectation, ForceReleaseResult, LockInfo, OwnerInfo } from '../../locks/types';
import { compareFences, tokenHash } from '../../locks/util';
import type { RedisBackendConfig } from '../config';
import { RedisBackendBase, type Attempt, type RedisBackendOptions } from './base';
import { ownLockInfo, type OwnLock, type RedisNode } from './node';

const CAPABILITIES: Capabilities = Object.freeze({
  fencing: true,
  ttl: true,
  waiters: true,
  fifo: false,
  pushWatch: true,
  notifiesHolderOnForce: true,
  telemetry: true,
});

/** 0 turns off the scripts' server-side handoff: in Redlock mode no single master may grant. */
const NO_HANDOFF = 0;

export class RedlockBackend extends RedisBackendBase {
  readonly capabilities = CAPABILITIES;
  /** No master may hand the lock over: waiters learn of releases from the events channel. */
  protected override readonly wakeOnReleaseEvents = true;
  protected readonly nodes: RedisNode[];
  private readonly quorum: number;

  constructor(config: RedisBackendConfig, opts: RedisBackendOptions) {
    super(config, opts);
    this.nodes = config.urls!.map((url, i) => this.makeNode(`${config.id}#${i}`, { url, password: config.password }));
    this.quorum = Math.floor(this.nodes.length / 2) + 1;
  }

  protected async waiterSubscriptions(): Promise<void> {
    // Releases reach waiters as events; a quorum of masters is enough to hear one.
    const subs = await Promise.allSettled(this.nodes.flatMap((n) => [n.subscribe(this.channel), n.subscribe(n.eventsChannel)]));
    if (subs.filter((s) => s.status === 'fulfilled').length < this.quorum * 2) {
      throw new BackendUnavailableError(`redis "${this.id}": fewer than ${this.quorum} masters answer`);
    }
  }

  protected async attempt(name: string, token: string, owner: OwnerInfo, o: AcquireOptions, labels: string, waiterId: string, waitedMs: number): Promise<Attempt> {
    const leaseStart = performance.now();
    const results = await Promise.allSettled(
      this.nodes.map((n) =>
        n.acquire({
          name, token, ttlMs: o.ttlMs, owner, channel: this.channel, labels, waiterId,
          waitLeaseMs: this.opts.recheckMs * 3, handoffTtlMs: NO_HANDOFF, waitedMs,
        }),
      ),
    );
    const won: { node: RedisNode; fence: string; expiresAt: number }[] = [];
    let minPttl = Infinity;
    results.forEach((r, i) => {
      if (r.status !== 'fulfilled') return;
      if (r.value.ok) won.push({ node: this.nodes[i]!, fence: r.value.fence, expiresAt: r.value.expiresAt });
      else if (r.value.pttl > 0) minPttl = Math.min(minPttl, r.value.pttl);
    });
    const valid = performance.now() - leaseStart < o.ttlMs - driftMs(o.ttlMs);
    if (won.length >= this.quorum && valid) {
      const fence = won.map((w) => w.fence).reduce((a, b) => (compareFences(a, b) >= 0 ? a : b));
      const raised = won.every((w) => w.fence === fence)
        ? won.length
        : (await Promise.allSettled(won.map((w) => w.node.raiseFence(name, token, fence)))).filter((r) => r.status === 'fulfilled' && r.value).length;
      if (raised >= this.quorum && performance.now() - leaseStart < o.ttlMs - driftMs(o.ttlMs)) {
        if (waiterId) {
          const lost = this.nodes.filter((n) => !won.some((w) => w.node === n));
          for (const n of lost) void n.cancel(name, waiterId, token, NO_HANDOFF).catch(() => undefined);
        }
        return { ok: true, fence, expiresAt: Math.min(...won.map((w) => w.expiresAt)), leaseMs: o.ttlMs, leaseStart };
      }
    }
    await Promise.allSettled(won.map((w) => w.node.release(name, token, NO_HANDOFF)));
    if (won.length + results.filter((r) => r.status === 'fulfilled' && !r.value.ok).length < this.quorum) {
      const err = results.find((r) => r.status === 'rejected');
      throw new BackendUnavailableError(`redis "${this.id}": fewer than ${this.quorum} masters answer`, {
        cause: err?.status === 'rejected' ? err.reason : undefined,
      });
    }
    // A split vote (nobody won a majority) ends in everyone retrying; a little jitter breaks ties.
    return { ok: false, retryInMs: minPttl === Infinity ? 1 + Math.random() * 5 : minPttl + 1 };
  }

  protected async cancel(name: string, waiterId: string, token: string): Promise<void> {
    await Promise.allSettled(this.nodes.map((n) => n.cancel(name, waiterId, token, NO_HANDOFF)));
  }

  protected leaseOps(name: string, token: string): LeaseOps {
    return {
      extend: async (ttlMs) => {
        const results = await Promise.allSettled(this.nodes.map((n) => n.extend(name, token, ttlMs)));
        const ok = results.flatMap((r) => (r.status === 'fulfilled' && r.value !== null ? [r.value] : []));
        if (ok.length >= this.quorum) return Math.min(...ok);
        const refused = results.filter((r) => r.status === 'fulfilled' && r.value === null).length;
        // A majority can no longer be ours: lost. Otherwise it is a transport problem: retry.
        if (refused > this.nodes.length - this.quorum) return null;
        throw new BackendUnavailableError(`redis "${this.id}": renewal reached ${ok.length} of ${this.nodes.length} masters`);
      },
      release: async () => {
        await Promise.allSettled(this.nodes.map((n) => n.release(name, token, NO_HANDOFF)));
      },
    };
  }

  /**
   * A lock is shown when a majority of masters hold it with the same token; otherwise it is shown
   * with health `unknown` and how many agree, since a minority lock is a leftover or a race.
   */
  protected async readOwn(names: string[] | null, now: number, q?: string, limit = Infinity): Promise<LockInfo[]> {
    let list = names;
    if (!list) {
      const perNode = await Promise.allSettled(this.nodes.map((n) => n.indexedNames(now)));
      list = [...new Set(perNode.flatMap((r) => (r.status === 'fulfilled' ? r.value : [])))].sort();
    }
    if (q) list = list.filter((n) => n.toLowerCase().includes(q));
    list = list.slice(0, limit);
    const views = await Promise.allSettled(this.nodes.map((n) => n.readOwn(list, now)));
    const out: LockInfo[] = [];
    list.forEach((name, i) => {
      const seen: OwnLock[] = views.flatMap((v) => (v.status === 'fulfilled' && v.value[i] ? [v.value[i]] : []));
      if (seen.length === 0) return;
      const byToken = new Map<string, OwnLock[]>();
      for (const l of seen) byToken.set(l.fields.token!, [...(byToken.get(l.fields.token!) ?? []), l]);
      const [, best] = [...byToken.entries()].sort((a, b) => b[1].length - a[1].length)[0]!;
      const primary = best[0]!;
      const waiters = seen.map((l) => l.waiters).sort((a, b) => b.length - a.length)[0] ?? [];
      const info = ownLockInfo(this.id, { ...primary, waiters }, {
        quorum: `${best.length}/${this.nodes.length}`,
        tokenHash: tokenHash(primary.fields.token!),
      });
      if (best.length < this.quorum) info.health = 'unknown';
      out.push(info);
    });
    return out;
  }

  protected async forceOwn(key: string, expect: ForceReleaseExpectation): Promise<ForceReleaseResult> {
    const results = await Promise.allSettled(this.nodes.map((n) => n.force(key, expect, NO_HANDOFF)));
    const outcomes = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (outcomes.length < this.quorum) {
      throw new BackendUnavailableError(`redis "${this.id}": fewer than ${this.quorum} masters answer`);
    }
    const released = outcomes.find((o) => o.status === 'released');
    const changed = outcomes.find((o) => o.status === 'changed');
    const pick = released ?? changed;
    if (!pick || pick.status === 'missing') return { status: 'not-found' };
    const lock = ownLockInfo(this.id, { name: key, fields: pick.fields, pttl: Number(pick.fields.pttl), now: Number(pick.fields.now), waiters: [] });
    return { status: released ? 'released' : 'changed', lock };
  }
}
