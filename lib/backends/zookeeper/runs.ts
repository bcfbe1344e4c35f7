/**
 * The scheduler's run records and job registrations in ZooKeeper, in persistent nodes beside the
 * backend's first root (never under a lock root, so they are not lock paths):
 *
 *   <parent>/lockdeck-runs/<base>                  the store of the backend whose roots[0] is
 *                                                  `<parent>/<base>` ("/locks" -> "/lockdeck-runs/locks",
 *                                                  "/app/locks" -> "/app/lockdeck-runs/locks",
 *                                                  "/" -> "/lockdeck-runs/%2F")
 *     <job>                                        data: the job's registration JSON, or empty while
 *                                                  the job has records but no registration:
 *                                                  { ...definition (schedule, lockAtMostForMs...),
 *                                                    updatedAt, instances: { <instance>: seenAt } }
 *       <occurrence>                               epoch ms, zero-padded to 16 digits (lexical order
 *                                                  = time order); no data
 *         <instance>                               data: the RunRecord JSON
 *
 * `<job>`, `<instance>` and `<base>` are percent-encoded (encodeURIComponent, "." as %2E), so any
 * name is one valid znode name. The name `lockdeck-runs` is reserved: the inspector never descends
 * into a node of that name and lock names may not contain it as a segment (index.ts), so run records
 * are never listed as locks even when a root is an ancestor of the store.
 *
 * Semantics are the Redis and SQLite stores':
 * - put: setData, else create (NO_NODE: make the parents and create again; NODE_EXISTS: another
 *   writer was first, set it), retried a few times against a concurrent prune of the occurrence;
 *   then keeps the newest `retain` occurrences of the job, deleting older occurrence subtrees
 *   (children first; NO_NODE from a concurrent pruner is fine; NOT_EMPTY from a concurrent put is
 *   retried once, else left for the next prune).
 * - putJob: read-modify-write of the job node, conditioned on its version (BAD_VERSION: read
 *   again). The definition carries its time: a late, older announcement cannot undo a newer one.
 *   The instance's seenAt only grows; instances unseen for 7 days before this announcement are
 *   dropped.
 * - jobs(): jobs with at least one occurrence; listJobs(): jobs with a registration.
 * Every call is bounded by the session's op timeout and fails with BackendUnavailableError.
 */
import { BackendUnavailableError, InvalidArgumentError } from '../../locks/errors';
import type { JobInfo, JobRegistration, RunRecord, RunStore } from '../../locks/types';
import { batched, CreateMode, isBadVersion, isNodeExists, isNoNode, isNotEmpty, unavailable, type NodeStat, type ZkSession } from './session';

/** The reserved node name of run stores (see the header). */
export const RUNS_DIR = 'lockdeck-runs';

/** Instances that have not announced a job for this long are forgotten. */
const INSTANCE_RETENTION_MS = 7 * 24 * 3600_000;
const OCC_DIGITS = 16;
const OCC_NAME = /^\d{16}$/;
const MAX_TRIES = 8;

/** A node name for any string: percent-encoded, with "." encoded too (no "." or ".." names). */
export function encodeName(s: string): string {
  return encodeURIComponent(s).replace(/\./g, '%2E');
}

function decodeName(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The run store's node for a backend whose first root is `root` (an absolute, valid path). */
export function runsPathOf(root: string): string {
  const cut = root.lastIndexOf('/');
  const parent = root.slice(0, cut);
  const base = root.slice(cut + 1) || '/';
  return `${parent}/${RUNS_DIR}/${encodeName(base)}`;
}

function occName(occurrence: number): string {
  if (!Number.isSafeInteger(occurrence) || occurrence < 0) throw new InvalidArgumentError(`occurrence must be a non-negative integer (epoch ms), got ${String(occurrence)}`);
  return String(occurrence).padStart(OCC_DIGITS, '0');
}

/** What the job node's data holds. */
interface StoredJob extends Omit<JobInfo, 'name' | 'instances'> {
  instances: Record<string, number>;
}

function parseJob(data: Buffer): StoredJob | null {
  if (!data.length) return null;
  try {
    const v = JSON.parse(data.toString('utf8')) as Partial<StoredJob>;
    if (!v || typeof v !== 'object' || typeof v.updatedAt !== 'number' || !v.schedule) return null;
    return { ...v, instances: v.instances && typeof v.instances === 'object' ? v.instances : {} } as StoredJob;
  } catch {
    return null;
  }
}

export class ZooKeeperRunStore implements RunStore {
  constructor(
    private readonly zk: ZkSession,
    /** The store's node (runsPathOf(roots[0])). */
    readonly path: string,
    private readonly retain: number,
    private readonly assertOpen: () => void = () => undefined,
    /**
     * The lock path of an occurrence (the scheduler's `job/<name>/<ISO time>`). A pruned
     * occurrence's lock parent is deleted too, when empty: our parents are persistent (no
     * container nodes in the 3.4 protocol), so without this every occurrence would leave one node
     * behind forever. Safe for fencing: a pruned occurrence is far past its grace, so its lock is
     * never taken again (and a parent with a contender in it is NOT_EMPTY, left alone).
     */
    private readonly occurrenceLockPath?: (job: string, occurrence: number) => string,
  ) {}

  private jobDir(job: string): string {
    if (typeof job !== 'string' || !job) throw new InvalidArgumentError('job must be a non-empty string');
    return `${this.path}/${encodeName(job)}`;
  }

  async put(run: RunRecord): Promise<void> {
    this.assertOpen();
    const jobDir = this.jobDir(run.job);
    const occDir = `${jobDir}/${occName(run.occurrence)}`;
    const node = `${occDir}/${encodeName(run.instance)}`;
    const data = Buffer.from(JSON.stringify(run));
    try {
      for (let attempt = 1; ; attempt++) {
        if (attempt > MAX_TRIES) throw new BackendUnavailableError(`cannot write the run record ${node}: it keeps being deleted (pruned) and recreated`);
        try {
          await this.zk.setData(node, data);
          break;
        } catch (err) {
          if (!isNoNode(err)) throw err;
        }
        try {
          await this.zk.create(node, data, CreateMode.PERSISTENT);
          break;
        } catch (err) {
          if (isNodeExists(err)) continue; // another writer of the same record was first: set it
          if (!isNoNode(err)) throw err;
        }
        // A parent is missing (first record of the occurrence, or pruned meanwhile).
        await this.zk.mkdirp(occDir);
      }
      await this.prune(jobDir, run.job);
    } catch (err) {
      throw unavailable(err, `cannot write the run record of ${run.job} ${run.occurrence}`);
    }
  }

  /** Keeps the newest `retain` occurrences of the job. */
  private async prune(jobDir: string, job: string): Promise<void> {
    let children: string[];
    try {
      ({ children } = await this.zk.getChildren(jobDir));
    } catch (err) {
      if (isNoNode(err)) return;
      throw err;
    }
    const occs = children.filter((c) => OCC_NAME.test(c)).sort();
    const old = occs.slice(0, Math.max(0, occs.length - this.retain));
    await batched(old, async (o) => {
      await this.removeTree(`${jobDir}/${o}`);
      let lock: string | undefined;
      try {
        lock = this.occurrenceLockPath?.(job, Number(o));
      } catch {
        // A job name that makes no valid lock path never had a lock parent.
      }
      if (lock) await this.removeIfEmpty(lock);
    });
  }

  private async removeIfEmpty(path: string): Promise<void> {
    try {
      await this.zk.remove(path);
    } catch (err) {
      if (!isNoNode(err) && !isNotEmpty(err)) throw err;
    }
  }

  private async removeTree(dir: string): Promise<void> {
    for (let pass = 0; pass < 2; pass++) {
      let children: string[];
      try {
        ({ children } = await this.zk.getChildren(dir));
      } catch (err) {
        if (isNoNode(err)) return;
        throw err;
      }
      await Promise.all(children.map((c) => this.removeQuietly(`${dir}/${c}`)));
      try {
        await this.zk.remove(dir);
        return;
      } catch (err) {
        if (isNoNode(err)) return;
        if (!isNotEmpty(err)) throw err;
        // A record was written meanwhile: once more, then the next prune.
      }
    }
  }

  private async removeQuietly(path: string): Promise<void> {
    try {
      await this.zk.remove(path);
    } catch (err) {
      if (!isNoNode(err)) throw err;
    }
  }

  private async childrenOrEmpty(path: string): Promise<string[]> {
    try {
      return (await this.zk.getChildren(path)).children;
    } catch (err) {
      if (isNoNode(err)) return [];
      throw err;
    }
  }

  private async dataOrNull(path: string): Promise<{ data: Buffer; stat: NodeStat } | null> {
    try {
      return await this.zk.getData(path);
    } catch (err) {
      if (isNoNode(err)) return null;
      throw err;
    }
  }

  /** The records under one occurrence node. */
  private async records(occDir: string): Promise<RunRecord[]> {
    const names = await this.childrenOrEmpty(occDir);
    const got = await batched(names, (n) => this.dataOrNull(`${occDir}/${n}`));
    const out: RunRecord[] = [];
    for (const g of got) {
      if (!g || !g.data.length) continue;
      try {
        out.push(JSON.parse(g.data.toString('utf8')) as RunRecord);
      } catch {
        // Not a record of ours: ignored.
      }
    }
    return out;
  }

  async occurrence(job: string, occurrence: number): Promise<RunRecord[]> {
    this.assertOpen();
    const occDir = `${this.jobDir(job)}/${occName(occurrence)}`;
    try {
      return (await this.records(occDir)).sort((a, b) => a.instance.localeCompare(b.instance));
    } catch (err) {
      throw unavailable(err, `cannot read the run records of ${job} ${occurrence}`);
    }
  }

  async recent(opts: { job?: string; limit?: number } = {}): Promise<RunRecord[]> {
    this.assertOpen();
    const limit = Math.max(1, Math.min(opts.limit ?? 50, 10_000));
    try {
      const jobs = opts.job ? [opts.job] : await this.jobs();
      const out: RunRecord[] = [];
      for (const job of jobs) {
        const jobDir = this.jobDir(job);
        const occs = (await this.childrenOrEmpty(jobDir))
          .filter((c) => OCC_NAME.test(c))
          .sort()
          .reverse()
          .slice(0, limit);
        for (const recs of await batched(occs, (o) => this.records(`${jobDir}/${o}`))) out.push(...recs);
      }
      return out.sort((a, b) => b.occurrence - a.occurrence || a.job.localeCompare(b.job) || a.instance.localeCompare(b.instance));
    } catch (err) {
      throw unavailable(err, 'cannot read the run records');
    }
  }

  async jobs(): Promise<string[]> {
    this.assertOpen();
    try {
      const names = await this.childrenOrEmpty(this.path);
      const stats = await batched(names, async (n) => {
        try {
          return await this.zk.exists(`${this.path}/${n}`);
        } catch (err) {
          if (isNoNode(err)) return null;
          throw err;
        }
      });
      return names
        .filter((_, i) => (stats[i]?.numChildren ?? 0) > 0)
        .map(decodeName)
        .sort();
    } catch (err) {
      throw unavailable(err, 'cannot list the jobs with run records');
    }
  }

  async putJob(job: JobRegistration): Promise<void> {
    this.assertOpen();
    const { instance, seenAt, name, ...def } = job;
    const path = this.jobDir(name);
    const merge = (prev: StoredJob | null): Buffer => {
      // The definition carries its own time, so a late, older announcement cannot undo a newer one.
      const base: Omit<StoredJob, 'instances'> =
        prev && seenAt < prev.updatedAt ? (({ instances: _, ...rest }) => rest)(prev) : { ...def, updatedAt: seenAt };
      const instances: Record<string, number> = {};
      for (const [i, at] of Object.entries(prev?.instances ?? {})) if (typeof at === 'number' && at >= seenAt - INSTANCE_RETENTION_MS) instances[i] = at;
      instances[instance] = Math.max(instances[instance] ?? -Infinity, seenAt);
      return Buffer.from(JSON.stringify({ ...base, instances }));
    };
    try {
      for (let attempt = 1; ; attempt++) {
        if (attempt > MAX_TRIES) throw new BackendUnavailableError(`cannot register job "${name}": its node keeps changing under us`);
        const cur = await this.dataOrNull(path);
        if (!cur) {
          try {
            await this.zk.create(path, merge(null), CreateMode.PERSISTENT);
            return;
          } catch (err) {
            if (isNodeExists(err)) continue;
            if (!isNoNode(err)) throw err;
            await this.zk.mkdirp(this.path);
            continue;
          }
        }
        try {
          await this.zk.setData(path, merge(parseJob(cur.data)), cur.stat.version);
          return;
        } catch (err) {
          if (!isBadVersion(err) && !isNoNode(err)) throw err;
        }
      }
    } catch (err) {
      throw unavailable(err, `cannot register job "${name}"`);
    }
  }

  async listJobs(): Promise<JobInfo[]> {
    this.assertOpen();
    try {
      const names = await this.childrenOrEmpty(this.path);
      const got = await batched(names, (n) => this.dataOrNull(`${this.path}/${n}`));
      const out: JobInfo[] = [];
      names.forEach((n, i) => {
        const stored = got[i] ? parseJob(got[i]!.data) : null;
        if (!stored) return;
        const { instances, ...def } = stored;
        out.push({
          ...def,
          name: decodeName(n),
          instances: Object.entries(instances)
            .map(([instance, seenAt]) => ({ instance, seenAt }))
            .sort((a, b) => b.seenAt - a.seenAt || a.instance.localeCompare(b.instance)),
        });
      });
      return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    } catch (err) {
      throw unavailable(err, 'cannot list the registered jobs');
    }
  }
}

