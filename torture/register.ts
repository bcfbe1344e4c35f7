/**
 * The protected resource of the torture test: a tiny register server on loopback, outside every
 * lock store under test, as Kleppmann's fencing argument requires ("the storage service checks the
 * token", martin.kleppmann.com/2016/02/08/how-to-do-distributed-locking.html) and as Jepsen's
 * `lock-etcd-set` workload does with an etcd Txn guarded by the lock key's revision
 * (jepsen-io/etcd src/jepsen/etcd/lock.clj).
 *
 * Each lock name has two cells:
 *  - `fenced`: every read and write carries the holder's fence; the cell remembers the highest
 *    fence it has seen (reads count too) and refuses any operation with a lower one. Counting reads
 *    matters: with write-only checks, a holder B (fence 6) can read, a stale holder A (fence 5)
 *    can then write, and B's write (6 ≥ 5) silently overwrites A's increment — a lost update that
 *    "fencing" did not prevent. With reads fenced too, A's write is refused.
 *  - `plain`: the same read-modify-write with no fence at all, i.e. what an application that
 *    trusts the lock alone would see. Its lost updates measure the unfenced violation rate.
 *
 * Protocol: one JSON object per line over TCP, answered by one JSON line with the same `id`.
 *   {op:'read', lock, fence}                → {ok, value, plain, maxFence}
 *   {op:'write', lock, fence, value, plain} → {ok, maxFence}   (plain is written whatever ok is)
 *   {op:'state'}                            → {cells: {lock: CellState}}
 * The server is one Node process and handles lines in arrival order, so each operation is atomic.
 *
 * Run as a process (`tsx torture/register.ts`): prints `LISTENING <port>` once ready.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface CellState {
  /** Value of the fenced cell: equals `acceptedWrites` when no update was lost. */
  value: number;
  /** Highest fence seen by the fenced cell (decimal string, '' before the first). */
  maxFence: string;
  acceptedWrites: number;
  rejectedWrites: number;
  rejectedReads: number;
  /** Value of the unfenced cell and how many writes it took (each meant +1). */
  plain: number;
  plainWrites: number;
}

export type RegisterRequest =
  | { id: number; op: 'read'; lock: string; fence: string }
  | { id: number; op: 'write'; lock: string; fence: string; value: number; plain: number }
  | { id: number; op: 'state' };

export interface ReadReply { id: number; ok: boolean; value: number; plain: number; maxFence: string }
export interface WriteReply { id: number; ok: boolean; maxFence: string }

function newCell(): CellState {
  return { value: 0, maxFence: '', acceptedWrites: 0, rejectedWrites: 0, rejectedReads: 0, plain: 0, plainWrites: 0 };
}

/** fence ≥ the cell's highest fence (fences are decimal integers of any size). */
function fenceOk(cell: CellState, fence: string): boolean {
  return cell.maxFence === '' || BigInt(fence) >= BigInt(cell.maxFence);
}

export class Register {
  readonly cells = new Map<string, CellState>();

  handle(req: RegisterRequest): unknown {
    if (req.op === 'state') return { id: req.id, cells: Object.fromEntries(this.cells) };
    if (typeof req.lock !== 'string' || typeof req.fence !== 'string' || !/^\d+$/.test(req.fence)) {
      return { id: req.id, error: 'lock and a decimal fence are required' };
    }
    let cell = this.cells.get(req.lock);
    if (!cell) this.cells.set(req.lock, (cell = newCell()));
    const ok = fenceOk(cell, req.fence);
    if (ok) cell.maxFence = req.fence;
    if (req.op === 'read') {
      if (!ok) cell.rejectedReads++;
      return { id: req.id, ok, value: cell.value, plain: cell.plain, maxFence: cell.maxFence } satisfies ReadReply;
    }
    // The unfenced cell takes every write: that is the point of it.
    cell.plain = req.plain;
    cell.plainWrites++;
    if (ok) {
      cell.value = req.value;
      cell.acceptedWrites++;
    } else {
      cell.rejectedWrites++;
    }
    return { id: req.id, ok, maxFence: cell.maxFence } satisfies WriteReply;
  }
}

export function serveRegister(register: Register, port = 0): Promise<{ server: Server; port: number }> {
  const server = createServer((sock: Socket) => {
    sock.setNoDelay(true);
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let reply: unknown;
        try {
          reply = register.handle(JSON.parse(line) as RegisterRequest);
        } catch (err) {
          reply = { id: -1, error: String(err) };
        }
        sock.write(JSON.stringify(reply) + '\n');
      }
    });
    sock.on('error', () => undefined); // a killed worker resets its connection
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const addr = server.address();
      if (typeof addr !== 'object' || !addr) return reject(new Error('register: no address'));
      resolve({ server, port: addr.port });
    });
  });
}

/** A client with one connection and requests matched to replies by id. */
export class RegisterClient {
  private sock: Socket | undefined;
  private nextId = 1;
  private buf = '';
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: unknown): void }>();

  constructor(private readonly port: number) {}

  async connect(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: this.port }, () => resolve());
      s.once('error', reject);
      s.setNoDelay(true);
      s.setEncoding('utf8');
      s.on('data', (chunk: string) => this.onData(chunk));
      s.on('close', () => {
        for (const p of this.pending.values()) p.reject(new Error('register connection closed'));
        this.pending.clear();
      });
      this.sock = s;
    });
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const msg = JSON.parse(this.buf.slice(0, nl)) as { id: number; error?: string };
      this.buf = this.buf.slice(nl + 1);
      const p = this.pending.get(msg.id);
      if (!p) continue;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`register: ${msg.error}`));
      else p.resolve(msg);
    }
  }

  private call<T>(req: Record<string, unknown>): Promise<T> {
    const sock = this.sock;
    if (!sock) return Promise.reject(new Error('register: not connected'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      sock.write(JSON.stringify({ ...req, id }) + '\n');
    });
  }

  read(lock: string, fence: string): Promise<ReadReply> {
    return this.call({ op: 'read', lock, fence });
  }
  write(lock: string, fence: string, value: number, plain: number): Promise<WriteReply> {
    return this.call({ op: 'write', lock, fence, value, plain });
  }
  async state(): Promise<Record<string, CellState>> {
    return (await this.call<{ cells: Record<string, CellState> }>({ op: 'state' })).cells;
  }
  close(): void {
    this.sock?.end();
  }
}

// As a process: serve until killed.
if (process.argv[1] && /register\.ts$/.test(process.argv[1])) {
  const port = Number(process.argv[2] ?? 0);
  void serveRegister(new Register(), port).then(({ port: p }) => {
    process.stdout.write(`LISTENING ${p}\n`);
  });
}
