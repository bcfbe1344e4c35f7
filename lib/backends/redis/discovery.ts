/**
 * Background discovery of foreign Redis locks (issue 10, anchors §5.2 D1/D2).
 *
 * Foreign clients (redis-py, node-redlock, Redisson, ShedLock...) keep no index we could read, so
 * the only way to find their locks is to walk the keyspace. Doing that inside every list() made a
 * listing cost a full SCAN (1.26× a raw SCAN COUNT 1000 on 1 M keys). Instead, one task per
 * backend walks the keyspace in the background — SCAN only, never KEYS, COUNT bounded so each
 * call stays far below 5 ms, paced so it takes at most a fraction of the server's time — and
 * remembers which keys hold foreign locks. list() then re-reads just those keys (a few pipelined
 * round trips), so a lock released since the last pass disappears at once, and one taken since
 * appears after at most one pass (plus the pause between passes): `status().lastPassAgeMs` says
 * how stale that bound is right now, and list() shows a warning row when the discovery is behind.
 *
 * Keyspace notifications, where the operator enabled them and a watch is open, add keys as they
 * are written (`note`), so the pass is then only the safety net.
 *
 * A Redis restart (or failover) bumps a generation on the connection's `ready` event: a pass in
 * flight is abandoned (its cursor means nothing to the new server) and a new one starts at once.
 */
import type { ForeignDiscoveryStatus, LockInfo } from '../../locks/types';
import { compileMatch, foreignCandidates, readForeignKeys, scanTargets, type CompiledMatch, type ForeignCandidate, type RedisConn, type RedisLike } from './formats';

export interface DiscoveryOptions {
  /**
   * Shortest pause between the end of one pass and the start of the next (ms; default 1000). The
   * pause is at least as long as the last pass took, so a big keyspace is walked at most half the
   * time: 1,000 keys are looked at every second, 1 M keys every ~2 pass lengths (5-15 s measured).
   */
  intervalMs: number;
  /**
   * COUNT per SCAN call (default 1000: the same page as the baseline `SCAN COUNT 1000`, well under
   * a millisecond of server time per call on a plain keyspace).
   */
  scanCount: number;
  /**
   * Share of wall time a pass spends waiting on Redis (0 < duty ≤ 1; default 0.5): after a call
   * that took t ms the pass sleeps t × (1/duty − 1), so the pass takes about 1/duty times an
   * unpaced one and other clients' commands always find the server between two of its calls.
   * 1 = unpaced (benchmarks, tests).
   */
  duty: number;
  /** How long the very first list() waits for the first pass before answering without it. Default 3000. */
  firstWaitMs: number;
  /** Most foreign locks remembered (default 100 000); beyond it list() says it is incomplete. */
  maxLocks: number;
  /**
   * Discovery stops after this long without a list() (default 300 000), so a process that listed
   * once does not walk the keyspace forever; the next list() starts it again (and waits for a
   * fresh pass, up to firstWaitMs).
   */
  idleMs: number;
}

export const DISCOVERY_DEFAULTS: Readonly<DiscoveryOptions> = Object.freeze({
  intervalMs: 1000,
  scanCount: 1000,
  duty: 0.5,
  firstWaitMs: 3000,
  maxLocks: 100_000,
  idleMs: 300_000,
});

/** Where discovery stands (the shape lives in lib/locks/types.ts: the console shows it for any backend). */
export type DiscoveryStatus = ForeignDiscoveryStatus;

interface Known {
  conn: RedisConn;
  direct: boolean;
  /** Local ms when a pass (or a keyspace event) last saw it. */
  seenAt: number;
}

/** A pass abandoned because the connection was re-established under it (the cursor is void). */
class Reconnected extends Error {
  constructor() {
    super('Redis reconnected during a discovery pass; starting over');
  }
}

/** Candidate keys read together during a pass (three pipelined round trips per batch). */
const READ_BATCH = 500;

export class ForeignDiscovery {
  private readonly opts: DiscoveryOptions;
  private readonly match: CompiledMatch;
  private readonly known = new Map<string, Known>();
  private started = false;
  private running = false;
  private lastUsedAt = Date.now();
  private stopped = false;
  private generation = 0;
  private scanning = false;
  private passes = 0;
  private lastPassStartedAt: number | null = null;
  private lastPassMs: number | null = null;
  private keysExamined = 0;
  private lastError: string | null = null;
  private full = false;
  private sleepTimer: NodeJS.Timeout | undefined;
  private wakeSleep: (() => void) | undefined;
  /**
   * Callers waiting for a pass: resolved when pass number `minSeq` (or a later one) completes.
   * Numbers, not timestamps: a pass started in the same millisecond as passNow() was ambiguous
   * (CI once saw a second, needless pass).
   */
  private passWaiters: Array<{ minSeq: number; resolve(): void }> = [];
  /** Passes started so far (the number of the one under way, or of the last one). */
  private passSeq = 0;
  /** Passes failed in a row (Redis down): the pause before the next try grows with it. */
  private failures = 0;
  /** Restarted after an idle stop: what it knows may be minutes old, so list() waits (bounded). */
  private resumed = false;
  private readonly onReady = () => {
    // Redis is back (or a new master): walk the new server now, not after the error back-off.
    this.generation++;
    this.failures = 0;
    this.wakeSleep?.();
  };

  constructor(
    private readonly redis: RedisLike & { on?(ev: 'ready', fn: () => void): unknown; off?(ev: 'ready', fn: () => void): unknown },
    private readonly ctx: { backendId: string; match: readonly string[]; ownPrefix: string },
    opts: Partial<DiscoveryOptions> = {},
  ) {
    this.opts = { ...DISCOVERY_DEFAULTS, ...opts };
    if (!(this.opts.duty > 0 && this.opts.duty <= 1)) throw new RangeError(`discovery duty must be in (0, 1], got ${this.opts.duty}`);
    this.opts.scanCount = Math.min(10_000, Math.max(10, Math.floor(this.opts.scanCount)));
    this.match = compileMatch(ctx.match);
  }

  /** Starts the background walk, or keeps it from idling out (idempotent). Called by list(). */
  start(): void {
    this.lastUsedAt = Date.now();
    if (this.started || this.stopped) return;
    this.started = true;
    if (this.passes > 0) this.resumed = true;
    this.redis.on?.('ready', this.onReady);
    if (!this.running) void this.loop();
  }

  /** How long discovery pauses after a pass: at least as long as the pass took. */
  private pauseMs(): number {
    return Math.max(this.opts.intervalMs, this.lastPassMs ?? 0);
  }

  /**
   * True when list() should wait (bounded) for a pass: there has been none yet, or discovery was
   * stopped for idleness and has just resumed. Not after an outage: then what it knows is still
   * re-read on every list(), and a listing must not be held up while Redis recovers (the warning
   * row says the discovery is behind instead).
   */
  get mustWait(): boolean {
    return this.passes === 0 || this.resumed;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.redis.off?.('ready', this.onReady);
    this.wakeSleep?.();
    for (const w of this.passWaiters.splice(0)) w.resolve();
  }

  get completedOnce(): boolean {
    return this.passes > 0;
  }

  status(): DiscoveryStatus {
    return {
      state: this.stopped ? 'stopped' : this.scanning ? 'scanning' : 'idle',
      passes: this.passes,
      lastPassStartedAt: this.lastPassStartedAt,
      lastPassAgeMs: this.lastPassStartedAt === null ? null : Date.now() - this.lastPassStartedAt,
      lastPassMs: this.lastPassMs,
      keysExamined: this.keysExamined,
      known: this.known.size,
      // A pass, the pause, and the pass under way; twice that, plus slack for a busy box.
      staleAfterMs: 2 * (this.pauseMs() + 2 * (this.lastPassMs ?? 0)) + 5000,
      lastError: this.lastError,
      full: this.full,
    };
  }

  /**
   * Resolves when a pass that started after this call has completed (or after `timeoutMs`, or on
   * stop). Wakes the loop if it is pausing between passes.
   */
  passNow(timeoutMs = Infinity): Promise<void> {
    // The next pass to start is ours, even when start() below starts it right away.
    const minSeq = this.passSeq + 1;
    const p = new Promise<void>((resolve) => this.passWaiters.push({ minSeq, resolve }));
    this.start();
    if (!this.scanning) this.wakeSleep?.();
    return withTimeout(p, timeoutMs);
  }

  /**
   * Resolves at once unless `mustWait`; then when a pass completes (the first one, or the first
   * after an idle stop), or after `timeoutMs`.
   */
  ensureFresh(timeoutMs: number): Promise<void> {
    this.start();
    if (!this.mustWait || this.stopped) return Promise.resolve();
    return withTimeout(new Promise<void>((resolve) => this.passWaiters.push({ minSeq: 0, resolve })), timeoutMs);
  }

  /** A key that a keyspace notification says holds a foreign lock now (see base.ts watch). */
  note(key: string, direct: boolean): void {
    if (this.stopped || !this.started) return;
    const targets = scanTargets(this.redis);
    if (targets.length !== 1) return; // Cluster: which master holds it is the pass's business
    this.remember(key, targets[0]!, direct, Date.now());
  }

  /** The remembered foreign lock keys (matching `q`, a plain substring), sorted by key. */
  candidates(q?: string): Array<ForeignCandidate & { conn: RedisConn }> {
    const out: Array<ForeignCandidate & { conn: RedisConn }> = [];
    const needle = q?.toLowerCase();
    for (const [key, k] of this.known) {
      if (needle && !key.toLowerCase().includes(needle)) continue;
      out.push({ key, direct: k.direct, conn: k.conn });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * The first `limit` remembered foreign locks (by key) that still hold, re-read now: read in
   * key order, a chunk at a time, until `limit` are found, so a broad `match` with many known keys
   * does not make every list() re-read all of them.
   */
  async read(q: string | undefined, limit: number, backendId: string, now: number): Promise<LockInfo[]> {
    const cands = this.candidates(q);
    const out: LockInfo[] = [];
    for (let i = 0; i < cands.length && out.length < limit; ) {
      // Most remembered keys still hold a lock: ask for what is missing, plus a little.
      const chunk = cands.slice(i, i + Math.max(64, Math.ceil((limit - out.length) * 1.1)));
      i += chunk.length;
      const byConn = new Map<RedisConn, ForeignCandidate[]>();
      for (const c of chunk) {
        let list = byConn.get(c.conn);
        if (!list) byConn.set(c.conn, (list = []));
        list.push({ key: c.key, direct: c.direct });
      }
      const reads = await Promise.all([...byConn].map(([conn, cs]) => readForeignKeys(conn, cs, backendId, now)));
      out.push(...reads.flat().sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)));
    }
    return out.slice(0, limit);
  }

  private remember(key: string, conn: RedisConn, direct: boolean, at: number): void {
    const prev = this.known.get(key);
    if (!prev && this.known.size >= this.opts.maxLocks) {
      this.full = true;
      return;
    }
    this.known.set(key, { conn, direct: direct || (prev?.direct ?? false), seenAt: at });
  }

  private async loop(): Promise<void> {
    this.running = true;
    this.failures = 0;
    while (!this.stopped) {
      if (Date.now() - this.lastUsedAt > this.opts.idleMs && this.passWaiters.length === 0) {
        // Nobody has listed for a while: stop walking until the next list().
        this.started = false;
        this.redis.off?.('ready', this.onReady);
        break;
      }
      let pauseMs: number;
      try {
        await this.pass();
        this.failures = 0;
        pauseMs = this.pauseMs();
      } catch (err) {
        if (this.stopped) break;
        if (err instanceof Reconnected) continue; // the new server is walked from the start, now
        this.lastError = err instanceof Error ? err.message : String(err);
        this.failures++;
        // Redis down: retry soon, backing off to 5 s; a reconnect (`ready`) wakes us sooner.
        pauseMs = Math.min(250 * 2 ** Math.min(this.failures, 5), 5000);
      }
      if (this.stopped || !this.started) break;
      // Someone asked for a pass while this one ran (passNow): the next starts at once.
      if (this.passWaiters.some((w) => w.minSeq > this.passSeq) && this.failures === 0) continue;
      await this.sleep(pauseMs);
    }
    this.scanning = false;
    this.running = false;
    // start() raced with the idle stop: keep going.
    if (this.started && !this.stopped) void this.loop();
  }

  /** One walk over every master. Throws when Redis fails or restarts under it. */
  private async pass(): Promise<void> {
    const generation = this.generation;
    const seq = ++this.passSeq;
    const startedAt = Date.now();
    const t0 = performance.now();
    this.scanning = true;
    this.keysExamined = 0;
    let full = false;
    try {
      for (const conn of scanTargets(this.redis)) {
        // Candidates are read in batches, not page by page: on a big keyspace the few lock keys
        // are spread over many pages, and a read round trip per page would cost more than the SCAN.
        const pending = new Map<string, boolean>(); // key -> direct
        const flush = async () => {
          if (pending.size === 0) return;
          const cands = [...pending].map(([key, direct]) => ({ key, direct }));
          pending.clear();
          // Our clock is good enough here: what a lock shows (TTL, health) comes from list()'s re-read.
          const found = await readForeignKeys(conn, cands, this.ctx.backendId, Date.now());
          const direct = new Map(cands.map((c) => [c.key, c.direct]));
          const at = Date.now();
          for (const f of found) this.remember(f.key, conn, direct.get(f.key) ?? true, at);
          if (this.known.size >= this.opts.maxLocks) full = true;
        };
        let cursor = '0';
        do {
          if (this.stopped) return;
          if (generation !== this.generation) throw new Reconnected();
          const callStart = performance.now();
          const p = conn.pipeline();
          p.call('scan', cursor, ...this.match.matchArgs, 'COUNT', this.opts.scanCount);
          const res = await p.exec();
          const [err, reply] = res?.[0] ?? [new Error('Redis pipeline was aborted'), null];
          if (err) throw err;
          const [next, keys] = reply as [string, string[]];
          cursor = String(next);
          this.keysExamined += keys.length;
          for (const c of foreignCandidates(keys, this.match, this.ctx.ownPrefix)) pending.set(c.key, c.direct || (pending.get(c.key) ?? false));
          if (pending.size >= READ_BATCH || cursor === '0') await flush();
          if (this.opts.duty < 1 && cursor !== '0') {
            const spent = performance.now() - callStart;
            await this.sleep(spent * (1 / this.opts.duty - 1), false);
          }
        } while (cursor !== '0');
      }
      if (generation !== this.generation) throw new Reconnected();
      // Forget what this pass did not see: locks released (or expired) before it reached them.
      // Anything seen since the pass started (by the pass or a keyspace event) stays.
      for (const [key, k] of this.known) if (k.seenAt < startedAt) this.known.delete(key);
      this.full = full;
      this.passes++;
      this.resumed = false;
      this.lastPassStartedAt = startedAt;
      this.lastPassMs = performance.now() - t0;
      this.lastError = null;
      const waiters = this.passWaiters;
      this.passWaiters = waiters.filter((w) => w.minSeq > seq);
      for (const w of waiters) if (w.minSeq <= seq) w.resolve();
    } finally {
      this.scanning = false;
    }
  }

  /** Sleeps `ms`; stop() (and, between passes, passNow() or a reconnect) cuts it short. */
  private sleep(ms: number, wakeable = true): Promise<void> {
    if (this.stopped || ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(this.sleepTimer);
        this.sleepTimer = undefined;
        this.wakeSleep = undefined;
        resolve();
      };
      this.sleepTimer = setTimeout(done, ms);
      this.sleepTimer.unref?.();
      // Within a pass only stop() may cut the pacing short (a reconnect is noticed at the next call).
      this.wakeSleep = wakeable ? done : () => (this.stopped ? done() : undefined);
    });
  }
}

/** `p`, or nothing after `ms` (the timer is cleared either way). */
function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  if (ms === Infinity) return p;
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
}

/** The warning row list() shows when foreign locks may be missing, in the shape of the others. */
export function discoveryWarning(backendId: string, match: readonly string[], text: string, s: DiscoveryStatus): LockInfo {
  return {
    backend: backendId, key: `(foreign locks: ${match.join(' ')})`, format: 'unknown', kind: 'mutex', owner: null, holders: [],
    fence: null, acquiredAt: null, expiresAt: null, ttlMs: null, waiters: [], health: 'unknown',
    meta: {
      warning: text,
      discoveryPasses: s.passes,
      discoveryLastPassAgeMs: s.lastPassAgeMs,
      discoveryKeysExamined: s.keysExamined,
    },
  };
}
