import 'server-only';

import { cookies } from 'next/headers';

import { getConfig } from '@/lib/console/config';
import { readTokens, SESSION_COOKIE, sessionSecret, verifySession } from '@/lib/console/session';
import type { SessionInfo } from '@/lib/client/types';

/**
 * The signed-in session from the request's cookie, checked the same way the API checks it
 * (lib/console/session.ts), or null. Pages use it to send a stranger to the login page before
 * anything renders and to draw the right buttons on the first paint. The API routes still check
 * every request themselves: this is for the page, not the protection.
 */
export async function currentSession(): Promise<SessionInfo | null> {
  const value = (await cookies()).get(SESSION_COOKIE)?.value;
  if (!value) return null;
  const s = verifySession(value, readTokens(), sessionSecret(), Date.now());
  if (!s) return null;
  const readOnly = getConfig().readOnly;
  return { role: s.role, readOnly, canRelease: s.role === 'operator' && !readOnly, via: 'cookie', expiresAt: s.expiresAt };
}
