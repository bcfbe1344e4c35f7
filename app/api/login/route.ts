import { methodNotAllowed } from '@/lib/console/http';
import { login } from '@/lib/console/login';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

/** `{"token"}` → session cookie: the form counterpart of `/?token=` (for a login page). */
export const POST = login;

/** Any other method: 405 in the API's error shape, not Next's empty one (http.ts). */
const notAllowed = methodNotAllowed(['POST']);
export { notAllowed as GET, notAllowed as PUT, notAllowed as PATCH, notAllowed as DELETE };
