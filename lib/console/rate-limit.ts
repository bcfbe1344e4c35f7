import 'server-only';

/**
 * A sliding-window limit per actor (in memory, per server process): at most `limit` events in
 * any `windowMs`. Force-release is rare and deliberate; a burst means a script gone wrong or a
 * stolen session, and the limit caps the damage while the audit log records it.
 */
import { singleton } from './singleton';

export class SlidingWindowLimiter {
  private readonly hits = new Map<string, number[]>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
  ) {}

  /** Takes one slot for `actor`: 0 when allowed, else the ms until a slot frees up. */
  take(actor: string, now = Date.now()): number {
    const from = now - this.windowMs;
    const list = (this.hits.get(actor) ?? []).filter((t) => t > from);
    if (list.length >= this.limit) {
      this.hits.set(actor, list);
      return Math.max(1, list[0]! + this.windowMs - now);
    }
    list.push(now);
    this.hits.set(actor, list);
    if (this.hits.size > 10_000) {
      for (const [k, v] of this.hits) if (!v.some((t) => t > from)) this.hits.delete(k);
    }
    return 0;
  }
}

export function getReleaseLimiter(perMinute: number): SlidingWindowLimiter {
  return singleton(`release-limiter:${perMinute}`, () => new SlidingWindowLimiter(perMinute, 60_000));
}
