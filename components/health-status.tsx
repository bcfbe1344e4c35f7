'use client';

import { queryOptions, useQuery } from '@tanstack/react-query';

import { Badge } from '@/components/ui/badge';

type Health = { ok: boolean };

// TODO(lib/client): move to the shared API client and query-key factory once they exist.
export const healthQueryOptions = queryOptions({
  queryKey: ['health'],
  queryFn: async ({ signal }): Promise<Health> => {
    const res = await fetch('/api/health', { signal, cache: 'no-store' });
    if (!res.ok) throw new Error(`GET /api/health answered ${res.status}`);
    return (await res.json()) as Health;
  },
  refetchInterval: 30_000,
});

/** The console API's own liveness, polled; says nothing about the lock backends. */
export function HealthStatus() {
  const { data, isPending, isError, error } = useQuery(healthQueryOptions);

  // role="status" so a change (ok → unreachable) is announced without stealing focus.
  return (
    <div role="status" className="flex items-center gap-3">
      {isPending ? (
        <Badge tone="neutral">API: checking…</Badge>
      ) : isError ? (
        <Badge tone="danger" title={error.message}>
          API: unreachable
        </Badge>
      ) : data.ok ? (
        <Badge tone="success">API: ok</Badge>
      ) : (
        <Badge tone="warning">API: not ok</Badge>
      )}
    </div>
  );
}
