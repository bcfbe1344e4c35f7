import { withAuth } from '@/lib/console/auth';
import { getEventHub } from '@/lib/console/events';
import { backendIdSchema, filterTextSchema, intParam, methodNotAllowed, parseParam, queryParam } from '@/lib/console/http';
import { DEFAULT_LIST_LIMIT, listLiveLocks, listLocks, lockListResponse, MAX_LIST_LIMIT, type ListOptions } from '@/lib/console/inventory';
import { HttpError } from '@/lib/console/http';
import { SORTS, type SortDir, type SortKey } from '@/lib/client/locks';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

/**
 * `GET /api/locks?backend=&q=&limit=` (contract), plus (added):
 *  - `sort=attention|ttl|age|waiters|key` and `dir=asc|desc`: the order of the locks page's table,
 *    applied before `limit` cuts, so `limit=200` is the screenful the table shows first;
 *  - `source=live`: the event hub's current state instead of a new listing of every backend (no
 *    store round trip; see listLiveLocks in lib/console/inventory.ts). The answer says
 *    `"source": "live"`.
 */
export const GET = withAuth({ role: 'viewer' }, async (_request, { url }) => {
  const backend = queryParam(url, 'backend');
  const q = queryParam(url, 'q');
  const sort = queryParam(url, 'sort');
  const dir = queryParam(url, 'dir');
  const source = queryParam(url, 'source');
  if (sort && !Object.hasOwn(SORTS, sort)) throw new HttpError(400, 'invalid_request', `sort: must be one of ${Object.keys(SORTS).join(', ')}`);
  if (dir && dir !== 'asc' && dir !== 'desc') throw new HttpError(400, 'invalid_request', 'dir: must be asc or desc');
  if (source && source !== 'live' && source !== 'backends') throw new HttpError(400, 'invalid_request', 'source: must be live or backends');
  const opts: ListOptions = {
    backend: backend ? parseParam(backendIdSchema, 'backend', backend) : undefined,
    q: q ? parseParam(filterTextSchema, 'q', q) : undefined,
    limit: intParam(url, 'limit', DEFAULT_LIST_LIMIT, 1, MAX_LIST_LIMIT),
    sort: sort ? (sort as SortKey) : undefined,
    dir: dir ? (dir as SortDir) : sort ? SORTS[sort as SortKey].dir : undefined,
  };
  const started = performance.now();
  const list = source === 'live' ? await listLiveLocks(opts, (id) => getEventHub().liveLocks(id)) : await listLocks(opts);
  // Server-Timing: how long the listing took before the first byte (the JSON is streamed after it).
  return lockListResponse(list, { 'Server-Timing': `list;dur=${(performance.now() - started).toFixed(1)}` });
});

/** Any other method: 405 in the API's error shape, not Next's empty one (http.ts). */
const notAllowed = methodNotAllowed(['GET', 'HEAD']);
export { notAllowed as POST, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE };
