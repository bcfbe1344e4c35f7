/**
 * Push wake-ups between the instances that share one lock file.
 *
 * SQLite has no notifications, so after every commit that frees a lock or changes what the
 * inspector shows, the writer touches a sidecar file (`<db>.wake`, its mtime) and every instance
 * in every process watches that file with `fs.watch` (inotify on Linux, so the kernel pushes the
 * change; no polling). Instances in the same process are also called directly, which neither
 * depends on the watcher nor waits for it. A wake-up only says "look again": receivers re-read
 * the tables, so a coalesced or duplicated notification is harmless, and a lost one is covered by
 * the waiters' bounded re-check.
 *
 * The wake file is not the db's `-wal` file on purpose: that one changes on every renewal and
 * waiter lease refresh, which would wake everyone for nothing.
 */
import { closeSync, openSync, utimesSync, watch, type FSWatcher } from 'node:fs';

/** Listeners in this process, per wake file. */
const local = new Map<string, Set<() => void>>();

function ensureFile(path: string): void {
  closeSync(openSync(path, 'a'));
}

/** Signals every instance (in any process) that watches `path`. Never throws. */
export function touch(path: string): void {
  const now = new Date();
  try {
    utimesSync(path, now, now);
  } catch {
    try {
      ensureFile(path);
    } catch {
      // The wake-up is an optimisation: waiters re-check on their own, bounded timer.
    }
  }
  const listeners = local.get(path);
  if (listeners) for (const l of [...listeners]) l();
}

/**
 * Calls `onWake` whenever any instance touches `path`: directly for instances in this process,
 * through `fs.watch` for the others. The watcher keeps the process alive only while `setRef(true)`
 * says that someone depends on it (as an open connection would), never when idle.
 */
export class WakeListener {
  private watcher: FSWatcher | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private ref = false;

  constructor(
    private readonly path: string,
    private readonly onWake: () => void,
  ) {
    let set = local.get(path);
    if (!set) local.set(path, (set = new Set()));
    set.add(onWake);
    this.startWatcher();
  }

  setRef(ref: boolean): void {
    if (ref === this.ref) return;
    this.ref = ref;
    if (ref) this.watcher?.ref();
    else this.watcher?.unref();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.watcher?.close();
    this.watcher = undefined;
    const set = local.get(this.path);
    set?.delete(this.onWake);
    if (set?.size === 0) local.delete(this.path);
  }

  private startWatcher(): void {
    if (this.closed) return;
    try {
      ensureFile(this.path);
      const w = watch(this.path, (type) => {
        // `rename`: the file was removed or replaced, so this watch now follows a dead inode.
        if (type === 'rename') this.restartSoon();
        this.onWake();
      });
      w.on('error', () => this.restartSoon());
      if (!this.ref) w.unref();
      this.watcher = w;
    } catch {
      this.restartSoon();
    }
  }

  private restartSoon(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.startWatcher();
      this.onWake();
    }, 100);
    this.retryTimer.unref();
  }
}
