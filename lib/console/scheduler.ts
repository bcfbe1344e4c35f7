import 'server-only';

/**
 * The scheduler view (`GET /api/scheduler`): per backend that keeps run records (RunStore), every
 * job with its schedule, instances, last and next occurrence, its recent occurrences (who ran
 * each, who skipped, what failed or was missed), failure counts, and whether it looks stuck.
 *
 * - Jobs are the registered ones (lib/scheduler announces each job with its schedule at start and
 *   every heartbeat) plus any job that only has run records (schedule unknown then).
 * - The next occurrence is computed here from the registered schedule, with the scheduler's own
 *   arithmetic (lib/scheduler/schedule.ts), by the console server's clock.
 * - An occurrence's state is the strongest of its instances' records: ran > failed > lost >
 *   running > skipped > missed.
 * - Stuck, either of:
 *   `lock-held`: an occurrence past its window (occurrence + graceMs) that no instance finished
 *   while its occurrence lock `job/<name>/<ISO time>` is held by someone who is not running it
 *   (no `running` record with the holder's fence): the instances skipped it and will not run it;
 *   `not-running`: the newest {@link NOT_RUNNING_STREAK} occurrences past their window were all
 *   skipped or missed, none ran.
 * - An instance is alive while its last announcement is younger than 2.5 heartbeats.
 */
import type { JobInfo, JobSchedule, LockBackend, RunOutcome, RunRecord, RunStore, RunStoreProvider } from '../locks/types';
import { describeSchedule, nextOccurrence, periodOf, previousOccurrences } from '../scheduler/schedule';
import { publicLock } from './inventory';
import { getRegistry } from './registry';

/** Occurrences shown per job. */
export const SHOWN_OCCURRENCES = 20;
/** Occurrences read per job for the failure counts. */
const COUNTED_OCCURRENCES = 100;
const NOT_RUNNING_STREAK = 3;
/** Expected occurrences (from the schedule) checked for a held lock, per job. */
const CHECKED_EXPECTED = 3;
const DEFAULT_HEARTBEAT_MS = 60_000;

export type OccurrenceState = RunOutcome;

export interface OccurrenceRun {
  instance: string;
  outcome: RunOutcome;
  startedAt: number | null;
  finishedAt: number | null;
  durationMs: number | null;
  fence: string | null;
  detail?: string;
}

export interface OccurrenceView {
  /** Scheduled time, epoch ms. */
  at: number;
  iso: string;
  state: OccurrenceState;
  /** The instance that ran it (ran / failed / lost / running), if any. */
  ranBy: string | null;
  fence: string | null;
  durationMs: number | null;
  /** Every instance's record, by instance. */
  runs: OccurrenceRun[];
}

export interface InstanceView {
  instance: string;
  /** Last announcement (null: only known from run records). */
  seenAt: number | null;
  /** null: not registered, so unknown. */
  alive: boolean | null;
  ran: number;
  skipped: number;
  failed: number;
  missed: number;
}

export interface StuckReason {
  kind: 'lock-held' | 'not-running';
  message: string;
  occurrence?: number;
  holder?: string | null;
  fence?: string | null;
}

export interface JobView {
  name: string;
  /** Announced by a scheduler instance (else: known only from run records). */
  registered: boolean;
  schedule: JobSchedule | null;
  scheduleText: string | null;
  lockAtMostForMs: number | null;
  lockAtLeastForMs: number | null;
  graceMs: number | null;
  instances: InstanceView[];
  /** The newest occurrence somebody ran (or runs). */
  lastRun: OccurrenceView | null;
  /** The newest occurrence with any record. */
  lastOccurrence: OccurrenceView | null;
  /** The next occurrence after now, by the server clock (null: schedule unknown). */
  next: number | null;
  /** Newest first, at most {@link SHOWN_OCCURRENCES}. */
  occurrences: OccurrenceView[];
  failures: { recent: number; of: number; consecutive: number };
  stuck: StuckReason[];
}

export interface SchedulerBackendView {
  backend: string;
  /** The store keeps job registrations (else jobs are known from run records only). */
  registration: boolean;
  jobs: JobView[];
}

export interface SchedulerOverview {
  now: number;
  backends: SchedulerBackendView[];
  /** Backends with a run store that could not be read now. */
  unavailable: Array<{ backend: string; error: string }>;
}

const RANK: Record<RunOutcome, number> = { ran: 0, failed: 1, lost: 2, running: 3, skipped: 4, missed: 5 };
const RAN: ReadonlySet<RunOutcome> = new Set(['ran', 'failed', 'lost', 'running']);
const TERMINAL: ReadonlySet<RunOutcome> = new Set(['ran', 'failed', 'lost']);

const stores = new WeakMap<LockBackend, RunStore>();

function runStoreOf(b: LockBackend): RunStore | null {
  const provider = b as LockBackend & Partial<RunStoreProvider>;
  if (typeof provider.runStore !== 'function') return null;
  let s = stores.get(b);
  if (!s) stores.set(b, (s = provider.runStore()));
  return s;
}

/** Whether backend `id` keeps run records (false also while it cannot be created). */
export function hasRunStore(id: string): boolean {
  const b = getRegistry().backendOf(id);
  return !!b && typeof (b as Partial<RunStoreProvider>).runStore === 'function';
}

function occurrenceView(at: number, records: RunRecord[]): OccurrenceView {
  const runs = records
    .map((r) => ({
      instance: r.instance,
      outcome: r.outcome,
      startedAt: r.startedAt,
      finishedAt: r.finishedAt,
      durationMs: r.startedAt !== null && r.finishedAt !== null ? r.finishedAt - r.startedAt : null,
      fence: r.fence,
      ...(r.detail ? { detail: r.detail } : {}),
    }))
    .sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0));
  const best = [...runs].sort((a, b) => RANK[a.outcome] - RANK[b.outcome])[0];
  const runner = best && RAN.has(best.outcome) ? best : null;
  return {
    at,
    iso: new Date(at).toISOString(),
    state: best?.outcome ?? 'missed',
    ranBy: runner?.instance ?? null,
    fence: runner?.fence ?? null,
    durationMs: runner?.durationMs ?? null,
    runs,
  };
}

async function jobView(backend: LockBackend, backendId: string, name: string, info: JobInfo | undefined, records: RunRecord[], now: number): Promise<JobView> {
  const byOcc = new Map<number, RunRecord[]>();
  for (const r of records) {
    let list = byOcc.get(r.occurrence);
    if (!list) byOcc.set(r.occurrence, (list = []));
    list.push(r);
  }
  const all = [...byOcc.entries()].sort((a, b) => b[0] - a[0]).map(([at, rs]) => occurrenceView(at, rs));
  const occurrences = all.slice(0, SHOWN_OCCURRENCES);
  const schedule = info?.schedule ?? null;
  const period = schedule ? periodOf(schedule, now) : null;
  const graceMs = info ? (info.graceMs ?? Math.min(info.lockAtMostForMs, period ?? info.lockAtMostForMs)) : null;
  const heartbeat = info?.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;

  // Instances: announced ones, then any that only left records.
  const instances = new Map<string, InstanceView>();
  for (const i of info?.instances ?? []) {
    instances.set(i.instance, { instance: i.instance, seenAt: i.seenAt, alive: now - i.seenAt <= heartbeat * 2.5 + 5000, ran: 0, skipped: 0, failed: 0, missed: 0 });
  }
  for (const o of occurrences) {
    for (const r of o.runs) {
      let v = instances.get(r.instance);
      if (!v) instances.set(r.instance, (v = { instance: r.instance, seenAt: null, alive: null, ran: 0, skipped: 0, failed: 0, missed: 0 }));
      if (r.outcome === 'ran') v.ran++;
      else if (r.outcome === 'skipped') v.skipped++;
      else if (r.outcome === 'failed' || r.outcome === 'lost') v.failed++;
      else if (r.outcome === 'missed') v.missed++;
    }
  }

  // Failures over the counted occurrences; the streak counts from the newest finished one.
  const finished = all.filter((o) => TERMINAL.has(o.state));
  let consecutive = 0;
  for (const o of finished) {
    if (o.state === 'ran') break;
    consecutive++;
  }
  const failures = { recent: finished.filter((o) => o.state !== 'ran').length, of: finished.length, consecutive };

  const stuck: StuckReason[] = [];
  if (graceMs !== null) {
    const pastWindow = (t: number) => t + graceMs < now;
    // Candidates: recorded occurrences nobody finished, and the newest expected ones.
    const candidates = new Set<number>();
    for (const o of occurrences) if (!TERMINAL.has(o.state) && pastWindow(o.at)) candidates.add(o.at);
    if (schedule) for (const t of previousOccurrences(schedule, now - graceMs - 1, CHECKED_EXPECTED)) candidates.add(t);
    for (const t of [...candidates].sort((a, b) => b - a)) {
      const o = byOcc.get(t);
      if (o?.some((r) => TERMINAL.has(r.outcome))) continue;
      const lock = await backend.get(`job/${name}/${new Date(t).toISOString()}`).catch(() => null);
      if (!lock) continue;
      const l = publicLock(lock, backendId);
      // Held by an instance that records running it (a long run): not stuck.
      if (o?.some((r) => r.outcome === 'running' && r.fence !== null && r.fence === l.fence)) continue;
      stuck.push({
        kind: 'lock-held',
        occurrence: t,
        holder: l.owner,
        fence: l.fence,
        message: `the occurrence of ${new Date(t).toISOString()} was not run within its window: its lock is held by ${l.owner ?? 'an unknown owner'}${l.fence ? ` (fence ${l.fence})` : ''}, and no instance runs it`,
      });
      break;
    }
    const settled = all.filter((o) => pastWindow(o.at) && o.state !== 'running').slice(0, NOT_RUNNING_STREAK);
    if (settled.length === NOT_RUNNING_STREAK && settled.every((o) => o.state === 'skipped' || o.state === 'missed')) {
      stuck.push({ kind: 'not-running', message: `the last ${NOT_RUNNING_STREAK} occurrences were all skipped or missed; none ran` });
    }
  }

  return {
    name,
    registered: !!info,
    schedule,
    scheduleText: schedule ? describeSchedule(schedule) : null,
    lockAtMostForMs: info?.lockAtMostForMs ?? null,
    lockAtLeastForMs: info?.lockAtLeastForMs ?? null,
    graceMs,
    instances: [...instances.values()].sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0)),
    lastRun: all.find((o) => RAN.has(o.state)) ?? null,
    lastOccurrence: all[0] ?? null,
    next: schedule ? nextOccurrence(schedule, now) : null,
    occurrences,
    failures,
    stuck,
  };
}

async function backendView(id: string, now: number): Promise<SchedulerBackendView | null> {
  const registry = getRegistry();
  if (!hasRunStore(id)) return null;
  return registry.call(
    id,
    'scheduler',
    async (b) => {
      const runs = runStoreOf(b)!;
      const infos = runs.listJobs ? await runs.listJobs() : [];
      const byName = new Map(infos.map((j) => [j.name, j]));
      const names = [...new Set([...byName.keys(), ...(await runs.jobs())])].sort();
      const jobs: JobView[] = [];
      for (const name of names) {
        const records = await runs.recent({ job: name, limit: COUNTED_OCCURRENCES });
        jobs.push(await jobView(b, id, name, byName.get(name), records, now));
      }
      return { backend: id, registration: typeof runs.listJobs === 'function', jobs };
    },
  );
}

/** `GET /api/scheduler?backend=`: every backend with a run store, or the one asked for. */
export async function getSchedulerOverview(opts: { backend?: string } = {}): Promise<SchedulerOverview> {
  const registry = getRegistry();
  const now = Date.now();
  if (opts.backend !== undefined) {
    registry.configOf(opts.backend); // unknown → 400
    const v = await backendView(opts.backend, now);
    return { now, backends: v ? [v] : [], unavailable: [] };
  }
  const unavailable: SchedulerOverview['unavailable'] = [];
  const views = await Promise.all(
    registry.ids().map(async (id) => {
      if (!hasRunStore(id)) return null;
      try {
        return await backendView(id, now);
      } catch (err) {
        unavailable.push({ backend: id, error: err instanceof Error ? err.message : String(err) });
        return null;
      }
    }),
  );
  unavailable.sort((a, b) => (a.backend < b.backend ? -1 : 1));
  return { now, backends: views.filter((v): v is SchedulerBackendView => v !== null), unavailable };
}
