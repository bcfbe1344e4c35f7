import type { ComponentProps } from 'react';

import { cn } from '@/lib/utils';

/** A placeholder block while data loads; hidden from screen readers (the region says "loading"). */
export function Skeleton({ className, ...props }: ComponentProps<'div'>) {
  return <div aria-hidden="true" className={cn('animate-pulse rounded bg-muted', className)} {...props} />;
}
