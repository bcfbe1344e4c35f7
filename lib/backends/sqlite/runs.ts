import type Database from 'better-sqlite3';

import type { RunRecord, RunStore } from '../../locks/types';

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
}
