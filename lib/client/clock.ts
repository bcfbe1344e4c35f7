/**
 * The console server's clock, as the browser estimates it. Every TTL and "held for" is computed
 * from the server's time, never from the browser's alone: a laptop whose clock is two minutes off
 * must not show a healthy lock as expired (style-anchors "keep the whole stack honest about time").
 *
 * offset = server `now` − Date.now() at the moment an answer carrying `now` arrives (the snapshot
 * of the event stream, /api/locks, /api/locks/detail). The latest measurement wins: a network
 * delay makes it a little early, by the one-way latency, which is far below the 1 s resolution
 * shown.
 *
 * `useServerNow()` is one shared 1 s ticker (one interval for the whole page, however many
 * countdowns are visible), aligned to the server's second boundaries so every countdown ticks
 * together.
 */
import { useSyncExternalStore } from 'react';

let offsetMs = 0;
let measured = false;

/** Records the server time `serverNow` carried by an answer received just now. */
export function observeServerTime(serverNow: number, receivedAt = Date.now()): void {
  if (!Number.isFinite(serverNow)) return;
  offsetMs = serverNow - receivedAt;
  measured = true;
  emit();
}

/** Server epoch ms, now. */
export function serverNow(): number {
  return Date.now() + offsetMs;
}

/** The current estimate of server − browser clock, in ms. */
export function clockOffset(): { offsetMs: number; measured: boolean } {
  return { offsetMs, measured };
}

const listeners = new Set<() => void>();
let timer: ReturnType<typeof setTimeout> | undefined;
let tick = serverNow();

function emit(): void {
  tick = serverNow();
  for (const l of [...listeners]) l();
}

function schedule(): void {
  // Next whole second of the server clock (+5 ms so the rounding lands past the boundary).
  const wait = 1000 - (((serverNow() % 1000) + 1000) % 1000) + 5;
  timer = setTimeout(() => {
    emit();
    if (listeners.size > 0) schedule();
  }, wait);
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  if (listeners.size === 1) {
    tick = serverNow();
    schedule();
  }
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0) {
      clearTimeout(timer);
      timer = undefined;
    }
  };
}

const getSnapshot = () => tick;
const getServerSnapshot = () => 0;

/** Server epoch ms, re-rendering the caller once a second. 0 during server rendering. */
export function useServerNow(): number {
  return useSyncExternalStore(subscribe, getSnapshot, getServerSnapshot);
}
