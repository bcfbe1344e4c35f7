import { withAuth } from '@/lib/console/auth';
import { methodNotAllowed } from '@/lib/console/http';
import { auditRefusedRelease, handleRelease } from '@/lib/console/release';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

/** Operator only; CSRF-checked; refused in read-only mode; every attempt is audited. */
export const POST = withAuth({ role: 'operator', csrf: true, writes: true, onRefused: auditRefusedRelease }, (request, { principal }) =>
  handleRelease(request, principal),
);

/** Any other method: 405 in the API's error shape, not Next's empty one (http.ts). */
const notAllowed = methodNotAllowed(['POST']);
export { notAllowed as GET, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE };
