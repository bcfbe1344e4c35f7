import 'server-only';

/**
 * The one place where errors become HTTP answers (contract.md §3): every error body is
 * `{"error": {"code", "message"}}`. Bad input is always a 4xx; a 5xx means the console or a
 * backend failed, never that the request was odd.
 */
import { z } from 'zod';

import { LockError } from '../locks/errors';
import { formatPath } from './config';

/** An answer decided by the console itself (auth, CSRF, validation, not found...). */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const NO_STORE = { 'Cache-Control': 'no-store' } as const;

export interface ErrorBody {
  error: { code: string; message: string };
}

/** lib/locks error codes (errors.ts) and the HTTP status each one means. */
const LOCK_ERROR_STATUS: Record<string, number> = {
  unknown_backend: 400,
  invalid_argument: 400,
  backend_unavailable: 503,
  not_supported: 501,
  acquire_timeout: 409,
  lock_lost: 409,
  // A Redis backend with waitReplicas whose write no replica confirmed in time (retryable).
  replication_unconfirmed: 503,
};

/**
 * Errors are recognised by `name` and `code`, not `instanceof`: the backends live in a globalThis
 * singleton that another Next module graph (instrumentation.ts) may have created, so their
 * error classes are not this graph's classes.
 */
function isNamed(err: unknown, name: string): boolean {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === name;
}

/** Status, code and message for any thrown value. */
export function describeError(err: unknown): { status: number; code: string; message: string; headers?: Record<string, string> } {
  if (err instanceof HttpError || (isNamed(err, 'HttpError') && typeof (err as HttpError).status === 'number')) {
    const e = err as HttpError;
    return { status: e.status, code: e.code, message: e.message, headers: e.headers };
  }
  if (err instanceof z.ZodError || (isNamed(err, 'ZodError') && Array.isArray((err as z.ZodError).issues))) {
    const issue = (err as z.ZodError).issues[0];
    const message = issue ? `${formatPath(issue.path)}: ${issue.message}` : 'invalid request';
    return { status: 400, code: 'invalid_request', message };
  }
  // By code only: bundlers may rename classes, and lib/locks codes are string literals.
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  if (typeof code === 'string' && LOCK_ERROR_STATUS[code] !== undefined) {
    return { status: LOCK_ERROR_STATUS[code], code, message: (err as Error).message, ...(code === 'backend_unavailable' ? { headers: { 'Retry-After': '5' } } : {}) };
  }
  if (err instanceof LockError) return { status: 500, code: err.code, message: err.message };
  return { status: 500, code: 'internal', message: 'internal error; see the server log' };
}

export function errorResponse(err: unknown): Response {
  const d = describeError(err);
  if (d.status >= 500 && d.code !== 'backend_unavailable' && !isNamed(err, 'HttpError')) {
    console.error('[lockdeck] request failed:', err);
  }
  return jsonResponse({ error: { code: d.code, message: d.message } } satisfies ErrorBody, d.status, d.headers);
}

/**
 * The handler for the methods a route does not implement: 405 in the error shape with `Allow`.
 * Without it Next.js answers them itself with an empty 405 body, which breaks the rule that
 * every error is `{"error": {"code", "message"}}`. Route files export it under each method
 * they do not implement: `export { notAllowed as PUT, ... }` (HEAD follows GET by itself).
 */
export function methodNotAllowed(allow: readonly string[]): (request: Request) => Response {
  const list = allow.join(', ');
  return (request) => errorResponse(new HttpError(405, 'method_not_allowed', `${request.method} is not allowed on this route; use ${list}`, { Allow: list }));
}

export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return Response.json(body, { status, headers: { ...NO_STORE, ...headers } });
}

export const MAX_BODY_BYTES = 16 * 1024;

/**
 * Reads a JSON request body of at most `maxBytes`, refusing anything else with a 4xx:
 * 413 too large (by Content-Length before reading, or while streaming), 415 not JSON (a
 * cross-site HTML form can only send form encodings or text/plain, so insisting on JSON is also
 * a second CSRF barrier), 400 malformed.
 */
export async function readJsonBody(request: Request, maxBytes = MAX_BODY_BYTES): Promise<unknown> {
  const type = request.headers.get('content-type') ?? '';
  if (!/^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i.test(type)) {
    throw new HttpError(415, 'unsupported_media_type', 'send the body as Content-Type: application/json');
  }
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) {
    throw new HttpError(413, 'body_too_large', `request body is larger than ${maxBytes} bytes`);
  }
  const text = await readCapped(request, maxBytes);
  if (text.trim() === '') throw new HttpError(400, 'invalid_json', 'request body is empty; expected a JSON object');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError(400, 'invalid_json', `request body is not valid JSON: ${(err as Error).message}`);
  }
}

async function readCapped(request: Request, maxBytes: number): Promise<string> {
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new HttpError(413, 'body_too_large', `request body is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new HttpError(400, 'invalid_json', 'request body is not valid UTF-8');
  }
}

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** A lock key as named in a request: 1..512 characters, no control characters (lib/locks rule). */
export const keySchema = z
  .string({ error: 'must be a string' })
  .min(1, 'must not be empty')
  .max(512, 'must be at most 512 characters')
  .refine((s) => !CONTROL_CHARS.test(s), 'must not contain control characters');

/** A backend id as the config defines them; existence is checked against the registry. */
export const backendIdSchema = z.string({ error: 'must be a string' }).regex(/^[a-z0-9-]{1,40}$/, 'must match [a-z0-9-]{1,40}');

/** Free text filter: plain text (never a glob), bounded. */
export const filterTextSchema = z
  .string()
  .max(512, 'must be at most 512 characters')
  .refine((s) => !CONTROL_CHARS.test(s), 'must not contain control characters');

/** Reads one query parameter, refusing repeats (`?key=a&key=b` is ambiguous). */
export function queryParam(url: URL, name: string): string | undefined {
  const all = url.searchParams.getAll(name);
  if (all.length > 1) throw new HttpError(400, 'invalid_request', `${name}: give it at most once`);
  return all[0];
}

/** Parses an optional integer query parameter within bounds. */
export function intParam(url: URL, name: string, def: number, min: number, max: number): number {
  const raw = queryParam(url, name);
  if (raw === undefined || raw === '') return def;
  if (!/^\d+$/.test(raw)) throw new HttpError(400, 'invalid_request', `${name}: must be an integer from ${min} to ${max}`);
  const n = Number(raw);
  if (n < min || n > max) throw new HttpError(400, 'invalid_request', `${name}: must be an integer from ${min} to ${max}`);
  return n;
}

/** Parses `value` with `schema`, naming the query parameter in the error. */
export function parseParam<T>(schema: z.ZodType<T>, name: string, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new HttpError(400, 'invalid_request', `${name}: ${r.error.issues[0]?.message ?? 'invalid'}`);
  return r.data;
}
