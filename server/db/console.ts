// SQL behind the console: filtered lists with keyset pagination, counts,
// details, the audit log, and operator actions on commands.
import { withTransaction, type Db } from "./client";
import type { CommandRow } from "../commands/view";
import type { State } from "../commands/state";
import { LEASED, UNLEASED, countBothHalves, selectBothHalves } from "./leased";
import type pg from "pg";

export type ListFilter = {
  status?: State[];
  type?: string;
  q?: string;
  createdAfter?: string;
  createdBefore?: string;
};

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The condition and parameters for a filter (shared by list and "all that match"). */
function where(f: ListFilter, params: unknown[]): string {
  const parts: string[] = [];
  const p = (v: unknown) => (params.push(v), `$${params.length}`);
  if (f.status?.length) parts.push(`status = ANY(${p(f.status)}::command_status[])`);
  if (f.type) parts.push(`type = ${p(f.type)}`);
  if (f.createdAfter) parts.push(`created_at >= ${p(f.createdAfter)}::timestamptz`);
  if (f.createdBefore) parts.push(`created_at < ${p(f.createdBefore)}::timestamptz`);
  if (f.q) {
    const q = f.q.trim();
    if (UUID_RE.test(q)) parts.push(`id = ${p(q)}::uuid`);
    else {
      const like = `%${q.replace(/[\\%_]/g, (m) => "\\" + m)}%`;
      parts.push(`(idempotency_key = ${p(q)} OR payload::text ILIKE ${p(like)} OR error ILIKE $${params.length})`);
    }
  }
  return parts.join(" AND ");
}

export type ListRow = CommandRow & { priority: number; run_at: Date; needs_reconcile: boolean; phase: string; locked_by: string | null };

export async function listCommands(db: Db, f: ListFilter, cursor: { createdAt: string; id: string } | null, limit: number): Promise<ListRow[]> {
  const params: unknown[] = [];
  const conds = [where(f, params)];
  if (cursor) {
    params.push(cursor.createdAt, cursor.id);
    conds.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
  }
  params.push(limit);
  const { rows } = await db.pool.query<ListRow>(
    selectBothHalves(
      `id, type, status, payload, result, failure, error, attempt_count, idempotency_key, created_at, updated_at, finished_at,
       priority, run_at, needs_reconcile, phase, locked_by`,
      conds.filter(Boolean).join(" AND "),
      "created_at DESC, id DESC",
      `$${params.length}`,
    ),
    params,
  );
  return rows;
}

export async function idsMatching(db: Db, f: ListFilter, max: number): Promise<string[]> {
  const params: unknown[] = [];
  const w = where(f, params);
  params.push(max);
  const { rows } = await db.pool.query<{ id: string }>(selectBothHalves("id, created_at", w, "created_at DESC, id DESC", `$${params.length}`), params);
  return rows.map((r) => r.id);
}

/** How many commands match the filter (the count behind "all that match", which may be more than an action takes). */
export async function countMatching(db: Db, f: ListFilter): Promise<number> {
  const params: unknown[] = [];
  const w = where(f, params);
  const { rows } = await db.pool.query<{ n: number }>(`SELECT ${countBothHalves(w)}::int AS n`, params);
  return rows[0]!.n;
}

/**
 * Commands per state, each part read from an index alone: unfinished and
 * failed ones from the status index, leased ones from the lease index, and
 * succeeded ones (most of the table, not in the status index) as all unleased
 * rows (an index-only scan of the narrow created_at index) minus the others.
 */
export async function countByStatus(db: Db): Promise<Record<string, number>> {
  const { rows } = await db.pool.query<{ status: string; n: number }>(
    `WITH open AS (SELECT status, count(*)::int AS n FROM commands WHERE status <> 'succeeded' AND ${UNLEASED} GROUP BY status),
          leased AS (SELECT status, count(*)::int AS n FROM commands WHERE ${LEASED} GROUP BY status)
     SELECT status::text, n FROM open
     UNION ALL SELECT status::text, n FROM leased
     UNION ALL SELECT 'succeeded', (SELECT count(*)::int FROM commands WHERE ${UNLEASED}) - (SELECT COALESCE(sum(n), 0)::int FROM open)`,
  );
  const out: Record<string, number> = {};
  for (const r of rows) if (r.n > 0) out[r.status] = (out[r.status] ?? 0) + r.n;
  return out;
}

export type DetailRow = ListRow & {
  callback_url: string | null;
  tries: number;
  max_attempts: number | null;
  client_name: string;
  lease_id: string | null;
  attempt_started_at: Date | null;
  locked_until: Date | null;
  lease_expired: boolean;
  state_changed_at: Date;
  read_at: Date;
};
export type AttemptRow = { number: number; kind: string; outcome: string | null; started_at: Date; finished_at: Date | null; error: string | null; worker: string; detail: unknown };
export type CallbackRow = {
  id: string;
  url: string;
  status: string;
  attempts: number;
  next_at: Date;
  delivered_at: Date | null;
  last_status: number | null;
  last_error: string | null;
  created_at: Date;
  sending: boolean;
  locked_until: Date | null;
};

/**
 * One command with its attempts, audit entries and callback deliveries, read
 * in one snapshot: the lease (an attempt in flight) and the attempt rows a
 * completion writes in the same transaction are never seen half-way.
 */
export async function commandDetail(db: Db, id: string) {
  const client = await db.pool.connect();
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const cmd = await client.query<DetailRow>(
      `SELECT c.*, a.name AS client_name, now() AS read_at, c.locked_until < now() AS lease_expired
       FROM commands c JOIN api_clients a ON a.id = c.client_id WHERE c.id = $1`,
      [id],
    );
    const attempts = await client.query<AttemptRow>(
      `SELECT number, kind, outcome, started_at, finished_at, error, worker, detail FROM attempts WHERE command_id = $1 ORDER BY number, started_at, id`,
      [id],
    );
    const audit = await client.query(`SELECT at, actor, action, reason FROM audit_entries WHERE command_ids @> ARRAY[$1::uuid] ORDER BY at DESC, id DESC LIMIT 200`, [id]);
    const callbacks = await client.query<CallbackRow>(
      `SELECT id::text, url, status, attempts, next_at, delivered_at, last_status, last_error, created_at,
              delivered_at IS NULL AND locked_until > now() AS sending, locked_until
       FROM callback_deliveries WHERE command_id = $1 ORDER BY id`,
      [id],
    );
    await client.query("COMMIT");
    return { command: cmd.rows[0], attempts: attempts.rows, audit: audit.rows, callbacks: callbacks.rows };
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

export async function listAudit(db: Db, cursor: number | null, limit: number) {
  const { rows } = await db.pool.query<{ id: string; at: Date; actor: string; action: string; reason: string | null; command_ids: string[] | null; details: unknown }>(
    `SELECT id::text, at, actor, action, reason, command_ids, details FROM audit_entries WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2`,
    [cursor, limit],
  );
  return rows;
}

/** Throughput and failures per minute over the last `minutes` (finished commands). */
export async function throughput(db: Db, minutes: number) {
  const { rows } = await db.pool.query<{ minute: Date; succeeded: number; failed: number; exception: number }>(
    `SELECT date_trunc('minute', finished_at) AS minute,
            count(*) FILTER (WHERE status IN ('succeeded', 'compensated'))::int AS succeeded,
            count(*) FILTER (WHERE status = 'failed')::int AS failed,
            count(*) FILTER (WHERE status = 'exception')::int AS exception
     FROM commands WHERE finished_at >= now() - make_interval(mins => $1) GROUP BY 1 ORDER BY 1`,
    [minutes],
  );
  return rows;
}

export async function oldestWaiting(db: Db, limit: number) {
  const { rows } = await db.pool.query(
    selectBothHalves(
      "id, type, status, created_at, run_at, state_changed_at, error",
      "status IN ('pending', 'retrying', 'awaiting', 'running', 'compensating')",
      "state_changed_at",
      "$1",
    ),
    [limit],
  );
  return rows;
}

/** Worker processes that saved a metrics snapshot within `liveSeconds` (they do every 5 s while running). */
export async function liveWorkers(db: Db, liveSeconds: number) {
  const { rows } = await db.pool.query<{ worker_id: string; started_at: Date; updated_at: Date }>(
    `SELECT worker_id, started_at, updated_at FROM worker_metrics WHERE updated_at >= now() - make_interval(secs => $1) ORDER BY worker_id`,
    [liveSeconds],
  );
  return rows;
}

// ---- operator actions ----

export type ActionSql = {
  /** States the action applies in. */
  from: State[];
  /** SET clause (may use $3 for the action's extra argument). */
  set: string;
};

/**
 * Applies an action to the commands in an allowed state and not leased (a
 * running command is never touched), writes the audit entry, in one
 * transaction; returns the ids changed and the current state of the others.
 */
export async function applyAction(
  db: Db,
  ids: string[],
  action: ActionSql,
  audit: { actor: string; action: string; reason: string | null; details?: unknown },
  extra: unknown = null,
): Promise<{ updated: string[]; others: { id: string; status: State | null; leased: boolean }[] }> {
  return withTransaction(db, async (client) => {
    const upd = await client.query<{ id: string }>(
      `UPDATE commands SET ${action.set}
       WHERE id = ANY($1::uuid[]) AND status = ANY($2::command_status[]) AND lease_id IS NULL
       RETURNING id`,
      action.set.includes("$3") ? [ids, action.from, extra] : [ids, action.from],
    );
    const updated = upd.rows.map((r) => r.id);
    const done = new Set(updated);
    const rest = ids.filter((id) => !done.has(id));
    const others = rest.length
      ? (await client.query<{ id: string; status: State; leased: boolean }>(`SELECT id, status, lease_id IS NOT NULL AS leased FROM commands WHERE id = ANY($1::uuid[])`, [rest])).rows
      : [];
    const found = new Map(others.map((o) => [o.id, o]));
    await client.query(
      `INSERT INTO audit_entries (actor, action, reason, command_ids, details) VALUES ($1, $2, $3, $4::uuid[], $5)`,
      [audit.actor, audit.action, audit.reason, updated, JSON.stringify({ requested: ids.length, skipped: rest.length, ...((audit.details as object) ?? {}) })],
    );
    return { updated, others: rest.map((id) => found.get(id) ?? { id, status: null, leased: false }) };
  });
}

export async function typesOf(db: Db, ids: string[]): Promise<{ id: string; type: string; status: State; leased: boolean; payload: unknown }[]> {
  const { rows } = await db.pool.query(`SELECT id, type, status, lease_id IS NOT NULL AS leased, payload FROM commands WHERE id = ANY($1::uuid[])`, [ids]);
  return rows;
}

export type AuditInput = { actor: string; action: string; reason: string | null; commandIds?: string[]; details?: unknown };

/** Writes an audit entry: on its own, or on a transaction's client so that it commits (or not) with the change it records. */
export async function writeAudit(db: Db | Pick<pg.PoolClient, "query">, e: AuditInput) {
  await ("pool" in db ? db.pool : db).query(`INSERT INTO audit_entries (actor, action, reason, command_ids, details) VALUES ($1, $2, $3, $4::uuid[], $5)`, [
    e.actor,
    e.action,
    e.reason,
    e.commandIds ?? null,
    e.details === undefined ? null : JSON.stringify(e.details),
  ]);
}
