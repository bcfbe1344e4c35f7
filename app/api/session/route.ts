import { withAuth } from '@/lib/console/auth';
import { jsonResponse } from '@/lib/console/http';

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
