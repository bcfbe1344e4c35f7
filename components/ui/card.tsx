import type { ComponentProps } from 'react';

import { cn } from '@/lib/utils';

export function Card({ className, ...props }: ComponentProps<'section'>) {
  return <section className={cn('rounded-lg border border-border bg-card shadow-xs', className)} {...props} />;
}

export function CardHeader({ className, ...props }: ComponentProps<'div'>) {
  return <div className={cn('flex items-baseline justify-between gap-3 px-5 pt-4', className)} {...props} />;
}

export function CardTitle({ className, ...props }: ComponentProps<'h2'>) {
  return <h2 className={cn('text-sm font-semibold leading-6', className)} {...props} />;
}

export function CardDescription({ className, ...props }: ComponentProps<'p'>) {
  return <p className={cn('text-sm text-muted-foreground', className)} {...props} />;
}

/**
 * The card's body. `flush`: no side padding, for tables and lists that run edge to edge (their
 * rows pad themselves). Padding is chosen here rather than overridden by className, because
 * `cn` does not resolve conflicting Tailwind utilities.
 */
export function CardContent({ className, flush = false, ...props }: ComponentProps<'div'> & { flush?: boolean }) {
  return <div className={cn(flush ? 'pt-2 pb-1.5' : 'px-5 pt-3 pb-5', className)} {...props} />;
}
