// Attempts per minute per (type, host): what each worker counted, added up
// (server/worker/flow-traffic.ts flushes every few seconds), read by the
// /flow page, pruned after a day.
import type { Db } from "./client";

export type TrafficRow = {
  minute: Date;
  type: string;
  host: string;
  attempts: number;
  exceptions: number;
  held: number;
};

/**
 * Adds the counts to their minutes in one statement. Rows go in (minute,
 * type, host) order, so that two workers flushing the same minutes lock
 * them in the same order rather than deadlock.
 */
export async function addTraffic(db: Db, rows: TrafficRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db.pool.query(
    `INSERT INTO flow_traffic (minute, type, host, attempts, exceptions, held)
     SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::int[], $5::int[], $6::int[])
       AS r(minute, type, host, attempts, exceptions, held)
     ORDER BY minute, type, host
     ON CONFLICT (minute, type, host) DO UPDATE SET
       attempts = flow_traffic.attempts + EXCLUDED.attempts,
       exceptions = flow_traffic.exceptions + EXCLUDED.exceptions,
       held = flow_traffic.held + EXCLUDED.held`,
    [
      rows.map((r) => r.minute.toISOString()),
      rows.map((r) => r.type),
      rows.map((r) => r.host),
      rows.map((r) => r.attempts),
      rows.map((r) => r.exceptions),
      rows.map((r) => r.held),
    ],
  );
}

/** Deletes the minutes older than `days`. */
export async function pruneTraffic(db: Db, days: number): Promise<number> {
  const { rowCount } = await db.pool.query(
    `DELETE FROM flow_traffic WHERE minute < now() - make_interval(days => $1)`,
    [days],
  );
  return rowCount ?? 0;
}
