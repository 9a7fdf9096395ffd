// The rescuer's statement: expired leases (a worker died or lost the
// database) taken back, decided and completed in one transaction. It skips
// locked rows (lock order: ./completion.ts).
import { withTransaction, type Db } from "./client";
import type { Completion, Expired } from "../engine/types";
import { toClaimed, type ClaimRow } from "./claim";
import { complete } from "./completion";

/**
 * Takes back expired leases (a worker died or lost the database): hands the
 * rows to `decide` inside one transaction, so that two rescuers never take the
 * same row, and applies what it returns.
 */
export async function rescueExpired(
  db: Db,
  limit: number,
  decide: (rows: Expired[]) => Completion[],
): Promise<Completion[]> {
  return withTransaction(db, async (client) => {
    const { rows } = await client.query<ClaimRow & { locked_by: string; attempt_started_at: Date | null }>(
      `SELECT c.id, c.lease_id, c.type, c.payload, c.status, c.phase, c.tries, c.attempt_count, c.needs_reconcile,
              c.max_attempts, c.backoff_ms, c.max_backoff_ms, c.state_changed_at, c.client_id, c.run_at, c.locked_by, c.attempt_started_at,
              c.target_host, c.ordering_key IS NOT NULL AS keyed, c.trace_parent, c.trace_state
       FROM commands c WHERE c.lease_id IS NOT NULL AND c.locked_until < now()
       ORDER BY c.locked_until LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [limit],
    );
    const decided = decide(
      rows.map((r) => ({ ...toClaimed(r), lockedBy: r.locked_by, attemptStartedAt: r.attempt_started_at })),
    );
    await complete(client, decided);
    return decided;
  });
}
