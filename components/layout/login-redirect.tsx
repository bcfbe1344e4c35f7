'use client';

import { useEffect } from 'react';

import { loginUrl } from '@/lib/client/api';

/** Rendered instead of a page when there is no valid session: off to the login page, back here after. */
export function LoginRedirect() {
  useEffect(() => {
    window.location.replace(loginUrl());
  }, []);
  return (
    <p role="status" className="p-10 text-center text-sm text-muted-foreground">
      Your session has ended. Taking you to the sign-in page…
    </p>
  );
}
