import type { ReactNode } from 'react';

import { currentSession } from '@/app/current-session';
import { ConsoleShell } from '@/components/layout/console-shell';
import { LoginRedirect } from '@/components/layout/login-redirect';

// Reads the session cookie: every console page is rendered per request.
export const dynamic = 'force-dynamic';

export default async function ConsoleLayout({ children }: { children: ReactNode }) {
  const session = await currentSession();
  if (!session) return <LoginRedirect />;
  return <ConsoleShell session={session}>{children}</ConsoleShell>;
}
