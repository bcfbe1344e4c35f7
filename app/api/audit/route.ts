import { getAudit } from '@/lib/console/audit';
import { withAuth } from '@/lib/console/auth';
import { backendIdSchema, filterTextSchema, intParam, jsonResponse, keySchema, methodNotAllowed, parseParam, queryParam } from '@/lib/console/http';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

export const GET = withAuth({ role: 'viewer' }, (_request, { url }) => {
  const opt = <T,>(name: string, parse: (v: string) => T): T | undefined => {
    const v = queryParam(url, name);
    return v === undefined || v === '' ? undefined : parse(v);
  };
  const entries = getAudit().query({
    backend: opt('backend', (v) => parseParam(backendIdSchema, 'backend', v)),
    key: opt('key', (v) => parseParam(keySchema, 'key', v)),
    actor: opt('actor', (v) => parseParam(filterTextSchema, 'actor', v)),
    result: opt('result', (v) => parseParam(filterTextSchema, 'result', v)),
    before: opt('before', () => intParam(url, 'before', 0, 1, Number.MAX_SAFE_INTEGER)),
    limit: intParam(url, 'limit', 100, 1, 1000),
  });
  return jsonResponse({ entries });
});

/** Any other method: 405 in the API's error shape, not Next's empty one (http.ts). */
const notAllowed = methodNotAllowed(['GET', 'HEAD']);
export { notAllowed as POST, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE };
