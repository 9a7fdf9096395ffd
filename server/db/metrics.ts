// Figures for /api/metrics that come from the database (cheap, index-backed).
import type { Db } from "./client";
import { QUEUED } from "../engine/states";
import { inList } from "./states-sql";

const QUEUED_SQL = inList(QUEUED);

export async function commandsByStateAndType(db: Db) {
  const { rows } = await db.pool.query<{ status: string; type: string; n: number }>(
    `SELECT status, type, count(*)::int AS n FROM commands GROUP BY status, type`,
  );
  return rows;
}

export async function queueFigures(db: Db) {
  const { rows } = await db.pool.query<{ due: number; oldest_s: number | null; leased: number }>(
    `SELECT (SELECT count(*)::int FROM commands WHERE status IN ${QUEUED_SQL} AND lease_id IS NULL AND run_at <= now()) AS due,
            (SELECT EXTRACT(EPOCH FROM now() - min(run_at))::float8 FROM commands
              WHERE status IN ${QUEUED_SQL} AND lease_id IS NULL AND run_at <= now()) AS oldest_s,
            (SELECT count(*)::int FROM commands WHERE lease_id IS NOT NULL) AS leased`,
  );
  return rows[0]!;
}

export async function alertFigures(db: Db) {
  const { rows } = await db.pool.query<{ firing: number; undelivered: number; oldest_undelivered_s: number | null }>(
    `SELECT (SELECT count(*)::int FROM alert_rules WHERE enabled AND firing) AS firing,
            (SELECT count(*)::int FROM alert_deliveries WHERE sent_at IS NULL) AS undelivered,
            (SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8 FROM alert_deliveries WHERE sent_at IS NULL) AS oldest_undelivered_s`,
  );
  return rows[0]!;
}

/**
 * Deadlocks PostgreSQL detected in this database since its statistics were
 * last reset, whichever client met them (pg_stat_database; each backend
 * reports its own within about a second, or 10 s when it goes idle at once).
 */
export async function databaseDeadlocks(db: Db): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    `SELECT deadlocks::float8 AS n FROM pg_stat_database WHERE datname = current_database()`,
  );
  return rows[0]?.n ?? 0;
}

// ---- worker metrics snapshots ----

export async function saveWorkerMetrics(db: Db, workerId: string, startedAt: Date, metrics: unknown): Promise<void> {
  await db.pool.query(
    `INSERT INTO worker_metrics (worker_id, started_at, updated_at, metrics) VALUES ($1, $2, now(), $3)
     ON CONFLICT (worker_id) DO UPDATE SET updated_at = now(), metrics = EXCLUDED.metrics`,
    [workerId, startedAt.toISOString(), JSON.stringify(metrics)],
  );
}

/** Snapshots saved within `keepHours`, and how many workers saved one within `liveSeconds`; older rows are deleted. */
export async function workerMetricsSnapshots(
  db: Db,
  keepHours: number,
  liveSeconds: number,
): Promise<{ snapshots: unknown[]; live: number }> {
  await db.pool.query(`DELETE FROM worker_metrics WHERE updated_at < now() - make_interval(hours => $1)`, [keepHours]);
  const { rows } = await db.pool.query<{ metrics: unknown; live: boolean }>(
    `SELECT metrics, updated_at >= now() - make_interval(secs => $1) AS live FROM worker_metrics`,
    [liveSeconds],
  );
  return { snapshots: rows.map((r) => r.metrics), live: rows.filter((r) => r.live).length };
}
