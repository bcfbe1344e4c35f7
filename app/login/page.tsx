import type { Metadata } from 'next';
import { redirect } from 'next/navigation';

import { currentSession } from '@/app/current-session';
import { LockMark } from '@/components/layout/lock-mark';
import { ThemeToggle } from '@/components/layout/theme-toggle';
import { LoginForm } from '@/components/login-form';

export const metadata: Metadata = { title: 'Sign in' };
export const dynamic = 'force-dynamic';

export default async function LoginPage({ searchParams }: { searchParams: Promise<{ next?: string | string[] }> }) {
  const raw = (await searchParams).next;
  const next = typeof raw === 'string' ? raw : null;
  if (await currentSession()) redirect(next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/login') ? next : '/');
  return (
    <div className="flex min-h-dvh flex-col">
      <div className="flex justify-end p-3">
        <ThemeToggle />
      </div>
      <main className="flex flex-1 items-start justify-center px-4 pt-[12vh]">
        <div className="w-full max-w-sm">
          <div className="mb-6 flex items-center justify-center gap-2 text-lg font-semibold tracking-tight">
            <LockMark className="size-6 text-sky-600 dark:text-sky-400" />
            lockdeck
          </div>
          <div className="rounded-lg border border-border bg-card p-6 shadow-sm">
            <h1 className="text-base font-semibold">Sign in to the lock console</h1>
            <p className="mt-1 mb-5 text-sm text-muted-foreground">See every held lock, who holds it and who waits; release a stuck one.</p>
            <LoginForm next={next} />
          </div>
        </div>
      </main>
    </div>
  );
}
