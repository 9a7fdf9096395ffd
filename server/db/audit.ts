// The audit log: entries written with the change they record, and the pages
// the console reads.
import type pg from "pg";
import type { Db } from "./client";

export async function listAudit(db: Db, cursor: number | null, limit: number) {
  const { rows } = await db.pool.query<{
    id: string;
    at: Date;
    actor: string;
    action: string;
    reason: string | null;
    command_ids: string[] | null;
    details: unknown;
  }>(
    `SELECT id::text, at, actor, action, reason, command_ids, details FROM audit_entries WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2`,
    [cursor, limit],
  );
  return rows;
}

export type AuditInput = {
  actor: string;
  action: string;
  reason: string | null;
  commandIds?: string[];
  details?: unknown;
};

/** Writes an audit entry: on its own, or on a transaction's client so that it commits (or not) with the change it records. */
export async function writeAudit(db: Db | Pick<pg.PoolClient, "query">, e: AuditInput) {
  await ("pool" in db ? db.pool : db).query(
    `INSERT INTO audit_entries (actor, action, reason, command_ids, details) VALUES ($1, $2, $3, $4::uuid[], $5)`,
    [e.actor, e.action, e.reason, e.commandIds ?? null, e.details === undefined ? null : JSON.stringify(e.details)],
  );
}
