'use client';

import { useEffect, useId, useRef, type ReactNode, type RefObject } from 'react';

import { cn } from '@/lib/utils';

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex="-1"])';

/**
 * A modal confirmation (`role="alertdialog"`) on the native `<dialog>`: `showModal()` makes the
 * rest of the page inert and puts it in the top layer; Tab and Shift+Tab also wrap inside it
 * (so focus never leaves for the page behind); Esc closes it through `onClose`; focus goes to
 * `initialFocus` (else the first field) on open and back to what had it on close.
 *
 * Mount it when it should be open and unmount it to close: its content then starts fresh every
 * time.
 */
export function AlertDialog({
  title,
  description,
  onClose,
  initialFocus,
  children,
  className,
}: {
  title: ReactNode;
  description?: ReactNode;
  onClose: () => void;
  initialFocus?: RefObject<HTMLElement | null>;
  children: ReactNode;
  className?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const descId = useId();
  const onCloseRef = useRef(onClose);
  useEffect(() => {
    onCloseRef.current = onClose;
  });

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (!dialog.open) dialog.showModal();
    const target = initialFocus?.current ?? dialog.querySelector<HTMLElement>(FOCUSABLE);
    target?.focus();
    return () => {
      if (dialog.open) dialog.close();
      // The opener may have gone (a released row leaves the table); then focus stays on the body.
      if (opener?.isConnected) opener.focus();
    };
    // Opened once per mount.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  return (
    <dialog
      ref={ref}
      role="alertdialog"
      aria-modal="true"
      aria-labelledby={titleId}
      aria-describedby={description ? descId : undefined}
      onCancel={(e) => {
        // Esc: let React state close it, so it unmounts like any other close.
        e.preventDefault();
        onCloseRef.current();
      }}
      onKeyDown={(e) => {
        if (e.key !== 'Tab') return;
        const items = [...(ref.current?.querySelectorAll<HTMLElement>(FOCUSABLE) ?? [])].filter((el) => el.offsetParent !== null);
        if (items.length === 0) return;
        const first = items[0]!;
        const last = items[items.length - 1]!;
        if (e.shiftKey && document.activeElement === first) {
          e.preventDefault();
          last.focus();
        } else if (!e.shiftKey && document.activeElement === last) {
          e.preventDefault();
          first.focus();
        }
      }}
      className={cn(
        'm-auto w-[min(36rem,calc(100vw-2rem))] max-h-[calc(100dvh-2rem)] overflow-y-auto rounded-lg border border-border bg-card p-0 text-foreground shadow-2xl',
        className,
      )}
    >
      <div className="px-5 pt-5">
        <h2 id={titleId} className="text-base font-semibold">
          {title}
        </h2>
        {description && (
          <div id={descId} className="mt-1 text-sm text-muted-foreground">
            {description}
          </div>
        )}
      </div>
      {children}
    </dialog>
  );
}
