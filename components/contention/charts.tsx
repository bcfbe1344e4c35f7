'use client';

import type { ReactNode } from 'react';
import { Area, AreaChart, Bar, BarChart, CartesianGrid, Line, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';

import { formatMs, formatShortTime, formatTime } from '@/lib/client/format';
import type { Distribution, SeriesPoint } from '@/lib/client/types';

/*
 * recharts drawings in the console's colours (CSS variables, so both themes), each inside a
 * <figure> whose caption states the key numbers: the SVG itself is `aria-hidden`, the caption is
 * the text alternative.
 */

const AXIS = { stroke: 'var(--chart-axis)', fontSize: 11, tickLine: false } as const;
const TOOLTIP = {
  contentStyle: { background: 'var(--card)', border: '1px solid var(--border-strong)', borderRadius: 6, fontSize: 12, color: 'var(--foreground)' },
  labelStyle: { color: 'var(--muted-foreground)' },
  cursor: { fill: 'var(--muted)', opacity: 0.6 },
} as const;

export function ChartFigure({ title, caption, children, testId }: { title: string; caption: ReactNode; children: ReactNode; testId?: string }) {
  return (
    <figure className="rounded-lg border border-border bg-card px-4 pt-3 pb-3 shadow-xs" data-testid={testId}>
      <h2 className="text-sm font-semibold">{title}</h2>
      <div aria-hidden="true" className="mt-2 h-52">
        {children}
      </div>
      <figcaption className="mt-2 text-xs text-muted-foreground">{caption}</figcaption>
    </figure>
  );
}

/** Acquisitions per minute, one bar per bucket. */
export function AcquisitionsChart({ series }: { series: SeriesPoint[] }) {
  return (
    <ResponsiveContainer width="100%" height="100%">
      <BarChart data={series} margin={{ top: 4, right: 4, bottom: 0, left: -16 }} barCategoryGap={1}>
        <CartesianGrid vertical={false} stroke="var(--chart-grid)" />
        <XAxis dataKey="t" tickFormatter={formatShortTime} minTickGap={40} {...AXIS} />
        <YAxis allowDecimals={false} {...AXIS} width={44} />
        <Tooltip
          {...TOOLTIP}
          labelFormatter={(t) => `${formatTime(Number(t))}`}
          formatter={(v, name) => [name === 'perMinute' ? `${Number(v).toFixed(1)} / min` : String(v), name === 'perMinute' ? 'Acquisitions' : String(name)]}
        />
        <Bar dataKey="perMinute" fill="var(--chart-1)" isAnimationActive={false} radius={[2, 2, 0, 0]} />
      </BarChart>
    </ResponsiveContainer>
  );
}

/** Waiters over time: the mean per bucket (area) and the maximum (line). */
export function WaitersChart({ series }: { series: SeriesPoint[] }) {
  return (
    <ResponsiveContainer width="100%" height="100%">
      <AreaChart data={series} margin={{ top: 4, right: 4, bottom: 0, left: -16 }}>
        <CartesianGrid vertical={false} stroke="var(--chart-grid)" />
        <XAxis dataKey="t" tickFormatter={formatShortTime} minTickGap={40} {...AXIS} />
        <YAxis allowDecimals={false} {...AXIS} width={44} />
        <Tooltip
          {...TOOLTIP}
          labelFormatter={(t) => `${formatTime(Number(t))}`}
          formatter={(v, name) => [Number(v).toFixed(name === 'waitersAvg' ? 2 : 0), name === 'waitersAvg' ? 'Mean waiters' : 'Most waiters']}
        />
        <Area type="stepAfter" dataKey="waitersAvg" stroke="var(--chart-2)" fill="var(--chart-2)" fillOpacity={0.25} strokeWidth={1.5} isAnimationActive={false} />
        <Line type="stepAfter" dataKey="waitersMax" stroke="var(--chart-3)" strokeWidth={1} strokeDasharray="3 3" dot={false} isAnimationActive={false} />
      </AreaChart>
    </ResponsiveContainer>
  );
}

/** A duration histogram (wait or hold). */
export function HistogramChart({ dist, color }: { dist: Distribution; color: string }) {
  return (
    <ResponsiveContainer width="100%" height="100%">
      <BarChart data={dist.histogram} margin={{ top: 4, right: 4, bottom: 0, left: -16 }} barCategoryGap={2}>
        <CartesianGrid vertical={false} stroke="var(--chart-grid)" />
        <XAxis dataKey="label" interval="preserveStartEnd" minTickGap={8} {...AXIS} />
        <YAxis allowDecimals={false} {...AXIS} width={44} />
        <Tooltip {...TOOLTIP} formatter={(v) => [String(v), 'Count']} />
        <Bar dataKey="count" fill={color} isAnimationActive={false} radius={[2, 2, 0, 0]} />
      </BarChart>
    </ResponsiveContainer>
  );
}

/** "p50 12 ms · p95 340 ms · max 1.20 s" */
export function percentilesText(d: Distribution): string {
  return `p50 ${formatMs(d.p50)} · p95 ${formatMs(d.p95)} · max ${formatMs(d.max)}`;
}
