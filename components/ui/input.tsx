import type { ComponentProps } from 'react';

import { cn } from '@/lib/utils';

const field =
  'block w-full rounded-md border border-border-strong bg-card px-3 text-sm text-foreground shadow-xs placeholder:text-muted-foreground/80 disabled:opacity-50 aria-[invalid=true]:border-red-500';

export function Input({ className, ...props }: ComponentProps<'input'>) {
  return <input className={cn(field, 'h-9', className)} {...props} />;
}

export function Textarea({ className, ...props }: ComponentProps<'textarea'>) {
  return <textarea className={cn(field, 'min-h-20 py-2', className)} {...props} />;
}

export function Label({ className, ...props }: ComponentProps<'label'>) {
  return <label className={cn('block text-xs font-medium text-muted-foreground', className)} {...props} />;
}
