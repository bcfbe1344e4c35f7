import { withAuth } from '@/lib/console/auth';
import { jsonResponse } from '@/lib/console/http';
import { getRegistry } from '@/lib/console/registry';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

/** Statuses at most 1 s old where the backend answers within 300 ms, else the last known. */
export const GET = withAuth({ role: 'viewer' }, async () => {
  const backends = await getRegistry().freshStatuses(1000);
  return jsonResponse({ backends });
});
