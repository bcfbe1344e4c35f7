/**
 * A peer client in its own Python process (kazoo, redis-py: Debian's python3), driven over a line
 * protocol on stdin/stdout: the bench sends a command, the script answers one line per step
 * ("ready", "blocked", "acquired <t>" ...; see each script's docstring). Timestamps in the
 * answers are CLOCK_MONOTONIC, comparable with the bench's own.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';

import { pin } from './machine';
import { withTimeout } from './stats';

export const PYTHON = '/usr/bin/python3';

export class PythonPeer {
  private readonly lines: string[] = [];
  private waiting: ((l: string) => void) | undefined;
  private exited = false;

  private constructor(
    readonly label: string,
    private readonly proc: ChildProcessWithoutNullStreams,
  ) {
    createInterface({ input: proc.stdout }).on('line', (l) => {
      const w = this.waiting;
      if (w) {
        this.waiting = undefined;
        w(l);
      } else this.lines.push(l);
    });
    proc.stderr.on('data', (d: Buffer) => process.stderr.write(`[${label}] ${d.toString()}`));
    proc.on('exit', () => (this.exited = true));
  }

  /** Starts `script args...` (pinned to `cpu` when given) and waits for its "ready". */
  static async start(label: string, script: string, args: string[], cpu?: string): Promise<PythonPeer> {
    const proc = spawn(PYTHON, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    if (cpu && proc.pid) pin(proc.pid, cpu);
    const p = new PythonPeer(label, proc);
    await p.expect('ready', 20_000);
    return p;
  }

  private next(timeoutMs: number): Promise<string> {
    const l = this.lines.shift();
    if (l !== undefined) return Promise.resolve(l);
    if (this.exited) return Promise.reject(new Error(`${this.label} has exited`));
    return withTimeout(new Promise<string>((r) => (this.waiting = r)), timeoutMs, `${this.label} reply`);
  }

  /** Next line, which must start with `word`; returns the rest. */
  async expect(word: string, timeoutMs = 10_000): Promise<string> {
    const l = await this.next(timeoutMs);
    if (!l.startsWith(word)) throw new Error(`${this.label}: expected "${word}", got "${l}"`);
    return l.slice(word.length).trim();
  }

  send(cmd: string): void {
    this.proc.stdin.write(cmd + '\n');
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.proc.once('exit', () => r()));
    this.proc.stdin.end('exit\n');
    const killer = setTimeout(() => this.proc.kill('SIGKILL'), 3000);
    await gone;
    clearTimeout(killer);
  }
}
