'use client';

import { useState, type FormEvent } from 'react';
import { useQueryClient } from '@tanstack/react-query';

import { Button } from '@/components/ui/button';
import { Callout } from '@/components/ui/callout';
import { Input, Label } from '@/components/ui/input';
import { api, isApiError } from '@/lib/client/api';

/** Only same-site paths: `next` comes from the URL and must not send anyone elsewhere. */
function safeNext(next: string | null): string {
  if (!next || !next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\') || next.startsWith('/login')) return '/';
  return next;
}

/** The token form: POST /api/login sets the session cookie, then back to where the person was going. */
export function LoginForm({ next }: { next: string | null }) {
  const qc = useQueryClient();
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (!token.trim()) {
      setError('Paste a token first.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await api.login(token.trim());
      qc.clear();
      // A full load: the console layout reads the new cookie on the server.
      window.location.assign(safeNext(next));
    } catch (err) {
      setBusy(false);
      setError(
        isApiError(err, 401)
          ? 'That token is not valid for this console.'
          : isApiError(err, 429)
            ? 'Too many attempts; wait a minute.'
            : err instanceof Error
              ? err.message
              : String(err),
      );
    }
  };

  return (
    <form onSubmit={submit} className="space-y-4" noValidate>
      <div className="space-y-1.5">
        <Label htmlFor="token" className="text-sm text-foreground">
          Access token
        </Label>
        <Input
          id="token"
          name="token"
          type="password"
          autoComplete="current-password"
          autoFocus
          value={token}
          onChange={(e) => setToken(e.target.value)}
          aria-invalid={error !== null}
          aria-describedby="token-help"
        />
        <p id="token-help" className="text-xs text-muted-foreground">
          The operator token (may release locks) or the viewer token (may look), as set in <code className="font-mono">LOCKDECK_OPERATOR_TOKEN</code> /{' '}
          <code className="font-mono">LOCKDECK_VIEWER_TOKEN</code>, or the login link the server printed at start-up.
        </p>
      </div>
      {error && (
        <Callout tone="danger" role="alert">
          {error}
        </Callout>
      )}
      <Button type="submit" variant="primary" className="w-full" disabled={busy}>
        {busy ? 'Signing in…' : 'Sign in'}
      </Button>
    </form>
  );
}
