// Upstream callback deliveries (DESIGN §3): claimed for sending, and each
// try recorded with its attempt row.
import type { Db } from "./client";

export type DueCallback = {
  id: string;
  commandId: string;
  clientId: string;
  url: string;
  body: unknown;
  attempts: number;
  /** The command's W3C trace context (DESIGN §10), or null. */
  trace: { parent: string; state: string | null } | null;
};

export async function claimCallbacks(db: Db, limit: number, leaseMs: number): Promise<DueCallback[]> {
  const { rows } = await db.pool.query<{
    id: string;
    command_id: string;
    client_id: string;
    url: string;
    body: unknown;
    attempts: number;
    trace_parent: string | null;
    trace_state: string | null;
  }>(
    `WITH due AS (
       SELECT id FROM callback_deliveries
       WHERE delivered_at IS NULL AND next_at <= now() AND (locked_until IS NULL OR locked_until < now())
       ORDER BY next_at LIMIT $1 FOR UPDATE SKIP LOCKED)
     UPDATE callback_deliveries d SET locked_until = now() + make_interval(secs => $2::float8 / 1000), attempts = d.attempts + 1
     FROM due, commands c WHERE d.id = due.id AND c.id = d.command_id
     RETURNING d.id::text, d.command_id, c.client_id, d.url, d.body, d.attempts, c.trace_parent, c.trace_state`,
    [limit, leaseMs],
  );
  return rows.map((r) => ({
    id: r.id,
    commandId: r.command_id,
    clientId: r.client_id,
    url: r.url,
    body: r.body,
    attempts: r.attempts,
    trace: r.trace_parent ? { parent: r.trace_parent, state: r.trace_state } : null,
  }));
}

export async function finishCallback(
  db: Db,
  d: DueCallback,
  /** retryInMs null: never again (a target HTTP_ALLOWED_HOSTS refuses: a configuration matter, recorded as a failure). */
  r: {
    ok: boolean;
    status: number | null;
    error: string | null;
    retryInMs: number | null;
    startedAt: Date;
    worker: string;
  },
): Promise<void> {
  // The command's row is locked (FOR KEY SHARE, as the attempt's foreign key would) before the
  // delivery's: retention locks the command and then deletes its deliveries, and the other order
  // deadlocked with it (an old command whose callback still fails).
  await db.pool.query(
    `WITH upd AS (
       UPDATE callback_deliveries SET locked_until = NULL, last_status = $2, last_error = $3,
         delivered_at = CASE WHEN $4 THEN now() END,
         next_at = CASE WHEN $4 THEN next_at WHEN $5::float8 IS NULL THEN 'infinity' ELSE now() + make_interval(secs => $5::float8 / 1000) END
       WHERE id = $1::bigint AND command_id = (SELECT id FROM commands WHERE id = $9::uuid FOR KEY SHARE)
       RETURNING command_id, attempts)
     INSERT INTO attempts (command_id, number, kind, outcome, started_at, finished_at, error, worker, detail)
     SELECT command_id, attempts, 'callback', CASE WHEN $4 THEN 'success' WHEN $5::float8 IS NULL THEN 'failure' ELSE 'exception' END::attempt_outcome,
            $6, now(), $3, $7,
            jsonb_build_object('url', $8::text, 'status', $2::int, 'delivery', $1::bigint)
     FROM upd`,
    [d.id, r.status, r.error, r.ok, r.retryInMs, r.startedAt.toISOString(), r.worker, d.url, d.commandId],
  );
}
