import type { AcquireOptions, LockClient, LockHandle } from './types';

/**
 * Runs `fn` while holding `name`: acquires (waiting as `opts` says), renews automatically, and
 * always releases, even when `fn` throws. `fn` gets the handle's `signal`, which aborts if the lock
 * is lost midway: long work should check it (or pass it on) and stop, since someone else may now
 * hold the lock. As with every lease-based lock, a paused process can outlive its lease: protect
 * the resource with `handle.fence`, not only with the lock.
 */
export async function withLock<T>(
  client: LockClient,
  name: string,
  opts: Partial<AcquireOptions>,
  fn: (signal: AbortSignal, handle: LockHandle) => Promise<T> | T,
): Promise<T> {
  const handle = await client.acquire(name, opts);
  try {
    return await fn(handle.signal, handle);
  } finally {
    await handle.release();
  }
}
