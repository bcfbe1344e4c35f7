'use client';

import { useCallback, useEffect, useLayoutEffect, useRef, useState, type ReactNode } from 'react';

import { cn } from '@/lib/utils';

/**
 * The lock table's window over tens of thousands of rows: fixed row height, only the rows in view
 * (plus `overscan` above and below) in the DOM, absolutely positioned inside a spacer as tall as
 * all rows together, the header sticky in the same scroll box (so it scrolls sideways with the
 * body on narrow screens). Accessibility: `role="table"` with `aria-rowcount` (all rows),
 * `aria-rowindex` per row (the DOM order of recycled rows rotates, as AG Grid's default
 * `ensureDomOrder: false`), a focusable labelled scroll region.
 *
 * Built for scrolling 20,000 rows fast (issue 10; profiled in Chromium with
 * bench/console-scale.ts, BENCHMARKS.md):
 *  - Rows are recycled. Row `i` is rendered in slot `i mod slots`, where `slots` is the number
 *    of rows the window holds; a row leaving at one end and the row entering at the other share a
 *    slot, so React updates the text and attributes of the slot's existing elements instead of
 *    removing one row's ~30 elements and creating another's, a dozen times per frame.
 *  - The scroll handler reads `scrollTop` only. The viewport and header heights come from a
 *    ResizeObserver (they change on resize, not on scroll); reading `clientHeight` and
 *    `offsetHeight` in the handler forced a synchronous layout on every scroll event.
 */
export function LockWindow({
  label,
  rowCount,
  rowHeight,
  header,
  renderRow,
  overscan = 8,
  minWidth,
  className,
  scrollResetKey,
}: {
  label: string;
  rowCount: number;
  rowHeight: number;
  /** The header row (a `role="row"` element, `aria-rowindex={1}`). */
  header: ReactNode;
  /** Row `index` (0-based) under React key `slot` (see above); give it `aria-rowindex={index + 2}`. */
  renderRow: (index: number, slot: number) => ReactNode;
  overscan?: number;
  /** CSS min-width of the table (columns scroll sideways below it). */
  minWidth?: number;
  className?: string;
  /** When this changes (a new filter or sort), the table scrolls back to its first row. */
  scrollResetKey?: string;
}) {
  const scroller = useRef<HTMLDivElement>(null);
  const headerRef = useRef<HTMLDivElement>(null);
  /** First row under the header (scrollTop in rows), the viewport's height, the header's. */
  const [row, setRow] = useState(0);
  const [size, setSize] = useState({ height: 800, headerHeight: rowHeight });

  const onScroll = useCallback(() => {
    const el = scroller.current;
    if (el) setRow(Math.floor(el.scrollTop / rowHeight));
  }, [rowHeight]);

  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const resize = () => {
      const height = el.clientHeight;
      const headerHeight = headerRef.current?.offsetHeight ?? rowHeight;
      setSize((s) => (s.height === height && s.headerHeight === headerHeight ? s : { height, headerHeight }));
    };
    resize();
    onScroll();
    const ro = new ResizeObserver(resize);
    ro.observe(el);
    if (headerRef.current) ro.observe(headerRef.current);
    el.addEventListener('scroll', onScroll, { passive: true });
    return () => {
      ro.disconnect();
      el.removeEventListener('scroll', onScroll);
    };
  }, [onScroll, rowHeight]);

  useEffect(() => {
    if (scroller.current) scroller.current.scrollTop = 0;
  }, [scrollResetKey]);

  // The sticky header covers the top of the viewport, so body row 0 is visible at scrollTop 0.
  const visibleBody = Math.max(0, size.height - size.headerHeight);
  const slots = Math.ceil(visibleBody / rowHeight) + 1 + 2 * overscan;
  const first = Math.max(0, Math.min(row - overscan, rowCount - slots));
  const last = Math.min(rowCount, first + slots);
  // In slot order, not row order: the DOM order of the slots never changes, so React never moves
  // an element (a move is a removal and an insertion, which is what recycling avoids). Rows are
  // positioned absolutely and carry aria-rowindex, so neither the picture nor the table's row
  // numbers depend on it (the same trade as AG Grid's default, ensureDomOrder: false).
  const rows: ReactNode[] = [];
  for (let slot = 0; slot < slots; slot++) {
    // The row of the window that falls in this slot: first + ((slot - first) mod slots).
    const i = first + ((((slot - first) % slots) + slots) % slots);
    if (i < last) rows.push(renderRow(i, slot));
  }

  return (
    <div ref={scroller} role="region" aria-label={label} tabIndex={0} className={cn('relative overflow-auto overscroll-contain', className)}>
      <div role="table" aria-label={label} aria-rowcount={rowCount + 1} style={{ minWidth }}>
        <div ref={headerRef} role="rowgroup" className="sticky top-0 z-10">
          {header}
        </div>
        <div role="rowgroup" className="relative" style={{ height: rowCount * rowHeight }}>
          {rows}
        </div>
      </div>
    </div>
  );
}
