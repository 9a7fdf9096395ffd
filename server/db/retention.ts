// Retention: finished commands, expired sessions and old alert history
// deleted in small batches (server/worker/pruner.ts runs them).
import type { Db } from "./client";
import { PRUNABLE } from "../engine/states";
import { inList } from "./states-sql";

/**
 * Deletes up to `batch` finished commands (succeeded, failed, compensated,
 * cancelled; never exception, which waits for an operator) created more than
 * `days` ago (a fraction of a day too), with their attempts and callback
 * deliveries (ON DELETE CASCADE). Small batches with SKIP LOCKED keep it out of
 * the workers' way.
 */
export async function pruneFinished(db: Db, days: number, batch: number): Promise<number> {
  const { rowCount } = await db.pool.query(
    `DELETE FROM commands WHERE id IN (
       SELECT id FROM commands
       -- finished commands are never leased; saying so lets the (partial) created_at index serve
       WHERE created_at < now() - $1::float8 * interval '1 day' AND status IN ${inList(PRUNABLE)} AND lease_id IS NULL
       ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
    [days, batch],
  );
  return rowCount ?? 0;
}

/**
 * Housekeeping beside the commands: expired console sessions, and alert
 * events (with their emails) older than `days` whose emails are all sent.
 * The audit trail is kept (it is the record of what operators did).
 */
export async function pruneHousekeeping(db: Db, days: number): Promise<{ sessions: number; alertEvents: number }> {
  const s = await db.pool.query(`DELETE FROM sessions WHERE expires_at < now()`);
  const a = await db.pool.query(
    `DELETE FROM alert_events e WHERE e.at < now() - $1::float8 * interval '1 day'
       AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.event_id = e.id AND d.sent_at IS NULL)`,
    [days],
  );
  return { sessions: s.rowCount ?? 0, alertEvents: a.rowCount ?? 0 };
}

/**
 * Folds the finished counts of every backend into one row per state (shard 0), leaving out rows a writer
 * holds right now (SKIP LOCKED: the compaction never waits for a completion, nor makes one wait): without it a
 * row per state and backend that ever wrote would pile up for the reads to sum. Returns the rows folded.
 */
export async function compactFinishedCounts(db: Db): Promise<number> {
  const { rows } = await db.pool.query<{ folded: number }>(
    `WITH gone AS (
       DELETE FROM finished_counts WHERE (status, shard) IN (
         SELECT status, shard FROM finished_counts WHERE shard <> 0 ORDER BY status, shard FOR UPDATE SKIP LOCKED)
       RETURNING status, n),
     folded AS (
       INSERT INTO finished_counts (status, shard, n)
       SELECT status, 0, sum(n) FROM gone GROUP BY status ORDER BY status
       ON CONFLICT (status, shard) DO UPDATE SET n = finished_counts.n + EXCLUDED.n)
     SELECT count(*)::int AS folded FROM gone`,
  );
  return rows[0]!.folded;
}
