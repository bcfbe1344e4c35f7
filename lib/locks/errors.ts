/**
 * lockdeck's error taxonomy. Each class sets `name` and a stable `code`; the console maps them to
 * HTTP in exactly one place (lib/console/http.ts). `retryable` marks transient failures.
 */
export class LockError extends Error {
  readonly code: string = 'lock_error';
  readonly retryable: boolean = false;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad arguments: an empty name, a non-integer TTL... Thrown before anything is sent. */
export class InvalidArgumentError extends LockError {
  override readonly code = 'invalid_argument';
}

/** `acquire` waited `waitMs` and the lock was still held. */
export class AcquireTimeoutError extends LockError {
  override readonly code = 'acquire_timeout';
  constructor(readonly lockName: string, readonly waitedMs: number) {
    super(`lock "${lockName}" still held after waiting ${waitedMs} ms`);
  }
}

/** The lock was lost while held (renewal failed, forced release, expiry, session loss). */
export class LockLostError extends LockError {
  override readonly code = 'lock_lost';
  constructor(readonly lockName: string, readonly reason: import('./types').LostReason, options?: ErrorOptions) {
    super(`lock "${lockName}" lost: ${reason}`, options);
  }
}

/** The store did not answer or refused the connection. */
export class BackendUnavailableError extends LockError {
  override readonly code = 'backend_unavailable';
  override readonly retryable = true;
}

/**
 * A write was not confirmed on enough replicas in time (Redis `WAIT`, backend option
 * `waitReplicas`): the primary took it, but a failover now could lose it. Thrown by an acquire
 * (the lock was given back by its token first, so it is not held), a release (it took effect on
 * the primary; only its replication is unconfirmed) and, inside the handle, a renewal (the lease
 * the holder counts on is not extended). Retryable: replicas may catch up.
 */
export class ReplicationError extends LockError {
  override readonly code = 'replication_unconfirmed';
  override readonly retryable = true;
  constructor(
    readonly lockName: string,
    readonly op: 'acquire' | 'release' | 'renew',
    readonly acked: number,
    readonly required: number,
    readonly timeoutMs: number,
    detail = '',
  ) {
    super(`lock "${lockName}": ${op} not confirmed by replicas: ${acked} of ${required} required acknowledged within ${timeoutMs} ms (WAIT)${detail ? `; ${detail}` : ''}`);
  }
}

/** A backend id that the configuration does not define. */
export class UnknownBackendError extends LockError {
  override readonly code = 'unknown_backend';
  constructor(readonly backendId: string) {
    super(`unknown backend "${backendId}"`);
  }
}

/** The backend cannot do what was asked (e.g. force-release a layout it only reads). */
export class NotSupportedError extends LockError {
  override readonly code = 'not_supported';
}

/** The standard AbortError that a wait rejects with when its signal aborts without a reason. */
export function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}
