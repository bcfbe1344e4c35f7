'use client';

import { useCallback } from 'react';
import { usePathname, useRouter, useSearchParams } from 'next/navigation';

import type { WindowName } from '@/lib/client/types';
import { cn } from '@/lib/utils';

export const WINDOW_NAMES: readonly WindowName[] = ['15m', '1h', '6h', '24h'];
export const WINDOW_LABELS: Record<WindowName, string> = { '15m': '15 min', '1h': '1 hour', '6h': '6 hours', '24h': '24 hours' };

/** The window in the URL (`?window=`), default 1 h, and a setter that keeps the other parameters. */
export function useWindowParam(): [WindowName, (w: WindowName) => void] {
  const params = useSearchParams();
  const router = useRouter();
  const pathname = usePathname();
  const raw = params.get('window');
  const window = (WINDOW_NAMES as readonly string[]).includes(raw ?? '') ? (raw as WindowName) : '1h';
  const set = useCallback(
    (w: WindowName) => {
      const next = new URLSearchParams(params.toString());
      if (w === '1h') next.delete('window');
      else next.set('window', w);
      const q = next.toString();
      router.replace(`${pathname}${q ? `?${q}` : ''}`, { scroll: false });
    },
    [params, router, pathname],
  );
  return [window, set];
}

/** A segmented control (radio group: arrow keys move, the choice is announced). */
export function WindowPicker({ value, onChange }: { value: WindowName; onChange: (w: WindowName) => void }) {
  return (
    <div role="radiogroup" aria-label="Time window" className="inline-flex rounded-md border border-border-strong bg-card p-0.5 shadow-xs" data-testid="window-picker">
      {WINDOW_NAMES.map((w, i) => {
        const checked = w === value;
        return (
          <button
            key={w}
            type="button"
            role="radio"
            aria-checked={checked}
            tabIndex={checked ? 0 : -1}
            onClick={() => onChange(w)}
            onKeyDown={(e) => {
              const d = e.key === 'ArrowRight' || e.key === 'ArrowDown' ? 1 : e.key === 'ArrowLeft' || e.key === 'ArrowUp' ? -1 : 0;
              if (!d) return;
              e.preventDefault();
              const next = WINDOW_NAMES[(i + d + WINDOW_NAMES.length) % WINDOW_NAMES.length]!;
              onChange(next);
              (e.currentTarget.parentElement?.children[WINDOW_NAMES.indexOf(next)] as HTMLElement | undefined)?.focus();
            }}
            className={cn(
              'h-7 rounded px-2.5 text-xs font-medium whitespace-nowrap',
              checked ? 'bg-accent text-accent-foreground' : 'text-muted-foreground hover:bg-muted hover:text-foreground',
            )}
            title={`Last ${WINDOW_LABELS[w]}`}
          >
            {w}
          </button>
        );
      })}
    </div>
  );
}
