import { Fragment } from 'react';

import { cn } from '@/lib/utils';

/**
 * A lock key in monospace that wraps at its separators (`/`, `:`, `.`, `-`, `_`, `#`) rather than
 * in the middle of a word, and anywhere only when a segment alone is wider than the line.
 */
export function KeyText({ value, className }: { value: string; className?: string }) {
  const parts = value.split(/(?<=[/:.\-_#])/);
  return (
    <span className={cn('font-mono [overflow-wrap:anywhere]', className)}>
      {parts.map((p, i) => (
        <Fragment key={i}>
          {p}
          {i < parts.length - 1 && <wbr />}
        </Fragment>
      ))}
    </span>
  );
}
