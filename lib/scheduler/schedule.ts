/**
 * A job's schedule as data (what the scheduler registers in the run store): its occurrence times
 * and a description in words. The same arithmetic as the Scheduler's, so the console computes the
 * occurrences the instances wake for: `everyMs` occurrences are multiples of it since the epoch;
 * cron occurrences come from croner in the job's time zone (UTC by default).
 */
import { Cron } from 'croner';

import type { JobSchedule } from '../locks/types';

function cronOf(s: JobSchedule): Cron | null {
  if (s.cron === undefined) return null;
  try {
    return new Cron(s.cron, { paused: true, timezone: s.timezone ?? 'UTC' });
  } catch {
    return null;
  }
}

/** The first occurrence strictly after `after`, or null (an invalid or finished schedule). */
export function nextOccurrence(s: JobSchedule, after: number): number | null {
  if (s.everyMs !== undefined) return s.everyMs > 0 ? (Math.floor(after / s.everyMs) + 1) * s.everyMs : null;
  const d = cronOf(s)?.nextRun(new Date(after));
  return d ? d.getTime() : null;
}

/** Up to `n` occurrences at or before `atOrBefore`, newest first. */
export function previousOccurrences(s: JobSchedule, atOrBefore: number, n: number): number[] {
  const out: number[] = [];
  if (n <= 0) return out;
  if (s.everyMs !== undefined) {
    if (!(s.everyMs > 0)) return out;
    const last = Math.floor(atOrBefore / s.everyMs) * s.everyMs;
    for (let i = 0; i < n; i++) out.push(last - i * s.everyMs);
    return out;
  }
  const cron = cronOf(s);
  if (!cron) return out;
  // croner's previousRuns is strictly before the reference: include an occurrence exactly at it.
  const exact = cron.nextRun(new Date(atOrBefore - 1));
  if (exact && exact.getTime() === atOrBefore) out.push(atOrBefore);
  for (const d of cron.previousRuns(n - out.length, new Date(atOrBefore))) out.push(d.getTime());
  return out;
}

/** The usual gap between occurrences (cron: between the next two), in ms. */
export function periodOf(s: JobSchedule, from: number): number | null {
  if (s.everyMs !== undefined) return s.everyMs;
  const a = nextOccurrence(s, from);
  const b = a === null ? null : nextOccurrence(s, a);
  return a !== null && b !== null ? b - a : null;
}

function every(ms: number): string {
  const units: Array<[number, string]> = [
    [86_400_000, 'day'],
    [3_600_000, 'hour'],
    [60_000, 'minute'],
    [1000, 'second'],
  ];
  for (const [size, unit] of units) {
    if (ms % size === 0) {
      const n = ms / size;
      return n === 1 ? `every ${unit}` : `every ${n} ${unit}s`;
    }
  }
  return `every ${ms} ms`;
}

const pad = (n: string) => n.padStart(2, '0');

/**
 * The schedule in words, for the common shapes: "every 5 seconds", "every 10 seconds (cron
 * `*\/10 * * * * *`)", "daily at 03:00 UTC". Anything else is said as its cron expression.
 */
export function describeSchedule(s: JobSchedule): string {
  if (s.everyMs !== undefined) return every(s.everyMs);
  const expr = (s.cron ?? '').trim();
  const tz = s.timezone && s.timezone !== 'UTC' ? ` ${s.timezone}` : ' UTC';
  const f = expr.split(/\s+/);
  // Six fields: seconds first (croner).
  const [sec, min, hour, dom, mon, dow] = f.length === 6 ? f : ['0', ...f];
  const rest = (fields: Array<string | undefined>) => fields.every((x) => x === '*');
  const step = (x: string | undefined) => /^\*\/(\d+)$/.exec(x ?? '')?.[1];
  if (f.length !== 5 && f.length !== 6) return `cron ${expr}`;
  if (step(sec) && rest([min, hour, dom, mon, dow])) return every(Number(step(sec)) * 1000);
  if (sec === '*' && rest([min, hour, dom, mon, dow])) return 'every second';
  if (sec === '0' && step(min) && rest([hour, dom, mon, dow])) return every(Number(step(min)) * 60_000);
  if (sec === '0' && min === '*' && rest([hour, dom, mon, dow])) return 'every minute';
  if (sec === '0' && /^\d+$/.test(min ?? '') && hour === '*' && rest([dom, mon, dow])) return `hourly at :${pad(min!)}`;
  if (sec === '0' && /^\d+$/.test(min ?? '') && /^\d+$/.test(hour ?? '')) {
    const at = `${pad(hour!)}:${pad(min!)}${tz}`;
    if (rest([dom, mon, dow])) return `daily at ${at}`;
    if (dom === '*' && mon === '*' && dow === '1-5') return `weekdays at ${at}`;
    if (dom === '*' && mon === '*' && /^[0-6]$/.test(dow ?? '')) return `${['Sundays', 'Mondays', 'Tuesdays', 'Wednesdays', 'Thursdays', 'Fridays', 'Saturdays'][Number(dow)]} at ${at}`;
    if (/^\d+$/.test(dom ?? '') && mon === '*' && dow === '*') return `monthly on day ${dom} at ${at}`;
  }
  return `cron ${expr}${s.timezone && s.timezone !== 'UTC' ? ` (${s.timezone})` : ''}`;
}
