import { withAuth } from '@/lib/console/auth';
import { getConfig } from '@/lib/console/config';
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
export const GET = withAuth({ role: 'viewer' }, async (request, { url }) => {
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
  const headers: Record<string, string> = { 'Server-Timing': `list;dur=${(performance.now() - started).toFixed(1)}` };
  if (sameHostClient(request)) headers['Cache-Control'] = 'no-store, no-transform';
  return lockListResponse(list, headers);
});

const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\]|::1)$/i;
const LOOPBACK_ADDRESS = /^(127(\.\d{1,3}){3}|::1|::ffff:127(\.\d{1,3}){3})$/i;

/**
 * True when the request came straight from a client on this host: then the answer is sent
 * uncompressed (`no-transform` makes `next start`'s gzip pass it by, the only way a route has:
 * Next drops a route's own Content-Encoding). On loopback the bytes cost a copy, while gzip at
 * Next's level (6) costs about as much CPU as serialising the JSON (4.3 MB for 10,000 locks:
 * ~50 ms of the server's CPU on the 2-core bench box, plus the client's inflate).
 *
 * Conservative: any sign of a proxy in front (Forwarded, Via, X-Real-IP, an X-Forwarded-For
 * other than the loopback socket address Next puts there itself), a Host that is not a loopback
 * name, or a configured public URL that is not loopback keeps compression. A proxy on this host
 * that adds none of those headers and rewrites Host to a loopback address (nginx's proxy_pass
 * default) needs the public URL set anyway (LOCKDECK_PUBLIC_URL, for the CSRF check of every
 * POST), which keeps compression for its remote browsers. A client that forges these headers
 * only changes how its own answer is encoded.
 */
function sameHostClient(request: Request): boolean {
  const h = request.headers;
  if (h.has('forwarded') || h.has('via') || h.has('x-real-ip')) return false;
  const xff = h.get('x-forwarded-for');
  if (xff !== null && !LOOPBACK_ADDRESS.test(xff.trim())) return false;
  const host = h.get('host');
  if (!host || !LOOPBACK_HOST.test(host.replace(/:\d+$/, ''))) return false;
  const pub = getConfig().publicOrigin;
  return pub === null || LOOPBACK_HOST.test(new URL(pub).hostname);
}

/** Any other method: 405 in the API's error shape, not Next's empty one (http.ts). */
const notAllowed = methodNotAllowed(['GET', 'HEAD']);
export { notAllowed as POST, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE };
