// Inbound results: an asynchronous backend's answer settles an awaiting
// command (server/commands/inbound.ts checks the signature first).
import type { Db } from "./client";
import { keysFreed } from "./commands";

/** Settles an awaiting command from an inbound callback; false when it is not awaiting (any more). */
export async function settleAwaiting(
  db: Db,
  id: string,
  outcome: { status: "succeeded"; result: unknown } | { status: "failed"; failure: unknown },
  source: string,
): Promise<boolean> {
  const { rows } = await db.pool.query<{ id: string }>(
    // The ordering key's lock before the row's (see keysFreed): the key's release at commit takes it.
    `WITH ${keysFreed("SELECT $1::uuid")}, upd AS (
       UPDATE commands SET status = $2::command_status,
         result = CASE WHEN $2 = 'succeeded' THEN $3::jsonb ELSE result END,
         failure = CASE WHEN $2 = 'failed' THEN $3::jsonb ELSE failure END,
         attempt_count = attempt_count + 1, needs_reconcile = false, error = NULL,
         lease_id = NULL, locked_by = NULL, locked_until = NULL, attempt_started_at = NULL
       WHERE id = $1 AND status = 'awaiting' AND (SELECT n FROM keys_freed) >= 0
       RETURNING id, attempt_count)
     , att AS (
       INSERT INTO attempts (command_id, number, kind, outcome, started_at, finished_at, error, worker, detail)
       SELECT id, attempt_count, 'poll', CASE WHEN $2 = 'succeeded' THEN 'success' ELSE 'failure' END::attempt_outcome,
              now(), now(), NULL, $4, '{"via":"inbound callback"}'::jsonb FROM upd)
     SELECT id FROM upd`,
    [
      id,
      outcome.status,
      JSON.stringify(outcome.status === "succeeded" ? (outcome.result ?? null) : (outcome.failure ?? null)),
      source,
    ],
  );
  return rows.length > 0;
}
