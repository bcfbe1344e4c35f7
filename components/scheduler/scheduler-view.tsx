'use client';

import { useQuery } from '@tanstack/react-query';

import { Badge } from '@/components/ui/badge';
import { Callout } from '@/components/ui/callout';
import { Card, CardContent, CardHeader, CardTitle } from '@/components/ui/card';
import { EmptyState } from '@/components/ui/empty-state';
import { Skeleton } from '@/components/ui/skeleton';
import { Table, TBody, TD, TH, THead, TR } from '@/components/ui/table';
import { useServerNow } from '@/lib/client/clock';
import { formatAgo, formatDuration, formatMs, formatTime, isoTime, plural } from '@/lib/client/format';
import { schedulerQuery } from '@/lib/client/queries';
import type { JobView, OccurrenceState, OccurrenceView, SchedulerBackendView } from '@/lib/client/types';
import { cn } from '@/lib/utils';

/**
 * `/scheduler`: per backend that keeps run records, every job with its schedule, last and next
 * run (a countdown by the server's clock), failures and a stuck badge, then each job's recent
 * occurrences as a grid: occurrence time × instance, one icon per record.
 */
export function SchedulerView() {
  const q = useQuery(schedulerQuery());
  const data = q.data;
  return (
    <div className="space-y-6">
      <div>
        <h1 className="text-2xl font-semibold tracking-tight">Scheduler</h1>
        <p className="text-sm text-muted-foreground">
          Jobs that run once per occurrence across instances (lib/scheduler): who ran each occurrence, who skipped it, and what looks stuck.
        </p>
      </div>
      {q.isError && !data && (
        <Callout tone="danger" role="alert" title="The scheduler state could not be loaded">
          {q.error.message}
        </Callout>
      )}
      {data?.unavailable.map((u) => (
        <Callout key={u.backend} tone="warning" title={`Backend ${u.backend}: run records unavailable`}>
          {u.error}
        </Callout>
      ))}
      {!data && !q.isError && (
        <div className="space-y-2" role="status" aria-label="Loading">
          <Skeleton className="h-10 w-full" />
          <Skeleton className="h-40 w-full" />
        </div>
      )}
      {data && data.backends.length === 0 && data.unavailable.length === 0 && (
        <Card>
          <CardContent>
            <EmptyState title="No backend keeps run records">The scheduler keeps its records in Redis or SQLite backends; none is configured.</EmptyState>
          </CardContent>
        </Card>
      )}
      {data?.backends.map((b) => (
        <BackendJobs key={b.backend} view={b} />
      ))}
    </div>
  );
}

function BackendJobs({ view }: { view: SchedulerBackendView }) {
  const stuck = view.jobs.filter((j) => j.stuck.length > 0).length;
  return (
    <section aria-labelledby={`sched-${view.backend}`} className="space-y-4" data-testid="scheduler-backend" data-backend={view.backend}>
      <Card>
        <CardHeader>
          <CardTitle id={`sched-${view.backend}`}>
            Jobs on <span className="font-mono">{view.backend}</span>
          </CardTitle>
          <span className="text-xs text-muted-foreground">
            {plural(view.jobs.length, 'job')}
            {stuck > 0 && ` · ${stuck} stuck`}
          </span>
        </CardHeader>
        <CardContent flush>
          {view.jobs.length === 0 ? (
            <EmptyState title="No jobs yet" className="py-6">No scheduler instance has registered a job or recorded a run on this backend.</EmptyState>
          ) : (
            <JobsTable jobs={view.jobs} />
          )}
        </CardContent>
      </Card>
      {view.jobs.length > 0 && <Legend />}
      <div className="grid gap-4 xl:grid-cols-2">
        {view.jobs.map((j) => (
          <OccurrenceGrid key={j.name} job={j} />
        ))}
      </div>
    </section>
  );
}

const OUTCOME_TONE: Record<OccurrenceState, 'success' | 'danger' | 'warning' | 'info' | 'neutral'> = {
  ran: 'success',
  failed: 'danger',
  lost: 'danger',
  running: 'info',
  skipped: 'neutral',
  missed: 'warning',
};

function JobsTable({ jobs }: { jobs: JobView[] }) {
  const now = useServerNow();
  return (
    <Table aria-label="Jobs" data-testid="jobs-table">
      <THead>
        <TR>
          <TH>Job</TH>
          <TH>Schedule</TH>
          <TH>Last run</TH>
          <TH>Next run</TH>
          <TH className="text-right">Failures</TH>
          <TH>Instances</TH>
          <TH>Status</TH>
        </TR>
      </THead>
      <TBody>
        {jobs.map((j) => {
          const alive = j.instances.filter((i) => i.alive).length;
          return (
            <TR key={j.name} data-job={j.name}>
              <TD className="font-mono text-[13px] font-medium">
                <a href={`#job-${encodeURIComponent(j.name)}`} className="hover:underline">
                  {j.name}
                </a>
              </TD>
              <TD>
                {j.scheduleText ?? <span className="text-muted-foreground">unknown (not registered)</span>}
                {j.schedule?.cron && <span className="block font-mono text-xs text-muted-foreground">{j.schedule.cron}</span>}
              </TD>
              <TD>
                {j.lastRun ? (
                  <span className="flex flex-wrap items-center gap-x-2 gap-y-0.5">
                    <Badge tone={OUTCOME_TONE[j.lastRun.state]}>{j.lastRun.state}</Badge>
                    <span className="font-mono text-xs">{j.lastRun.ranBy}</span>
                    <time dateTime={j.lastRun.iso} className="text-xs text-muted-foreground" title={j.lastRun.iso}>
                      {now ? formatAgo(now - j.lastRun.at) : formatTime(j.lastRun.at)}
                      {j.lastRun.durationMs !== null && ` · took ${formatMs(j.lastRun.durationMs)}`}
                    </time>
                  </span>
                ) : (
                  <span className="text-muted-foreground">never</span>
                )}
              </TD>
              <TD className="tabular-nums" data-testid="next-run">
                {j.next === null ? (
                  <span className="text-muted-foreground">—</span>
                ) : (
                  <time dateTime={isoTime(j.next)} title={isoTime(j.next)}>
                    {now === 0 ? formatTime(j.next) : j.next - now >= 1000 ? `in ${formatDuration(j.next - now)}` : 'due now'}
                    <span className="ml-1.5 text-xs text-muted-foreground">{formatTime(j.next)}</span>
                  </time>
                )}
              </TD>
              <TD className={cn('text-right tabular-nums', j.failures.recent > 0 && 'font-medium text-red-700 dark:text-red-300')} title={`${j.failures.recent} of the last ${j.failures.of} finished runs failed or lost their lock`}>
                {j.failures.recent}
                <span className="font-normal text-muted-foreground"> / {j.failures.of}</span>
              </TD>
              <TD className="text-xs">
                {j.instances.length === 0 ? (
                  <span className="text-muted-foreground">none</span>
                ) : (
                  <span title={j.instances.map((i) => `${i.instance}: ${i.alive === null ? 'seen in run records' : i.alive ? 'alive' : 'not seen lately'}`).join('\n')}>
                    {j.instances.some((i) => i.alive !== null) ? `${alive} of ${j.instances.length} alive` : plural(j.instances.length, 'instance')}
                  </span>
                )}
              </TD>
              <TD>
                {j.stuck.length > 0 ? (
                  <Badge tone="danger" title={j.stuck.map((s) => s.message).join('\n')} data-testid="stuck-badge">
                    stuck
                  </Badge>
                ) : j.failures.consecutive >= 2 ? (
                  <Badge tone="warning">failing ×{j.failures.consecutive}</Badge>
                ) : (
                  <Badge tone="success">ok</Badge>
                )}
              </TD>
            </TR>
          );
        })}
      </TBody>
    </Table>
  );
}

// ---- occurrence grid ------------------------------------------------------------------------

const CELL: Record<OccurrenceState, { symbol: string; label: string; className: string }> = {
  ran: { symbol: '✓', label: 'ran', className: 'bg-emerald-500 text-white dark:bg-emerald-500/90' },
  failed: { symbol: '✕', label: 'failed', className: 'bg-red-600 text-white dark:bg-red-500' },
  lost: { symbol: '!', label: 'lost its lock', className: 'bg-white text-red-700 ring-2 ring-red-500 ring-inset dark:bg-transparent dark:text-red-300' },
  running: { symbol: '▶', label: 'running', className: 'bg-sky-500 text-white motion-safe:animate-pulse' },
  skipped: { symbol: '–', label: 'skipped (another instance had the lock)', className: 'bg-zinc-200 text-zinc-600 dark:bg-zinc-700 dark:text-zinc-300' },
  missed: { symbol: '○', label: 'missed (too late to start)', className: 'text-amber-600 ring-2 ring-amber-500 ring-inset ring-dashed dark:text-amber-300' },
};

function Legend() {
  return (
    <ul className="flex flex-wrap items-center gap-x-4 gap-y-1 text-xs text-muted-foreground" aria-label="Legend" data-testid="grid-legend">
      {(Object.keys(CELL) as OccurrenceState[]).map((s) => (
        <li key={s} className="flex items-center gap-1.5">
          <span aria-hidden="true" className={cn('inline-flex size-4 items-center justify-center rounded-sm text-[10px] leading-none font-bold', CELL[s].className)}>
            {CELL[s].symbol}
          </span>
          {CELL[s].label}
        </li>
      ))}
      <li className="flex items-center gap-1.5">
        <span aria-hidden="true" className="inline-flex size-4 items-center justify-center text-muted-foreground">·</span>
        no record
      </li>
    </ul>
  );
}

function OccurrenceGrid({ job }: { job: JobView }) {
  // Oldest on the left, newest on the right, like a timeline.
  const occ = [...job.occurrences].reverse();
  const instances = job.instances.map((i) => i.instance);
  return (
    <Card id={`job-${encodeURIComponent(job.name)}`} className="scroll-mt-20" data-testid="occurrence-grid" data-job={job.name}>
      <CardHeader>
        <CardTitle className="font-mono">{job.name}</CardTitle>
        <span className="text-xs text-muted-foreground">{job.scheduleText ?? 'schedule unknown'}</span>
      </CardHeader>
      <CardContent className="space-y-3">
        {job.stuck.map((s, i) => (
          <Callout key={i} tone="danger" title={s.kind === 'lock-held' ? 'Stuck: its occurrence lock is held' : 'Stuck: not running'}>
            {s.message}
          </Callout>
        ))}
        {occ.length === 0 ? (
          <p className="text-sm text-muted-foreground">No occurrence has run yet{job.next ? `; the first is due at ${formatTime(job.next)}` : ''}.</p>
        ) : (
          <div className="overflow-x-auto">
            <table className="border-separate border-spacing-1 text-xs">
              <caption className="sr-only">
                Recent occurrences of {job.name}: one column per occurrence, oldest first; one row per instance.
              </caption>
              <thead>
                <tr>
                  <th scope="col" className="pr-2 text-left font-medium text-muted-foreground">
                    Instance
                  </th>
                  {occ.map((o) => (
                    <th key={o.at} scope="col" className="h-14 w-5 align-bottom font-normal text-muted-foreground">
                      <time dateTime={o.iso} title={`${o.iso} · ${o.state}${o.ranBy ? ` by ${o.ranBy}` : ''}`} className="inline-block origin-bottom-left translate-x-3 -rotate-60 whitespace-nowrap tabular-nums">
                        {formatTime(o.at)}
                      </time>
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {instances.map((inst) => {
                  const info = job.instances.find((i) => i.instance === inst);
                  return (
                    <tr key={inst} data-instance={inst}>
                      <th scope="row" className="pr-2 text-left font-mono font-normal whitespace-nowrap">
                        <span
                          aria-hidden="true"
                          className={cn('mr-1.5 inline-block size-1.5 rounded-full align-middle', info?.alive ? 'bg-emerald-500' : info?.alive === false ? 'bg-zinc-400' : 'bg-transparent')}
                        />
                        {inst}
                        {info?.alive === false && <span className="sr-only"> (not seen lately)</span>}
                        <span className="ml-2 text-muted-foreground tabular-nums" title={`${info?.ran ?? 0} ran, ${info?.skipped ?? 0} skipped, ${info?.failed ?? 0} failed`}>
                          {info?.ran ?? 0}✓ {info?.skipped ?? 0}–{info && info.failed > 0 ? ` ${info.failed}✕` : ''}
                        </span>
                      </th>
                      {occ.map((o) => (
                        <GridCell key={o.at} occurrence={o} instance={inst} />
                      ))}
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </CardContent>
    </Card>
  );
}

function GridCell({ occurrence, instance }: { occurrence: OccurrenceView; instance: string }) {
  const run = occurrence.runs.find((r) => r.instance === instance);
  if (!run) {
    return (
      <td className="size-5 text-center text-muted-foreground" title={`${instance}: no record for ${occurrence.iso}`}>
        <span aria-hidden="true">·</span>
        <span className="sr-only">no record</span>
      </td>
    );
  }
  const c = CELL[run.outcome];
  const title = `${formatTime(occurrence.at)} · ${instance}: ${c.label}${run.durationMs !== null ? ` in ${formatMs(run.durationMs)}` : ''}${run.fence ? ` · fence ${run.fence}` : ''}${run.detail ? ` — ${run.detail}` : ''}`;
  return (
    <td className="p-0" data-outcome={run.outcome}>
      <span title={title} className={cn('flex size-5 items-center justify-center rounded-sm text-[10px] leading-none font-bold', c.className)}>
        <span aria-hidden="true">{c.symbol}</span>
        <span className="sr-only">{c.label}</span>
      </span>
    </td>
  );
}
