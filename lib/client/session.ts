/**
 * Who is logged in, for hiding what they may not do. The console layout reads the session cookie
 * on the server and hands the answer down (so the first paint already has the right buttons);
 * `/api/session` keeps it current. The server checks every request anyway: hiding a button is a
 * courtesy, not the protection.
 */
import { createContext, useContext } from 'react';
import { useQuery } from '@tanstack/react-query';

import { sessionQuery } from './queries';
import type { SessionInfo } from './types';

export const InitialSessionContext = createContext<SessionInfo | null>(null);

/** The session, or undefined while it is not known (treat as "may not release"). */
export function useSession(): SessionInfo | undefined {
  const initial = useContext(InitialSessionContext);
  const { data } = useQuery({ ...sessionQuery(), initialData: initial ?? undefined, initialDataUpdatedAt: initial ? Date.now() : undefined });
  return data;
}

/** Whether the release buttons are shown. */
export function useCanRelease(): boolean {
  return useSession()?.canRelease === true;
}
