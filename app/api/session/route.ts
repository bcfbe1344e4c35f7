import { withAuth } from '@/lib/console/auth';
import { jsonResponse, methodNotAllowed } from '@/lib/console/http';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

/** Who the caller is, so the UI can hide what it may not do. */
export const GET = withAuth({ role: 'viewer' }, (_request, { principal, config }) =>
  jsonResponse({
    role: principal.role,
    readOnly: config.readOnly,
    canRelease: principal.role === 'operator' && !config.readOnly,
    via: principal.via,
    expiresAt: principal.expiresAt,
  }),
);

/** Any other method: 405 in the API's error shape, not Next's empty one (http.ts). */
const notAllowed = methodNotAllowed(['GET', 'HEAD']);
export { notAllowed as POST, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE };
