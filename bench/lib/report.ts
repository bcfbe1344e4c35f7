/** The one results table every section adds rows to, printed and written as JSON. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

export type Verdict = 'pass' | 'FAIL' | 'info' | 'baseline' | 'skip';

export interface Row {
  /** Section, e.g. "redis" or "sqlite". */
  section: string;
  figure: string;
  /** Measured value and its unit ("ms", "×", "req"...). */
  value: number | null;
  unit: string;
  /** What the ratio is taken against, e.g. "PING p50 0.071 ms". */
  baseline: string;
  /** value / baseline (or the paired-ratio median when the section measured in rounds). */
  ratio: number | null;
  /** Spread of per-round ratios, when there were rounds. */
  ratioSpread?: [number, number];
  /** Human-readable target, e.g. "≤ 3×". */
  target: string;
  verdict: Verdict;
  note?: string;
}

/** `≤ limit` check that yields a verdict (NaN/null is a failure: the figure is missing). */
export function atMost(x: number | null, limit: number): Verdict {
  return x !== null && Number.isFinite(x) && x <= limit ? 'pass' : 'FAIL';
}

/** `≥ limit` check that yields a verdict (NaN/null is a failure: the figure is missing). */
export function atLeast(x: number | null, limit: number): Verdict {
  return x !== null && Number.isFinite(x) && x >= limit ? 'pass' : 'FAIL';
}

function fmtNum(x: number | null, unit = ''): string {
  if (x === null || !Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  const s = a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : a >= 0.01 || a === 0 ? x.toFixed(3) : x.toPrecision(2);
  return unit ? `${s} ${unit}` : s;
}

function fmtRatio(r: Row): string {
  if (r.ratio === null || !Number.isFinite(r.ratio)) return '—';
  const base = r.ratio >= 100 ? r.ratio.toFixed(0) : r.ratio >= 10 ? r.ratio.toFixed(1) : r.ratio >= 0.1 ? r.ratio.toFixed(2) : r.ratio.toPrecision(2);
  if (!r.ratioSpread) return `${base}×`;
  const [lo, hi] = r.ratioSpread;
  return `${base}× [${lo.toFixed(2)}–${hi.toFixed(2)}]`;
}

export function formatTable(rows: readonly Row[]): string {
  const head = ['figure', 'value', 'baseline', 'ratio', 'target', 'pass/fail'];
  const body = rows.map((r) => [
    `${r.section}: ${r.figure}`,
    fmtNum(r.value, r.unit),
    r.baseline,
    fmtRatio(r),
    r.target,
    r.verdict,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  const sep = '|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|';
  const notes = rows.filter((r) => r.note).map((r) => `  * ${r.section}: ${r.figure}: ${r.note}`);
  return [line(head), sep, ...body.map(line), ...(notes.length ? ['', 'notes:', ...notes] : [])].join('\n');
}

export function writeJson(path: string, data: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(data, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
}

/** Formats ms for log lines. */
export function ms(x: number): string {
  return fmtNum(x, 'ms');
}
