/** Display helpers: durations, times, counts and short hashes, the same way on every page. */

/**
 * A duration for a dense table: `45s`, `4m 03s`, `2h 05m`, `3d 4h`. Negative durations are
 * clamped to 0 (callers say "expired" themselves).
 */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  const d = Math.floor(h / 24);
  return `${d}d ${h % 24}h`;
}

/** The same duration in words, for screen readers and titles: "4 minutes 3 seconds". */
export function formatDurationLong(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const parts: string[] = [];
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const add = (n: number, unit: string) => n > 0 && parts.push(`${n} ${unit}${n === 1 ? '' : 's'}`);
  add(d, 'day');
  add(h, 'hour');
  if (d === 0) add(m, 'minute');
  if (d === 0 && h === 0) add(sec, 'second');
  return parts.length ? parts.join(' ') : '0 seconds';
}

/** "3s ago", "4m ago", "2h ago". */
export function formatAgo(ms: number): string {
  if (ms < 1500) return 'just now';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ago`;
  return `${Math.floor(h / 24)}d ago`;
}

const timeFmt = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
const dateTimeFmt = new Intl.DateTimeFormat('en-GB', {
  year: 'numeric',
  month: 'short',
  day: '2-digit',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
  hour12: false,
});

/** `14:03:22` in the browser's time zone. */
export function formatTime(epochMs: number): string {
  return timeFmt.format(epochMs);
}

/** `26 Nov 2026, 14:03:22` in the browser's time zone. */
export function formatDateTime(epochMs: number): string {
  return dateTimeFmt.format(epochMs);
}

/** ISO 8601 in UTC, for `<time dateTime>` and titles. */
export function isoTime(epochMs: number): string {
  return new Date(epochMs).toISOString();
}

const countFmt = new Intl.NumberFormat('en-US');

export function formatCount(n: number): string {
  return countFmt.format(n);
}

/** "1 lock", "3 locks". */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/** First 8 characters of a hex hash: enough to tell holders apart, not to impersonate one. */
export function shortHash(hash: string): string {
  return hash.length > 8 ? hash.slice(0, 8) : hash;
}

/** Meta keys whose values are hashes and are shown short. */
export function isHashKey(key: string): boolean {
  return /hash$/i.test(key);
}

/** A short measured duration, ms precision where it matters: `0 ms`, `12 ms`, `1.24 s`, `4m 03s`. */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return formatDuration(ms);
}

const shortTimeFmt = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hour12: false });

/** `14:03` in the browser's time zone (chart axes). */
export function formatShortTime(epochMs: number): string {
  return shortTimeFmt.format(epochMs);
}
