/**
 * The browser's HTTP client for the console API: one place where a non-2xx answer becomes a typed
 * {@link ApiError} (code, status, message and the body, e.g. the current `lock` of a 409), and a
 * network failure becomes one too (status 0), so components never parse error bodies themselves.
 */
import type {
  AuditEntry,
  BackendStatus,
  ContentionRanking,
  LockContention,
  SchedulerOverview,
  WindowName,
  HistoryEvent,
  LockInfo,
  LockList,
  ReleaseAnswer,
  ReleaseRequest,
  SessionInfo,
} from './types';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    /** HTTP status; 0 when the server could not be reached at all. */
    readonly status: number,
    /** The API's error code (`lock_changed`, `forbidden`...), or `network` / `http_<status>`. */
    readonly code: string,
    message: string,
    /** The whole error body, for answers that carry more (a 409 carries the new `lock`). */
    readonly body: unknown = null,
  ) {
    super(message);
  }
}

export function isApiError(err: unknown, status?: number): err is ApiError {
  return err instanceof ApiError && (status === undefined || err.status === status);
}

interface RequestOptions {
  method?: 'GET' | 'POST';
  body?: unknown;
  signal?: AbortSignal;
}

/** Fetches `path` (same origin, cookie credentials) and returns its JSON, or throws ApiError. */
export async function apiFetch<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method: opts.method ?? 'GET',
      credentials: 'same-origin',
      cache: 'no-store',
      signal: opts.signal,
      headers: opts.body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
    });
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    throw new ApiError(0, 'network', 'The console server cannot be reached.');
  }
  let body: unknown = null;
  const text = await res.text();
  if (text) {
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      body = null;
    }
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
    const code = typeof e?.code === 'string' ? e.code : `http_${res.status}`;
    const message = typeof e?.message === 'string' ? e.message : `${opts.method ?? 'GET'} ${path} answered ${res.status}`;
    throw new ApiError(res.status, code, message, body);
  }
  return body as T;
}

function query(params: Record<string, string | number | undefined>): string {
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') sp.set(k, String(v));
  const s = sp.toString();
  return s ? `?${s}` : '';
}

/** The most locks one listing returns (the server's MAX_LIST_LIMIT). */
export const LIST_LIMIT = 10_000;

export const api = {
  session: (signal?: AbortSignal) => apiFetch<SessionInfo>('/api/session', { signal }),
  backends: (signal?: AbortSignal) => apiFetch<{ backends: BackendStatus[] }>('/api/backends', { signal }),
  locks: (signal?: AbortSignal) => apiFetch<LockList>(`/api/locks${query({ limit: LIST_LIMIT })}`, { signal }),
  detail: (backend: string, key: string, signal?: AbortSignal) =>
    apiFetch<{ now: number; lock: LockInfo; history: HistoryEvent[] }>(`/api/locks/detail${query({ backend, key })}`, { signal }),
  history: (backend: string, key: string, signal?: AbortSignal) =>
    apiFetch<{ now: number; history: HistoryEvent[] }>(`/api/locks/history${query({ backend, key })}`, { signal }),
  audit: (filter: AuditFilter & { before?: number; limit?: number }, signal?: AbortSignal) =>
    apiFetch<{ entries: AuditEntry[] }>(`/api/audit${query({ ...filter })}`, { signal }),
  contention: (window: WindowName, signal?: AbortSignal) => apiFetch<ContentionRanking>(`/api/contention${query({ window, limit: 50 })}`, { signal }),
  contentionLock: (backend: string, key: string, window: WindowName, signal?: AbortSignal) =>
    apiFetch<LockContention>(`/api/contention/lock${query({ backend, key, window })}`, { signal }),
  scheduler: (signal?: AbortSignal) => apiFetch<SchedulerOverview>('/api/scheduler', { signal }),
  release: (body: ReleaseRequest) => apiFetch<ReleaseAnswer>('/api/locks/release', { method: 'POST', body }),
  login: (token: string) => apiFetch<{ role: SessionInfo['role']; readOnly: boolean; expiresAt: number }>('/api/login', { method: 'POST', body: { token } }),
  logout: () => apiFetch<{ ok: true }>('/api/logout', { method: 'POST', body: {} }),
};

/** Audit filters: exact matches, as the API applies them. */
export interface AuditFilter {
  backend?: string;
  key?: string;
  actor?: string;
  result?: string;
}

/** Where the browser goes when the API says 401: the login page, back here afterwards. */
export function loginUrl(next?: string): string {
  const here = next ?? (typeof window === 'undefined' ? '/' : `${window.location.pathname}${window.location.search}`);
  return here && here !== '/' && !here.startsWith('/login') ? `/login?next=${encodeURIComponent(here)}` : '/login';
}

/** Set once the page is on its way to the login page, so that later 401s do not redirect again. */
let leaving = false;

/** Sends the browser to the login page (a full load, so no state of the old session survives). */
export function redirectToLogin(): void {
  if (typeof window === 'undefined' || leaving || window.location.pathname === '/login') return;
  leaving = true;
  window.location.assign(loginUrl());
}

/** Signing out: from now on a 401 (the session is gone on purpose) must not pick another target. */
export function leaveForLogin(): void {
  leaving = true;
}
