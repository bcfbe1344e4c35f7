'use client';

import { useEffect, useSyncExternalStore } from 'react';

import { cn } from '@/lib/utils';

type Tone = 'success' | 'danger' | 'info';
interface Toast {
  id: number;
  message: string;
  tone: Tone;
}

let toasts: Toast[] = [];
let nextId = 1;
const listeners = new Set<() => void>();
const emit = () => listeners.forEach((l) => l());

/** Shows a short confirmation ("Released orders:42") in the corner and announces it politely. */
export function toast(message: string, tone: Tone = 'success'): void {
  toasts = [...toasts.slice(-3), { id: nextId++, message, tone }];
  emit();
}

function dismiss(id: number): void {
  toasts = toasts.filter((t) => t.id !== id);
  emit();
}

const EMPTY: Toast[] = [];

/** Where toasts appear; mounted once in the shell. */
export function Toaster() {
  const list = useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => toasts,
    () => EMPTY,
  );
  return (
    <div role="status" aria-live="polite" className="pointer-events-none fixed right-4 bottom-4 z-50 flex w-80 flex-col gap-2">
      {list.map((t) => (
        <ToastItem key={t.id} toast={t} />
      ))}
    </div>
  );
}

function ToastItem({ toast: t }: { toast: Toast }) {
  useEffect(() => {
    const timer = setTimeout(() => dismiss(t.id), 6000);
    return () => clearTimeout(timer);
  }, [t.id]);
  return (
    <div
      className={cn(
        'pointer-events-auto flex items-start gap-2 rounded-md border bg-card px-3 py-2.5 text-sm shadow-lg',
        t.tone === 'success' && 'border-emerald-300 dark:border-emerald-400/40',
        t.tone === 'danger' && 'border-red-300 dark:border-red-400/40',
        t.tone === 'info' && 'border-border-strong',
      )}
    >
      <span
        aria-hidden="true"
        className={cn(
          'mt-1.5 size-2 shrink-0 rounded-full',
          t.tone === 'success' && 'bg-emerald-500',
          t.tone === 'danger' && 'bg-red-500',
          t.tone === 'info' && 'bg-sky-500',
        )}
      />
      <p className="min-w-0 flex-1 break-words">{t.message}</p>
      <button type="button" onClick={() => dismiss(t.id)} className="rounded px-1 text-muted-foreground hover:text-foreground" aria-label="Dismiss">
        ×
      </button>
    </div>
  );
}
