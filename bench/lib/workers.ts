/**
 * Parent side of the lock worker processes: start (node --import tsx bench/worker.ts), call over
 * IPC with a timeout on every request, and stop — every worker this module started is stopped by
 * stopAllWorkers(), which run.ts calls in its finally.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { pin } from './machine';
import type { Counters, Request, Response, WorkerEvent, WorkerSpec } from './protocol';
import { withTimeout } from './stats';

const WORKER = fileURLToPath(new URL('../worker.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Distributes Omit over a union, so each request variant keeps its own fields. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
type Ok = Extract<Response, { ok: true }>;

const live = new Set<BenchWorker>();

export class BenchWorker {
  private nextId = 1;
  private readonly calls = new Map<number, { resolve: (r: Ok) => void; reject: (e: Error) => void }>();
  private readonly events = new Map<string, () => void>();
  private readonly seenEvents = new Set<string>();
  private exited = false;
  pid = 0;

  private constructor(
    readonly label: string,
    private readonly proc: ChildProcess,
  ) {
    proc.on('message', (m: Response | WorkerEvent) => this.onMessage(m));
    proc.on('exit', (code, sig) => {
      this.exited = true;
      live.delete(this);
      for (const c of this.calls.values()) c.reject(new Error(`worker ${label} exited (${code ?? sig})`));
      this.calls.clear();
    });
  }

  /** Starts a worker and initialises its lock client; `cpu` pins it with taskset (e.g. "1"). */
  static async start(label: string, spec: WorkerSpec, opts: { cpu?: string; timeoutMs?: number } = {}): Promise<BenchWorker> {
    const proc = spawn(process.execPath, ['--import', 'tsx', WORKER], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env },
    });
    const w = new BenchWorker(label, proc);
    live.add(w);
    w.pid = proc.pid ?? 0;
    if (opts.cpu && w.pid) pin(w.pid, opts.cpu);
    await w.call({ op: 'init', spec }, opts.timeoutMs ?? 20_000);
    return w;
  }

  private onMessage(m: Response | WorkerEvent): void {
    if ('event' in m) {
      const key = `${m.id}:${m.event}`;
      const waiter = this.events.get(key);
      if (waiter) {
        this.events.delete(key);
        waiter();
      } else {
        this.seenEvents.add(key);
      }
      return;
    }
    const c = this.calls.get(m.id);
    if (!c) return;
    this.calls.delete(m.id);
    if (m.ok) c.resolve(m);
    else c.reject(new Error(`worker ${this.label}: ${m.error}`));
  }

  /** Sends a request; returns its id at once and the reply as a promise. */
  request(req: WithoutId<Request>, timeoutMs = 10_000): { id: number; reply: Promise<Ok> } {
    if (this.exited) throw new Error(`worker ${this.label} has exited`);
    const id = this.nextId++;
    const reply = new Promise<Ok>((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.proc.send({ ...req, id } as Request);
    });
    return {
      id,
      reply: withTimeout(reply, timeoutMs, `worker ${this.label} ${req.op}`).catch((err: unknown) => {
        this.calls.delete(id);
        throw err;
      }),
    };
  }

  call(req: WithoutId<Request>, timeoutMs = 10_000): Promise<Ok> {
    return this.request(req, timeoutMs).reply;
  }

  /** Resolves when the worker sends `event` for request `id` (or has already sent it). */
  waitEvent(id: number, event: WorkerEvent['event'], timeoutMs: number): Promise<void> {
    const key = `${id}:${event}`;
    if (this.seenEvents.delete(key)) return Promise.resolve();
    const p = new Promise<void>((resolve) => this.events.set(key, resolve));
    return withTimeout(p, timeoutMs, `worker ${this.label} event ${event}`).finally(() => this.events.delete(key));
  }

  async counters(): Promise<Counters> {
    const r = await this.call({ op: 'stats' });
    return r.counters ?? { commands: 0, messages: 0 };
  }

  /** Closes the lock client and waits for the process to exit (SIGKILL after `timeoutMs`). */
  async stop(timeoutMs = 3000): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
    try {
      await this.call({ op: 'close' }, timeoutMs); // the worker exits by itself after replying
    } catch {
      if (!this.exited) this.proc.kill('SIGTERM');
    }
    const killer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    await exited;
    clearTimeout(killer);
  }
}

export async function stopAllWorkers(): Promise<void> {
  await Promise.allSettled([...live].map((w) => w.stop()));
}

export function sumCounters(cs: readonly Counters[]): Counters {
  return cs.reduce((a, c) => ({ commands: a.commands + c.commands, messages: a.messages + c.messages }), { commands: 0, messages: 0 });
}
