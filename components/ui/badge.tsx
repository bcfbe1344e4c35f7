import type { ComponentProps } from 'react';

import { cn } from '@/lib/utils';

export type BadgeTone = 'neutral' | 'success' | 'warning' | 'danger';

const toneClasses: Record<BadgeTone, { badge: string; dot: string }> = {
  neutral: {
    badge: 'bg-muted text-muted-foreground ring-border',
    dot: 'bg-zinc-400 dark:bg-zinc-500',
  },
  success: {
    badge:
      'bg-emerald-50 text-emerald-800 ring-emerald-600/20 dark:bg-emerald-400/10 dark:text-emerald-300 dark:ring-emerald-400/25',
    dot: 'bg-emerald-500 dark:bg-emerald-400',
  },
  warning: {
    badge:
      'bg-amber-50 text-amber-800 ring-amber-600/25 dark:bg-amber-400/10 dark:text-amber-300 dark:ring-amber-400/25',
    dot: 'bg-amber-500 dark:bg-amber-400',
  },
  danger: {
    badge:
      'bg-red-50 text-red-800 ring-red-600/20 dark:bg-red-400/10 dark:text-red-300 dark:ring-red-400/25',
    dot: 'bg-red-500 dark:bg-red-400',
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
        'inline-flex items-center gap-1.5 rounded-full px-2.5 py-0.5 text-xs font-medium ring-1 ring-inset',
        classes.badge,
        className,
      )}
      {...props}
    >
      {dot && <span aria-hidden="true" className={cn('size-1.5 rounded-full', classes.dot)} />}
      {children}
    </span>
  );
}
