import type { ComponentProps } from 'react';

import { cn } from '@/lib/utils';

/** A native select (keyboard, screen readers and mobile pickers for free), styled like Input. */
export function Select({ className, children, ...props }: ComponentProps<'select'>) {
  return (
    <div className={cn('relative', className)}>
      <select
        className="block h-9 w-full appearance-none rounded-md border border-border-strong bg-card pr-8 pl-3 text-sm text-foreground shadow-xs disabled:opacity-50"
        {...props}
      >
        {children}
      </select>
      <svg
        aria-hidden="true"
        viewBox="0 0 16 16"
        className="pointer-events-none absolute top-1/2 right-2.5 size-3.5 -translate-y-1/2 text-muted-foreground"
        fill="none"
        stroke="currentColor"
        strokeWidth={1.75}
      >
        <path d="m4 6 4 4 4-4" />
      </svg>
    </div>
  );
}
