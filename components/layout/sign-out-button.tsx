'use client';

import { useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';

import { api, leaveForLogin } from '@/lib/client/api';

/** POST /api/logout, forget every cached answer, and go to the login page. */
export function SignOutButton() {
  const qc = useQueryClient();
  const [busy, setBusy] = useState(false);
  return (
    <button
      type="button"
      disabled={busy}
      className="inline-flex h-8 items-center rounded-md px-2.5 text-xs font-medium text-muted-foreground hover:bg-muted hover:text-foreground disabled:opacity-50"
      onClick={async () => {
        setBusy(true);
        // The logout makes every request in flight answer 401; those must not send us to
        // `/login?next=…` instead of the plain login page.
        leaveForLogin();
        try {
          await api.logout();
        } catch {
          // Already logged out (401) or unreachable: the cookie is gone or will be refused anyway.
        }
        qc.clear();
        window.location.assign('/login');
      }}
    >
      Sign out
    </button>
  );
}
