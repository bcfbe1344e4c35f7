import { login } from '@/lib/console/login';

export const runtime = 'nodejs';
export const dynamic = 'force-dynamic';

/** `{"token"}` → session cookie: the form counterpart of `/?token=` (for a login page). */
export const POST = login;
