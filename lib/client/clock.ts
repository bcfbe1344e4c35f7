/**
 * The console server's clock, as the browser estimates it. Every TTL and "held for" is computed
 * from the server's time, never from the browser's alone: a laptop whose clock is two minutes off
 * must not show a healthy lock as expired (style-anchors "keep the whole stack honest about time").
 *
 * offset = server `now` − Date.now() at the moment an answer carrying `now` arrives (the snapshot
 * of the event stream, /api/locks, /api/locks/detail). Every sample is low by the time the answer
 * spent in flight and waiting for the page's main thread (hundreds of ms while a big snapshot is
 * parsed), never high, so the estimate is the largest of the last few samples (up to 5 within 10 s; NTP's
 * minimum-delay filter): one answer handled late no longer makes every TTL look a moment longer
 * (seen as a TTL 59 ms over its bound in e2e/live.spec.ts).
 *
 * `useServerNow()` is one shared 1 s ticker (one interval for the whole page, however many
 * countdowns are visible), aligned to the server's second boundaries so every countdown ticks
 * together.
 */
import { useSyncExternalStore } from 'react';

let offsetMs = 0;
let measured = false;
// Samples of the last WINDOW_MS only (by the monotonic clock): a step of the browser's own clock
// invalidates older ones, and must not outlive this window.
const WINDOW_MS = 10_000;
const samples: { offset: number; at: number }[] = [];

/** Records the server time `serverNow` carried by an answer received just now. */
export function observeServerTime(serverNow: number, receivedAt = Date.now()): void {
  if (!Number.isFinite(serverNow)) return;
  const at = performance.now();
  samples.push({ offset: serverNow - receivedAt, at });
  while (samples.length > 1 && (samples.length > 5 || at - samples[0]!.at > WINDOW_MS)) samples.shift();
  offsetMs = Math.max(...samples.map((x) => x.offset));
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
