import type Database from 'better-sqlite3';

import type { JobInfo, JobRegistration, RunRecord, RunStore } from '../../locks/types';

interface RunRow {
  job: string;
  occurrence: number;
  instance: string;
  outcome: RunRecord['outcome'];
  started_at: number | null;
  finished_at: number | null;
  fence: string | null;
  detail: string | null;
}

const toRecord = (r: RunRow): RunRecord => ({
  job: r.job,
  occurrence: r.occurrence,
  instance: r.instance,
  outcome: r.outcome,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  fence: r.fence,
  ...(r.detail ? { detail: r.detail } : {}),
});

/** The scheduler's run records in the embedded store's `job_runs` table (schema.ts). */
export class SqliteRunStore implements RunStore {
  private readonly upsert: Database.Statement;
  private readonly prune: Database.Statement;
  private readonly byOccurrence: Database.Statement;
  private readonly recentForJob: Database.Statement;
  private readonly jobNames: Database.Statement;
  private readonly upsertJob: Database.Statement;
  private readonly upsertInstance: Database.Statement;
  private readonly forgetInstances: Database.Statement;
  private readonly allJobs: Database.Statement;
  private readonly allInstances: Database.Statement;

  constructor(
    private readonly db: Database.Database,
    private readonly retain: number,
  ) {
    this.upsert = db.prepare(`INSERT INTO job_runs (job, occurrence, instance, outcome, started_at, finished_at, fence, detail)
      VALUES (@job, @occurrence, @instance, @outcome, @startedAt, @finishedAt, @fence, @detail)
      ON CONFLICT (job, occurrence, instance) DO UPDATE SET outcome = excluded.outcome, started_at = excluded.started_at,
        finished_at = excluded.finished_at, fence = excluded.fence, detail = excluded.detail`);
    // Keep the newest `retain` occurrences of the job.
    this.prune = db.prepare(`DELETE FROM job_runs WHERE job = ? AND occurrence < (
      SELECT MIN(occurrence) FROM (SELECT DISTINCT occurrence FROM job_runs WHERE job = ? ORDER BY occurrence DESC LIMIT ?))`);
    this.byOccurrence = db.prepare('SELECT * FROM job_runs WHERE job = ? AND occurrence = ? ORDER BY instance');
    this.recentForJob = db.prepare(`SELECT * FROM job_runs WHERE job = ? AND occurrence >= COALESCE((
      SELECT MIN(occurrence) FROM (SELECT DISTINCT occurrence FROM job_runs WHERE job = ? ORDER BY occurrence DESC LIMIT ?)), 0)
      ORDER BY occurrence DESC, instance`);
    this.jobNames = db.prepare('SELECT DISTINCT job FROM job_runs ORDER BY job');
    // The newest announcement's definition wins (an older one arriving late does not undo it).
    this.upsertJob = db.prepare(`INSERT INTO jobs (name, spec, updated_at) VALUES (?, ?, ?)
      ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at WHERE excluded.updated_at >= jobs.updated_at`);
    this.upsertInstance = db.prepare(`INSERT INTO job_instances (job, instance, seen_at) VALUES (?, ?, ?)
      ON CONFLICT (job, instance) DO UPDATE SET seen_at = MAX(seen_at, excluded.seen_at)`);
    this.forgetInstances = db.prepare('DELETE FROM job_instances WHERE job = ? AND seen_at < ?');
    this.allJobs = db.prepare('SELECT name, spec, updated_at FROM jobs ORDER BY name');
    this.allInstances = db.prepare('SELECT job, instance, seen_at FROM job_instances ORDER BY job, seen_at DESC, instance');
  }

  async put(run: RunRecord): Promise<void> {
    this.db
      .transaction(() => {
        this.upsert.run({ ...run, detail: run.detail ?? null });
        this.prune.run(run.job, run.job, this.retain);
      })
      .immediate();
  }

  async occurrence(job: string, occurrence: number): Promise<RunRecord[]> {
    return (this.byOccurrence.all(job, occurrence) as RunRow[]).map(toRecord);
  }

  async recent(opts: { job?: string; limit?: number } = {}): Promise<RunRecord[]> {
    const limit = Math.max(1, Math.min(opts.limit ?? 50, 10_000));
    const jobs = opts.job ? [opts.job] : await this.jobs();
    const rows = jobs.flatMap((j) => this.recentForJob.all(j, j, limit) as RunRow[]);
    rows.sort((a, b) => b.occurrence - a.occurrence || a.job.localeCompare(b.job) || a.instance.localeCompare(b.instance));
    return rows.map(toRecord);
  }

  async jobs(): Promise<string[]> {
    return (this.jobNames.all() as { job: string }[]).map((r) => r.job);
  }

  async putJob(job: JobRegistration): Promise<void> {
    const { instance, seenAt, name, ...def } = job;
    this.db
      .transaction(() => {
        this.upsertJob.run(name, JSON.stringify(def), seenAt);
        this.upsertInstance.run(name, instance, seenAt);
        this.forgetInstances.run(name, seenAt - INSTANCE_RETENTION_MS);
      })
      .immediate();
  }

  async listJobs(): Promise<JobInfo[]> {
    const instances = new Map<string, JobInfo['instances']>();
    for (const r of this.allInstances.all() as { job: string; instance: string; seen_at: number }[]) {
      let list = instances.get(r.job);
      if (!list) instances.set(r.job, (list = []));
      list.push({ instance: r.instance, seenAt: r.seen_at });
    }
    return (this.allJobs.all() as { name: string; spec: string; updated_at: number }[]).map((r) => ({
      ...(JSON.parse(r.spec) as Omit<JobInfo, 'name' | 'updatedAt' | 'instances'>),
      name: r.name,
      updatedAt: r.updated_at,
      instances: instances.get(r.name) ?? [],
    }));
  }
}

/** Instances that have not announced a job for this long are forgotten. */
const INSTANCE_RETENTION_MS = 7 * 24 * 3600_000;
