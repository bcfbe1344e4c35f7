/**
 * The scheduler's run records in Redis, beside the locks:
 *   P:runs:{job}        zset  occurrence (ms) -> occurrence: which occurrences have records
 *   P:runs:{job}:<occ>  hash  instance -> JSON RunRecord
 *   P:runs              set   job names (another slot in a Cluster: written beside, a hint)
 *   P:jobs              hash  job name -> JSON definition (schedule, lockAtMostFor...; newest wins)
 *   P:jobs:{job}:seen   zset  instance -> epoch ms it last announced the job
 * A job's keys share the `{job}` hash tag, so PUT is one script in one slot. It keeps the newest
 * `retain` occurrences of the job and deletes the older ones' hashes.
 */
import type { JobInfo, JobRegistration, RunRecord, RunStore } from '../../locks/types';
import type { Conn } from './node';

const PUT = `
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[3])
local extra = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if extra > 0 then
  local old = redis.call('ZRANGE', KEYS[1], 0, extra - 1)
  for _, occ in ipairs(old) do redis.call('DEL', ARGV[5] .. occ) end
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, extra - 1)
end
return 1
`;

type ScriptedConn = Conn & { ldRunPut(...args: (string | number)[]): Promise<unknown> };

export class RedisRunStore implements RunStore {
  private readonly cmd: ScriptedConn;

  constructor(
    cmd: Conn,
    private readonly prefix: string,
    private readonly retain: number,
  ) {
    this.cmd = cmd as ScriptedConn;
    if (!this.cmd.ldRunPut) this.cmd.defineCommand('ldRunPut', { numberOfKeys: 2, lua: PUT });
  }

  private base(job: string): string {
    return `${this.prefix}:runs:{${job}}`;
  }

  async put(run: RunRecord): Promise<void> {
    const base = this.base(run.job);
    await this.cmd.ldRunPut(base, `${base}:${run.occurrence}`, run.instance, JSON.stringify(run), run.occurrence, this.retain, `${base}:`);
    await this.cmd.sadd(`${this.prefix}:runs`, run.job);
  }

  async occurrence(job: string, occurrence: number): Promise<RunRecord[]> {
    const h = await this.cmd.hgetall(`${this.base(job)}:${occurrence}`);
    return Object.values(h)
      .map((v) => JSON.parse(v) as RunRecord)
      .sort((a, b) => a.instance.localeCompare(b.instance));
  }

  async recent(opts: { job?: string; limit?: number } = {}): Promise<RunRecord[]> {
    const limit = Math.max(1, Math.min(opts.limit ?? 50, 10_000));
    const jobs = opts.job ? [opts.job] : await this.jobs();
    const out: RunRecord[] = [];
    for (const job of jobs) {
      const occs = await this.cmd.zrevrange(this.base(job), 0, limit - 1);
      if (occs.length === 0) continue;
      const pipe = this.cmd.pipeline();
      for (const occ of occs) pipe.hgetall(`${this.base(job)}:${occ}`);
      for (const [err, h] of (await pipe.exec()) ?? []) {
        if (err) throw err;
        for (const v of Object.values(h as Record<string, string>)) out.push(JSON.parse(v) as RunRecord);
      }
    }
    return out.sort((a, b) => b.occurrence - a.occurrence || a.job.localeCompare(b.job) || a.instance.localeCompare(b.instance));
  }

  async jobs(): Promise<string[]> {
    return (await this.cmd.smembers(`${this.prefix}:runs`)).sort();
  }

  private seenKey(job: string): string {
    return `${this.prefix}:jobs:{${job}}:seen`;
  }

  async putJob(job: JobRegistration): Promise<void> {
    const { instance, seenAt, name, ...def } = job;
    // The definition carries its own time, so a late, older announcement cannot undo a newer one.
    const prev = await this.cmd.hget(`${this.prefix}:jobs`, name);
    const prevAt = prev ? Number((JSON.parse(prev) as { updatedAt?: number }).updatedAt ?? 0) : 0;
    if (seenAt >= prevAt) await this.cmd.hset(`${this.prefix}:jobs`, name, JSON.stringify({ ...def, updatedAt: seenAt }));
    const seen = this.seenKey(name);
    await this.cmd.zadd(seen, 'GT', seenAt, instance).catch(() => this.cmd.zadd(seen, seenAt, instance));
    await this.cmd.zremrangebyscore(seen, '-inf', seenAt - INSTANCE_RETENTION_MS);
  }

  async listJobs(): Promise<JobInfo[]> {
    const defs = await this.cmd.hgetall(`${this.prefix}:jobs`);
    const names = Object.keys(defs).sort();
    const seen = await Promise.all(names.map((n) => this.cmd.zrevrange(this.seenKey(n), 0, 999, 'WITHSCORES')));
    return names.map((name, i) => {
      const { updatedAt, ...def } = JSON.parse(defs[name]!) as Omit<JobInfo, 'name' | 'instances'>;
      const flat = seen[i]!;
      const instances: JobInfo['instances'] = [];
      for (let j = 0; j + 1 < flat.length; j += 2) instances.push({ instance: flat[j]!, seenAt: Number(flat[j + 1]) });
      return { ...def, name, updatedAt, instances };
    });
  }
}

/** Instances that have not announced a job for this long are forgotten. */
const INSTANCE_RETENTION_MS = 7 * 24 * 3600_000;
