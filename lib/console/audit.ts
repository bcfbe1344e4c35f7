import 'server-only';

/**
 * The audit log of force-release attempts (contract.md §3: every attempt, allowed or not, leaves
 * an entry before the answer is sent). Each entry goes two ways, in this order:
 *  1. one JSON line on stdout (`{"lockdeck":"audit",...}`), for log shippers, written first so
 *     that even a failing database leaves a trace;
 *  2. a row in console.db's `audit` table, which the schema makes append-only (db.ts).
 * There is deliberately no update or delete method here.
 *
 * `owner`/`fence` are what the console observed about the holder (the lock as released, or the
 * holder that made a compare-and-delete refuse); `expectOwner`/`expectFence` are what the
 * operator asked for. For refused requests the fields are whatever the request named, cut to
 * their maximum lengths; fields a request did not give are null.
 */
import type Database from 'better-sqlite3';

import { getConsoleDb } from './db';
import { singleton } from './singleton';

/** What an attempt came to. `refused` answers carry the refusal's error code in `code`. */
export type AuditResult = 'released' | 'changed' | 'not-found' | 'refused' | 'error';

/** What was asked: a force-release of the lock, or the revocation of its holder's lease (etcd). */
export type AuditAction = 'release' | 'revoke-lease';

export interface AuditEntry {
  id: number;
  at: number;
  /** `operator`, `viewer` or `anonymous`. */
  actor: string;
  /** How the actor authenticated: `bearer`, `cookie`, or null. */
  via: 'bearer' | 'cookie' | null;
  backend: string | null;
  key: string | null;
  owner: string | null;
  fence: string | null;
  expectOwner: string | null;
  expectFence: string | null;
  reason: string | null;
  result: AuditResult;
  /** The HTTP status of the answer. */
  status: number;
  /** The error code for refusals and errors, null for answered releases. */
  code: string | null;
  message: string | null;
  action: AuditAction;
}

export type NewAuditEntry = Omit<AuditEntry, 'id'>;

export interface AuditFilter {
  backend?: string;
  key?: string;
  actor?: string;
  result?: string;
  /** Entries with a smaller id only (paging backwards). */
  before?: number;
  limit: number;
}

interface Row {
  id: number;
  at: number;
  actor: string;
  via: string | null;
  backend: string | null;
  key: string | null;
  owner: string | null;
  fence: string | null;
  expect_owner: string | null;
  expect_fence: string | null;
  reason: string | null;
  result: string;
  status: number;
  code: string | null;
  message: string | null;
  action: string | null;
}

/** Caps free text from a request before it is stored (refused requests may carry anything). */
export function clip(v: unknown, max: number): string | null {
  if (v === undefined || v === null) return null;
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

export class AuditLog {
  private readonly insert;
  private readonly db: Database.Database;

  constructor(
    db: Database.Database,
    private readonly writeLine: (line: string) => void = (line) => void process.stdout.write(line),
  ) {
    this.db = db;
    this.insert = db.prepare(
      `INSERT INTO audit (at, actor, via, backend, key, owner, fence, expect_owner, expect_fence, reason, result, status, code, message, action)
       VALUES (@at, @actor, @via, @backend, @key, @owner, @fence, @expectOwner, @expectFence, @reason, @result, @status, @code, @message, @action)`,
    );
  }

  /** Records one attempt: the stdout line, then the row. Throws when the row cannot be written. */
  append(e: NewAuditEntry): AuditEntry {
    this.writeLine(`${JSON.stringify({ lockdeck: 'audit', ...e })}\n`);
    const { lastInsertRowid } = this.insert.run(e);
    return { id: Number(lastInsertRowid), ...e };
  }

  /** Newest first, filtered by exact matches. */
  query(f: AuditFilter): AuditEntry[] {
    const where: string[] = [];
    const args: Array<string | number> = [];
    for (const [col, v] of [
      ['backend', f.backend],
      ['key', f.key],
      ['actor', f.actor],
      ['result', f.result],
    ] as const) {
      if (v !== undefined) {
        where.push(`${col} = ?`);
        args.push(v);
      }
    }
    if (f.before !== undefined) {
      where.push('id < ?');
      args.push(f.before);
    }
    const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, f.limit) as Row[]).map((r) => ({
      id: r.id,
      at: r.at,
      actor: r.actor,
      via: r.via as AuditEntry['via'],
      backend: r.backend,
      key: r.key,
      owner: r.owner,
      fence: r.fence,
      expectOwner: r.expect_owner,
      expectFence: r.expect_fence,
      reason: r.reason,
      result: r.result as AuditResult,
      status: r.status,
      code: r.code,
      message: r.message,
      action: r.action === 'revoke-lease' ? 'revoke-lease' : 'release',
    }));
  }
}

export function getAudit(): AuditLog {
  return singleton('audit', () => new AuditLog(getConsoleDb()));
}
