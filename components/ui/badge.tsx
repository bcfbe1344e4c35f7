import type { ComponentProps } from 'react';

import { cn } from '@/lib/utils';

export type BadgeTone = 'neutral' | 'success' | 'warning' | 'danger' | 'info' | 'orphan';

const toneClasses: Record<BadgeTone, { badge: string; dot: string }> = {
  neutral: {
    badge: 'bg-muted text-muted-foreground ring-border-strong/60',
    dot: 'bg-zinc-400 dark:bg-zinc-500',
  },
  success: {
    badge:
      'bg-emerald-50 text-emerald-800 ring-emerald-600/20 dark:bg-emerald-400/10 dark:text-emerald-300 dark:ring-emerald-400/25',
    dot: 'bg-emerald-500 dark:bg-emerald-400',
  },
  warning: {
    badge: 'bg-amber-50 text-amber-800 ring-amber-600/25 dark:bg-amber-400/10 dark:text-amber-300 dark:ring-amber-400/25',
    dot: 'bg-amber-500 dark:bg-amber-400',
  },
  danger: {
    badge: 'bg-red-50 text-red-800 ring-red-600/20 dark:bg-red-400/10 dark:text-red-300 dark:ring-red-400/25',
    dot: 'bg-red-500 dark:bg-red-400',
  },
  info: {
    badge: 'bg-sky-50 text-sky-800 ring-sky-600/20 dark:bg-sky-400/10 dark:text-sky-300 dark:ring-sky-400/25',
    dot: 'bg-sky-500 dark:bg-sky-400',
  },
  orphan: {
    badge:
      'bg-fuchsia-50 text-fuchsia-800 ring-fuchsia-600/20 dark:bg-fuchsia-400/10 dark:text-fuchsia-300 dark:ring-fuchsia-400/25',
    dot: 'bg-fuchsia-500 dark:bg-fuchsia-400',
  },
};

/**
 * A short status label. The colour only repeats what the text says, so the label must make
 * sense on its own (colour-blind users, screenshots in greyscale).
 */
export function Badge({
  tone = 'neutral',
  dot = true,
  className,
  children,
  ...props
}: ComponentProps<'span'> & { tone?: BadgeTone; dot?: boolean }) {
  const classes = toneClasses[tone];
  return (
    <span
      className={cn(
        'inline-flex items-center gap-1.5 rounded-full px-2 py-0.5 text-xs leading-4 font-medium whitespace-nowrap ring-1 ring-inset',
        classes.badge,
        className,
      )}
      {...props}
    >
      {dot && <span aria-hidden="true" className={cn('size-1.5 shrink-0 rounded-full', classes.dot)} />}
      {children}
    </span>
  );
}
