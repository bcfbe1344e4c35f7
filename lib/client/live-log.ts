/**
 * The recent stream events, kept only while a listing is in flight.
 *
 * A listing (`GET /api/locks`) and the event stream race: an event applied to the cache while the
 * listing is on its way may or may not be in the listing's answer, and when the answer lands it
 * would overwrite the event. So a listing takes a mark when it starts and, when it lands, replays
 * every event since the mark on top of its answer. Per key, the last event is the newest truth and
 * keys without events keep the listing's state, so the result is right whichever came first
 * (live-state.ts: applying is idempotent). Without a listing in flight nothing is kept.
 */
import type { LiveEvent } from './live-state';

/** Events kept at most while listings are in flight (a listing slower than this many is rare). */
const MAX_KEPT = 50_000;

let seq = 0;
let log: Array<{ seq: number; event: LiveEvent }> = [];
const marks = new Map<number, number>();
let nextMark = 1;

export const liveLog = {
  /** Records an event (only while some listing holds a mark). */
  push(event: LiveEvent): void {
    seq++;
    if (marks.size === 0) return;
    log.push({ seq, event });
    if (log.length > MAX_KEPT) log = log.slice(log.length - MAX_KEPT);
  },
  /** Starts watching; returns a handle for {@link since} and {@link release}. */
  mark(): number {
    const id = nextMark++;
    marks.set(id, seq);
    return id;
  },
  /** The events recorded since `mark` was taken, oldest first. */
  since(mark: number): LiveEvent[] {
    const from = marks.get(mark);
    if (from === undefined) return [];
    return log.filter((e) => e.seq > from).map((e) => e.event);
  },
  release(mark: number): void {
    marks.delete(mark);
    if (marks.size === 0) log = [];
    else {
      const oldest = Math.min(...marks.values());
      log = log.filter((e) => e.seq > oldest);
    }
  },
};
