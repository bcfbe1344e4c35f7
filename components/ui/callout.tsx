import type { ComponentProps, ReactNode } from 'react';

import { cn } from '@/lib/utils';

export type CalloutTone = 'info' | 'warning' | 'danger' | 'success';

const tones: Record<CalloutTone, string> = {
  info: 'border-sky-200 bg-sky-50 text-sky-900 dark:border-sky-400/25 dark:bg-sky-400/10 dark:text-sky-100',
  warning: 'border-amber-200 bg-amber-50 text-amber-900 dark:border-amber-400/25 dark:bg-amber-400/10 dark:text-amber-100',
  danger: 'border-red-200 bg-red-50 text-red-900 dark:border-red-400/30 dark:bg-red-400/10 dark:text-red-100',
  success: 'border-emerald-200 bg-emerald-50 text-emerald-900 dark:border-emerald-400/25 dark:bg-emerald-400/10 dark:text-emerald-100',
};

/**
 * A boxed message. Pass `role="alert"` for something that just went wrong, `role="status"` for
 * news that may be announced politely; leave it out for static explanations.
 */
export function Callout({
  tone = 'info',
  title,
  className,
  children,
  ...props
}: Omit<ComponentProps<'div'>, 'title'> & { tone?: CalloutTone; title?: ReactNode }) {
  return (
    <div className={cn('rounded-md border px-3.5 py-2.5 text-sm', tones[tone], className)} {...props}>
      {title && <p className="font-semibold">{title}</p>}
      {children && <div className={cn(title ? 'mt-0.5' : '', 'leading-relaxed')}>{children}</div>}
    </div>
  );
}
