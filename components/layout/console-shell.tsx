'use client';

import type { ReactNode } from 'react';
import Link from 'next/link';

import { Badge } from '@/components/ui/badge';
import { Toaster } from '@/components/ui/toast';
import { useLiveEvents } from '@/lib/client/events';
import { InitialSessionContext, useSession } from '@/lib/client/session';
import type { SessionInfo } from '@/lib/client/types';

import { LockMark } from './lock-mark';
import { NavLinks } from './nav-links';
import { SignOutButton } from './sign-out-button';
import { SyncStatus } from './sync-status';
import { ThemeToggle } from './theme-toggle';

/**
 * The frame of every signed-in page: header (navigation, live state, who you are, theme,
 * sign-out) and the app's one event stream, which stays open across page changes.
 */
export function ConsoleShell({ session, children }: { session: SessionInfo; children: ReactNode }) {
  return (
    <InitialSessionContext.Provider value={session}>
      <Live />
      <a href="#main" className="sr-only focus:not-sr-only focus:fixed focus:top-2 focus:left-2 focus:z-50 focus:rounded focus:bg-card focus:px-3 focus:py-2">
        Skip to content
      </a>
      <header className="sticky top-0 z-30 border-b border-border bg-card/95 backdrop-blur">
        <div className="mx-auto flex h-12 max-w-[1600px] items-center gap-4 px-4 sm:px-6">
          <Link href="/" className="flex items-center gap-2 rounded-sm font-semibold tracking-tight">
            <LockMark />
            lockdeck
          </Link>
          <NavLinks />
          <div className="ml-auto flex items-center gap-2">
            <span role="status" aria-label="Live updates">
              <SyncStatus compact />
            </span>
            <RoleBadge />
            <ThemeToggle />
            <SignOutButton />
          </div>
        </div>
      </header>
      <main id="main" className="mx-auto max-w-[1600px] px-4 py-6 sm:px-6">
        {children}
      </main>
      <Toaster />
    </InitialSessionContext.Provider>
  );
}

function Live() {
  useLiveEvents();
  return null;
}

function RoleBadge() {
  const s = useSession();
  if (!s) return null;
  return (
    <Badge
      tone={s.readOnly ? 'warning' : s.role === 'operator' ? 'info' : 'neutral'}
      dot={false}
      title={s.readOnly ? 'The console is read-only: nothing can be released.' : s.role === 'operator' ? 'You may force-release locks.' : 'You may look, not release.'}
      data-testid="role-badge"
    >
      {s.role}
      {s.readOnly && ' · read-only'}
    </Badge>
  );
}
