/**
 * Whether the event stream is live right now, for code that must not import the stream module
 * (queries.ts: events.ts imports it). Set by events.ts on every connection change.
 */
let live = false;

export function setStreamLive(value: boolean): void {
  live = value;
}

export function isStreamLive(): boolean {
  return live;
}
