/**
 * A job scheduler on lockdeck's locks: each occurrence of a job runs once across every instance
 * that schedules it (the job-scheduler scenario of the article lockdeck started from).
 *
 * How an occurrence runs exactly once:
 *  - Every instance computes the same occurrence times (cron via croner, or `everyMs` aligned to
 *    the epoch), so they all wake for the same occurrence `T`.
 *  - Each takes the lock `job/<name>/<T as ISO>` with `tryAcquire` and a TTL of
 *    `lockAtMostForMs` (no renewal: a crashed or stuck instance cannot hold the job for longer).
 *  - The winner reads the occurrence's run records; if any instance already finished it (ran,
 *    failed or lost its lock mid-run), it skips. Otherwise it records `running`, runs the handler
 *    with the lock's fence and an AbortSignal, records the outcome, and keeps the lock until
 *    `lockAtLeastForMs` after the start (ShedLock's bound, so a clock-skewed peer that wakes late
 *    finds the lock still held), then releases.
 *  - The losers record `skipped`. If the winner dies, its record stays `running`; each loser
 *    re-checks every `lockAtMostForMs` (for at least a minute) and runs the occurrence if nobody
 *    finished it, so a killed instance's occurrence runs again after `lockAtMostForMs`.
 *
 * No drift: timers are set to absolute occurrence times from the clock each time; an instance that
 * falls behind (paused, event loop blocked) applies `missed`: `run-latest` runs the newest due
 * occurrence (if still within `graceMs`) and records the older ones as `missed`; `skip` records all
 * late ones as `missed`. Either way no occurrence runs twice: the lock and the records see to that.
 *
 * Registration: where the run store supports it (`putJob`), each instance announces every job it
 * schedules (definition, instance, time) at start and again every `heartbeatMs`, so the console
 * can show the schedule, the next occurrence and which instances are alive before any run.
 */
import { hostname } from 'node:os';

import { Cron } from 'croner';

import { InvalidArgumentError } from '../locks/errors';
import type { JobSchedule, LockClient, LockHandle, RunOutcome, RunRecord, RunStore } from '../locks/types';
import { delay } from '../locks/util';

export interface JobContext {
  job: string;
  /** The occurrence's scheduled time. */
  occurrence: Date;
  /** The occurrence lock's fencing token: pass it to what the job writes to. */
  fence: string;
  /** Aborts when the lock is lost (lockAtMostForMs passed) or the scheduler stops. */
  signal: AbortSignal;
  instance: string;
}

export interface JobSpec {
  name: string;
  /** Cron expression (croner syntax, 5 or 6 fields). Give `cron` or `everyMs`. */
  cron?: string;
  /** IANA time zone for `cron` (default: UTC, so every instance agrees). */
  timezone?: string;
  /** Fixed interval; occurrences are multiples of it since the epoch, so instances agree. */
  everyMs?: number;
  /** The occurrence lock's TTL: the longest one run may block the job. */
  lockAtMostForMs: number;
  /** Keep the lock at least this long after the start, even after a fast run (default 0). */
  lockAtLeastForMs?: number;
  /** How late an occurrence may still start (default: the smaller of lockAtMostForMs and the period). */
  graceMs?: number;
  /** What to do with occurrences missed while behind (default `run-latest`). */
  missed?: 'run-latest' | 'skip';
  handler: (ctx: JobContext) => Promise<void> | void;
}

export interface SchedulerOptions {
  /** This instance's name in the run records (default `host:pid`). */
  instance: string;
  /** Where run records go; default: the lock backend's own store. */
  runs: RunStore;
  /** Injectable clock, epoch ms (tests). */
  now: () => number;
  /** Called with errors the scheduler cannot attribute to a run (e.g. the store is down). */
  onError: (err: unknown) => void;
  /** How often each job's registration is refreshed (default 60 s). */
  heartbeatMs: number;
}

interface JobState {
  spec: Required<Pick<JobSpec, 'lockAtLeastForMs' | 'missed'>> & JobSpec & { graceMs: number };
  cron: Cron | null;
  /** The newest occurrence this instance has dealt with. */
  last: number;
  timer: NodeJS.Timeout | undefined;
}

const TERMINAL: readonly RunOutcome[] = ['ran', 'failed', 'lost'];

/**
 * Re-checks of an occurrence whose holder may have died, per instance: one every
 * lockAtMostForMs, at least MIN_RECHECKS of them and for at least RECHECK_HORIZON_MS. The horizon
 * is for session-bound stores (ZooKeeper), where a dead holder's lock goes only when its session
 * expires, which may be later than lockAtMostForMs. Bounded, never an endless loop.
 */
const MIN_RECHECKS = 3;
const RECHECK_HORIZON_MS = 60_000;

export class Scheduler {
  readonly instance: string;
  private readonly runs: RunStore;
  private readonly now: () => number;
  private readonly onError: (err: unknown) => void;
  private readonly jobs = new Map<string, JobState>();
  private readonly active = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly stopController = new AbortController();
  private started = false;
  private readonly heartbeatMs: number;
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly locks: LockClient & { runStore?: (o?: { retain?: number }) => RunStore },
    opts: Partial<SchedulerOptions> = {},
  ) {
    this.instance = opts.instance ?? `${hostname()}:${process.pid}`;
    const runs = opts.runs ?? locks.runStore?.();
    if (!runs) throw new InvalidArgumentError('this lock backend keeps no run records: pass `runs`');
    this.runs = runs;
    this.now = opts.now ?? Date.now;
    this.onError = opts.onError ?? ((err) => console.error('[lockdeck scheduler]', err));
    const hb = opts.heartbeatMs ?? 60_000;
    if (!Number.isInteger(hb) || hb < 10) throw new InvalidArgumentError('heartbeatMs must be an integer ≥ 10');
    this.heartbeatMs = hb;
  }

  /** Adds a job. Throws InvalidArgumentError naming the field for a bad spec. */
  add(spec: JobSpec): this {
    if (!spec.name || typeof spec.name !== 'string' || spec.name.length > 200 || /[\u0000-\u001f/]/.test(spec.name)) {
      throw new InvalidArgumentError('job name: 1 to 200 characters, no "/" or control characters');
    }
    if (this.jobs.has(spec.name)) throw new InvalidArgumentError(`job "${spec.name}" is already added`);
    if ((spec.cron === undefined) === (spec.everyMs === undefined)) {
      throw new InvalidArgumentError(`job "${spec.name}": give exactly one of cron or everyMs`);
    }
    if (spec.everyMs !== undefined && (!Number.isInteger(spec.everyMs) || spec.everyMs < 10)) {
      throw new InvalidArgumentError(`job "${spec.name}": everyMs must be an integer ≥ 10`);
    }
    if (!Number.isInteger(spec.lockAtMostForMs) || spec.lockAtMostForMs < 10) {
      throw new InvalidArgumentError(`job "${spec.name}": lockAtMostForMs must be an integer ≥ 10`);
    }
    const atLeast = spec.lockAtLeastForMs ?? 0;
    if (!Number.isInteger(atLeast) || atLeast < 0 || atLeast > spec.lockAtMostForMs) {
      throw new InvalidArgumentError(`job "${spec.name}": lockAtLeastForMs must be an integer from 0 to lockAtMostForMs`);
    }
    if (typeof spec.handler !== 'function') throw new InvalidArgumentError(`job "${spec.name}": handler must be a function`);
    let cron: Cron | null = null;
    if (spec.cron !== undefined) {
      try {
        cron = new Cron(spec.cron, { paused: true, timezone: spec.timezone ?? 'UTC' });
      } catch (err) {
        throw new InvalidArgumentError(`job "${spec.name}": cron: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const period = spec.everyMs ?? this.cronPeriod(cron!);
    const graceMs = spec.graceMs ?? Math.min(spec.lockAtMostForMs, period);
    this.jobs.set(spec.name, {
      spec: { ...spec, lockAtLeastForMs: atLeast, missed: spec.missed ?? 'run-latest', graceMs },
      cron,
      last: this.now(),
      timer: undefined,
    });
    if (this.started) {
      this.arm(this.jobs.get(spec.name)!);
      this.register([this.jobs.get(spec.name)!]);
    }
    return this;
  }

  /** Starts the timers. Occurrences before now are not run: the schedule starts from here. */
  start(): this {
    if (this.stopController.signal.aborted) throw new InvalidArgumentError('a stopped scheduler cannot start again');
    if (this.started) return this;
    this.started = true;
    const now = this.now();
    for (const job of this.jobs.values()) {
      job.last = now;
      this.arm(job);
    }
    this.register([...this.jobs.values()]);
    this.heartbeat = setInterval(() => this.register([...this.jobs.values()]), this.heartbeatMs);
    this.heartbeat.unref();
    return this;
  }

  /** Announces jobs to the run store (where it keeps registrations); failures go to onError. */
  private register(jobs: JobState[]): void {
    const put = this.runs.putJob?.bind(this.runs);
    if (!put || this.stopController.signal.aborted) return;
    const seenAt = this.now();
    for (const { spec } of jobs) {
      const schedule: JobSchedule = spec.cron !== undefined ? { cron: spec.cron, timezone: spec.timezone ?? 'UTC' } : { everyMs: spec.everyMs! };
      this.track(
        put({
          name: spec.name,
          schedule,
          lockAtMostForMs: spec.lockAtMostForMs,
          lockAtLeastForMs: spec.lockAtLeastForMs,
          graceMs: spec.graceMs,
          missed: spec.missed,
          instance: this.instance,
          seenAt,
          heartbeatMs: this.heartbeatMs,
        }),
      );
    }
  }

  /**
   * Stops scheduling, lets running jobs finish for up to `timeoutMs`, then aborts them, and
   * releases every lock it holds. Resolves when nothing of it is left running.
   */
  async stop(opts: { timeoutMs?: number } = {}): Promise<void> {
    clearInterval(this.heartbeat);
    for (const job of this.jobs.values()) clearTimeout(job.timer);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const pending = Promise.allSettled([...this.active]);
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), opts.timeoutMs ?? 30_000).unref());
    if ((await Promise.race([pending, timeout])) === 'timeout') this.stopController.abort(new Error('scheduler stopped'));
    // Also ends lockAtLeastFor waits, which only keep a lock that nothing uses any more.
    this.stopController.abort(new Error('scheduler stopped'));
    await pending;
  }

  /** The next occurrence of a job strictly after `after`. */
  nextOccurrence(name: string, after: number): number {
    const job = this.jobs.get(name);
    if (!job) throw new InvalidArgumentError(`unknown job "${name}"`);
    return this.next(job, after);
  }

  private next(job: JobState, after: number): number {
    if (job.spec.everyMs !== undefined) return (Math.floor(after / job.spec.everyMs) + 1) * job.spec.everyMs;
    const d = job.cron!.nextRun(new Date(after));
    return d ? d.getTime() : Infinity;
  }

  private cronPeriod(cron: Cron): number {
    const [a, b] = cron.nextRuns(2, new Date(this.now()));
    return a && b ? b.getTime() - a.getTime() : 60_000;
  }

  private arm(job: JobState): void {
    if (this.stopController.signal.aborted) return;
    const next = this.next(job, job.last);
    if (next === Infinity) return;
    // Timers cap at ~24.8 days; a far occurrence is re-armed on the way.
    job.timer = setTimeout(() => this.fire(job), Math.min(Math.max(0, next - this.now()), 2 ** 31 - 1));
  }

  private fire(job: JobState): void {
    const now = this.now();
    const due: number[] = [];
    for (let t = this.next(job, job.last); t <= now && due.length < 10_000; t = this.next(job, t)) due.push(t);
    if (due.length === 0) return this.arm(job);
    job.last = due[due.length - 1]!;
    this.arm(job);
    const { spec } = job;
    const latest = due[due.length - 1]!;
    const runLatest = spec.missed === 'run-latest' && now - latest <= spec.graceMs;
    for (const t of due) {
      if (t === latest && runLatest) this.track(this.runOccurrence(job, t, 0));
      else {
        const detail = t === latest ? `due ${now - t} ms ago, past graceMs ${spec.graceMs}` : 'a later occurrence was due too (missed: run-latest)';
        this.track(this.record({ job: spec.name, occurrence: t, outcome: 'missed', startedAt: null, finishedAt: null, fence: null, detail }));
      }
    }
  }

  private track(p: Promise<void>): void {
    const tracked = p.catch((err) => this.onError(err)).finally(() => this.active.delete(tracked));
    this.active.add(tracked);
  }

  private async record(r: Omit<RunRecord, 'instance'>): Promise<void> {
    await this.runs.put({ ...r, instance: this.instance });
  }

  private async runOccurrence(job: JobState, t: number, recheck: number): Promise<void> {
    const { spec } = job;
    if (this.stopController.signal.aborted) return;
    const iso = new Date(t).toISOString();
    const lock = await this.locks.tryAcquire(`job/${spec.name}/${iso}`, {
      ttlMs: spec.lockAtMostForMs,
      autoRenew: false,
      owner: this.instance,
      labels: { job: spec.name, occurrence: iso },
    });
    if (!lock) {
      // Someone else runs it, or did and still holds it for lockAtLeastFor. If that holder dies,
      // its lock runs out after lockAtMostFor: look again then, and run it if nobody finished it.
      if (recheck === 0) {
        await this.record({ job: spec.name, occurrence: t, outcome: 'skipped', startedAt: null, finishedAt: null, fence: null, detail: 'another instance holds the occurrence lock' });
      }
      if (recheck < Math.max(MIN_RECHECKS, Math.ceil(RECHECK_HORIZON_MS / spec.lockAtMostForMs))) {
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          this.track(this.recheckOccurrence(job, t, recheck + 1));
        }, spec.lockAtMostForMs + 10 + Math.floor(Math.random() * 50));
        this.timers.add(timer);
      }
      return;
    }
    await this.runHolding(job, t, lock, recheck);
  }

  /** After lockAtMostFor: run the occurrence only if no instance finished it. */
  private async recheckOccurrence(job: JobState, t: number, recheck: number): Promise<void> {
    const records = await this.runs.occurrence(job.spec.name, t);
    if (records.some((r) => TERMINAL.includes(r.outcome))) return;
    await this.runOccurrence(job, t, recheck);
  }

  private async runHolding(job: JobState, t: number, lock: LockHandle, recheck: number): Promise<void> {
    const { spec } = job;
    const startedAt = this.now();
    try {
      const records = await this.runs.occurrence(spec.name, t);
      const done = records.find((r) => TERMINAL.includes(r.outcome));
      if (done) {
        if (recheck === 0) {
          await this.record({ job: spec.name, occurrence: t, outcome: 'skipped', startedAt: null, finishedAt: null, fence: null, detail: `already finished on ${done.instance}` });
        }
        return;
      }
      await this.record({ job: spec.name, occurrence: t, outcome: 'running', startedAt, finishedAt: null, fence: lock.fence });
      const signal = AbortSignal.any([lock.signal, this.stopController.signal]);
      let outcome: RunOutcome = 'ran';
      let detail: string | undefined;
      try {
        await spec.handler({ job: spec.name, occurrence: new Date(t), fence: lock.fence, signal, instance: this.instance });
        if (lock.signal.aborted) outcome = 'lost';
      } catch (err) {
        outcome = lock.signal.aborted ? 'lost' : 'failed';
        detail = (err instanceof Error ? err.message : String(err)).slice(0, 500);
      }
      if (outcome === 'lost') detail ??= 'the occurrence lock ran out (lockAtMostForMs) while the job ran';
      await this.record({ job: spec.name, occurrence: t, outcome, startedAt, finishedAt: this.now(), fence: lock.fence, ...(detail ? { detail } : {}) });
      const holdFor = startedAt + spec.lockAtLeastForMs - this.now();
      if (holdFor > 0 && lock.held) await delay(holdFor, this.stopController.signal).catch(() => undefined);
    } finally {
      await lock.release().catch((err) => this.onError(err));
    }
  }
}
