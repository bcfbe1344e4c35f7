'use client';

import { useCallback, useEffect, useRef, useState, type CSSProperties, type ReactNode } from 'react';

import { cn } from '@/lib/utils';

/**
 * A table that renders only the rows in view (plus `overscan` above and below), for lists of
 * tens of thousands of rows: fixed row height, one absolutely positioned row per visible index
 * inside a spacer as tall as all rows together. The header sits in the same scroll box (sticky),
 * so it scrolls sideways with the body on narrow screens.
 *
 * Accessibility: `role="table"` with `aria-rowcount` (all rows, not just the rendered ones) and
 * `aria-rowindex` on each row, inside a focusable, labelled scroll region, so keyboard users can
 * scroll it with the arrow and page keys and screen readers know how big the table really is.
 */
export function WindowedTable({
  label,
  rowCount,
  rowHeight,
  header,
  renderRow,
  overscan = 8,
  minWidth,
  className,
  bodyClassName,
  footer,
  scrollResetKey,
}: {
  label: string;
  rowCount: number;
  rowHeight: number;
  /** The header row (a `role="row"` element, `aria-rowindex={1}`). */
  header: ReactNode;
  /** Row `index` (0-based), positioned by `style`; give it `aria-rowindex={index + 2}`. */
  renderRow: (index: number, style: CSSProperties) => ReactNode;
  overscan?: number;
  /** CSS min-width of the table (columns scroll sideways below it). */
  minWidth?: number;
  className?: string;
  bodyClassName?: string;
  /** Shown under the rows inside the scroll box (e.g. an empty state). */
  footer?: ReactNode;
  /** When this changes (a new filter or sort), the table scrolls back to its first row. */
  scrollResetKey?: string;
}) {
  const scroller = useRef<HTMLDivElement>(null);
  const headerRef = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: 800, headerHeight: rowHeight });

  const measure = useCallback(() => {
    const el = scroller.current;
    if (!el) return;
    const top = el.scrollTop;
    const height = el.clientHeight;
    const headerHeight = headerRef.current?.offsetHeight ?? rowHeight;
    setView((v) => {
      // Re-render only when the rendered window would change, not on every pixel of scrolling.
      const same =
        Math.floor(v.top / rowHeight) === Math.floor(top / rowHeight) && v.height === height && v.headerHeight === headerHeight;
      return same ? v : { top, height, headerHeight };
    });
  }, [rowHeight]);

  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    measure();
    const ro = new ResizeObserver(measure);
    ro.observe(el);
    el.addEventListener('scroll', measure, { passive: true });
    return () => {
      ro.disconnect();
      el.removeEventListener('scroll', measure);
    };
  }, [measure]);

  useEffect(() => {
    if (scroller.current) scroller.current.scrollTop = 0;
  }, [scrollResetKey]);

  // The sticky header covers the top of the viewport, so body row 0 is visible at scrollTop 0.
  const visibleBody = Math.max(0, view.height - view.headerHeight);
  const first = Math.max(0, Math.floor(view.top / rowHeight) - overscan);
  const last = Math.min(rowCount, Math.ceil((view.top + visibleBody) / rowHeight) + overscan);
  const rows: ReactNode[] = [];
  for (let i = first; i < last; i++) {
    rows.push(
      renderRow(i, {
        position: 'absolute',
        top: 0,
        left: 0,
        right: 0,
        height: rowHeight,
        transform: `translateY(${i * rowHeight}px)`,
      }),
    );
  }

  return (
    <div ref={scroller} role="region" aria-label={label} tabIndex={0} className={cn('relative overflow-auto overscroll-contain', className)}>
      <div role="table" aria-label={label} aria-rowcount={rowCount + 1} style={{ minWidth }}>
        <div ref={headerRef} role="rowgroup" className="sticky top-0 z-10">
          {header}
        </div>
        <div role="rowgroup" className={cn('relative', bodyClassName)} style={{ height: rowCount * rowHeight }}>
          {rows}
        </div>
      </div>
      {footer}
    </div>
  );
}
