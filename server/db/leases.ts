// Lease renewal: the heartbeat of a worker's held commands. It skips rows
// another transaction has locked, so it never waits for one (lock order:
// ./completion.ts).
import type { Db } from "./client";

/**
 * Renews the leases still held; returns the lease ids that are still this
 * worker's (the others were lost).
 *
 * A row another transaction has locked is skipped, not waited for, so the
 * renewal can never be half of a deadlock. Such a row is nearly always this
 * worker's own completion of that command, which ends the lease anyway; it
 * still counts as held when the statement's snapshot shows the lease as this
 * worker's. Nothing is lost by skipping it: if that completion rolls back,
 * the next heartbeat (a third of the lease later) renews it, and while the
 * row is locked no rescuer can take it (the rescuer skips locked rows too).
 */
export async function renewLeases(
  db: Db,
  held: { id: string; leaseId: string }[],
  leaseMs: number,
): Promise<Set<string>> {
  if (held.length === 0) return new Set();
  const { rows } = await db.pool.query<{ lease_id: string }>({
    // Pairs, joined by the primary key: linear in the leases held (`lease_id = ANY(…)` beside `id = ANY(…)` compared
    // every row with every lease id).
    text: `WITH held AS (
       SELECT * FROM unnest($1::uuid[], $2::uuid[]) AS h(id, lease_id)
     ), mine AS (
       SELECT c.id, c.lease_id FROM commands c JOIN held h ON c.id = h.id AND c.lease_id = h.lease_id
     ), free AS (
       SELECT c.id FROM commands c JOIN held h ON c.id = h.id AND c.lease_id = h.lease_id
       FOR NO KEY UPDATE OF c SKIP LOCKED
     ), renewed AS (
       UPDATE commands SET locked_until = now() + make_interval(secs => $3::float8 / 1000)
       WHERE id = ANY(ARRAY(SELECT id FROM free))
     )
     -- renewed, or skipped while the snapshot still shows the lease as this worker's
     SELECT lease_id FROM mine`,
    values: [held.map((h) => h.id), held.map((h) => h.leaseId), leaseMs],
  });
  return new Set(rows.map((r) => r.lease_id));
}
