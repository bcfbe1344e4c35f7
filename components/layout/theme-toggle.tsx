'use client';

import { useEffect, useState } from 'react';

import { cn } from '@/lib/utils';

import { THEME_STORAGE_KEY } from './theme-script';

export type ThemePreference = 'system' | 'light' | 'dark';

function systemTheme(): 'light' | 'dark' {
  return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

function apply(pref: ThemePreference): void {
  document.documentElement.setAttribute('data-theme', pref === 'system' ? systemTheme() : pref);
}

const NEXT: Record<ThemePreference, ThemePreference> = { system: 'light', light: 'dark', dark: 'system' };
const LABEL: Record<ThemePreference, string> = { system: 'System', light: 'Light', dark: 'Dark' };

/**
 * Cycles System → Light → Dark; the choice is kept in localStorage. Following the system's own
 * changes is done by the inline script (theme-script.ts), which is there before React is.
 */
export function ThemeToggle({ className }: { className?: string }) {
  const [pref, setPref] = useState<ThemePreference | null>(null);

  useEffect(() => {
    const stored = localStorage.getItem(THEME_STORAGE_KEY);
    setPref(stored === 'light' || stored === 'dark' ? stored : 'system');
  }, []);

  const choose = (next: ThemePreference) => {
    setPref(next);
    if (next === 'system') localStorage.removeItem(THEME_STORAGE_KEY);
    else localStorage.setItem(THEME_STORAGE_KEY, next);
    apply(next);
  };

  const current = pref ?? 'system';
  return (
    <button
      type="button"
      onClick={() => choose(NEXT[current])}
      className={cn('inline-flex h-8 items-center gap-1.5 rounded-md px-2 text-xs text-muted-foreground hover:bg-muted hover:text-foreground', className)}
      aria-label={`Theme: ${LABEL[current]}. Switch to ${LABEL[NEXT[current]]}.`}
      title={`Theme: ${LABEL[current]} (click for ${LABEL[NEXT[current]]})`}
      data-theme-pref={current}
    >
      <ThemeIcon pref={current} />
      <span className="hidden lg:inline">{LABEL[current]}</span>
    </button>
  );
}

function ThemeIcon({ pref }: { pref: ThemePreference }) {
  const common = { viewBox: '0 0 24 24', className: 'size-4', fill: 'none', stroke: 'currentColor', strokeWidth: 2, strokeLinecap: 'round' as const, strokeLinejoin: 'round' as const, 'aria-hidden': true };
  if (pref === 'light') {
    return (
      <svg {...common}>
        <circle cx="12" cy="12" r="4" />
        <path d="M12 2v2M12 20v2M4.9 4.9l1.4 1.4M17.7 17.7l1.4 1.4M2 12h2M20 12h2M4.9 19.1l1.4-1.4M17.7 6.3l1.4-1.4" />
      </svg>
    );
  }
  if (pref === 'dark') {
    return (
      <svg {...common}>
        <path d="M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z" />
      </svg>
    );
  }
  return (
    <svg {...common}>
      <rect x="3" y="4" width="18" height="12" rx="2" />
      <path d="M8 20h8M12 16v4" />
    </svg>
  );
}
