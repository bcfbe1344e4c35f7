import { withAuth } from '@/lib/console/auth';
import { getEventHub } from '@/lib/console/events';
import { backendIdSchema, jsonResponse, keySchema, parseParam, queryParam } from '@/lib/console/http';
import { getLockDetail } from '@/lib/console/inventory';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export const GET = withAuth({ role: 'viewer' }, async (_request, { url }) => {
  const backend = parseParam(backendIdSchema, 'backend', queryParam(url, 'backend'));
  const key = parseParam(keySchema, 'key', queryParam(url, 'key'));
  // History is recorded by the watches: open them at the first look, if no stream did yet.
  getEventHub().ensureStarted();
  return jsonResponse(await getLockDetail(backend, key));
});
