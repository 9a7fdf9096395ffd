// Figures for /api/metrics that come from the database (cheap, index-backed).
import type { Db } from "./client";
import { KEY_BLOCKING, QUEUED } from "../engine/states";
import { inList } from "./states-sql";
import { CLAIMABLE_NOW } from "./claim";

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
 * Flow control (DESIGN §7) at scrape time: every scope's circuit, and what
 * waits in each scope that holds commands back, by why. A scope is labelled
 * by type and host: a type scope with host "", a host scope with type "http"
 * (the type whose commands have hosts). `limit`, `paused` and `circuit`: the
 * due commands of a scope that is limited (`codeLimitedTypes`: by its type's
 * code too), paused or not closed (one reason per scope: paused, then
 * circuit, then limit); `ordering`: commands waiting behind an earlier
 * command of their ordering key, by their own type and host.
 */
export async function flowFigures(db: Db, codeLimitedTypes: string[]) {
  const [circuits, waiting] = await Promise.all([
    db.pool.query<{ type: string; host: string; state: "closed" | "open" | "half_open" }>(
      `SELECT CASE kind WHEN 'type' THEN name ELSE 'http' END AS type, CASE kind WHEN 'host' THEN name ELSE '' END AS host,
         circuit_state AS state
       FROM flow_scopes ORDER BY kind, name`,
    ),
    db.pool.query<{ type: string; host: string; reason: "limit" | "paused" | "circuit" | "ordering"; n: number }>(
      `WITH scopes AS (
         SELECT k.kind, k.name, coalesce(f.paused, false) AS paused, coalesce(f.circuit_state, 'closed') AS circuit_state,
           coalesce(f.has_limit, false) OR (k.kind = 'type' AND k.name = ANY($1::text[])) AS limited
         FROM (SELECT kind, name FROM flow_scopes UNION SELECT 'type', t FROM unnest($1::text[]) AS t) k
         LEFT JOIN flow_scopes f ON f.kind = k.kind AND f.name = k.name),
       due AS (SELECT type, target_host, count(*)::int AS n FROM commands WHERE ${CLAIMABLE_NOW} GROUP BY 1, 2)
       SELECT CASE s.kind WHEN 'type' THEN s.name ELSE 'http' END AS type, CASE s.kind WHEN 'host' THEN s.name ELSE '' END AS host,
         CASE WHEN s.paused THEN 'paused' WHEN s.circuit_state <> 'closed' THEN 'circuit' ELSE 'limit' END AS reason,
         (SELECT coalesce(sum(d.n), 0)::int FROM due d
          WHERE CASE s.kind WHEN 'type' THEN d.type = s.name ELSE d.target_host = s.name END) AS n
       FROM scopes s WHERE s.paused OR s.circuit_state <> 'closed' OR s.limited
       UNION ALL
       -- in the terms of commands_ordering_idx: only the commands of keys still under way are read
       SELECT type, coalesce(target_host, ''), 'ordering', count(*)::int FROM commands
       WHERE ordering_key IS NOT NULL AND status IN ${inList(KEY_BLOCKING)} AND key_waiting
       GROUP BY 1, 2`,
      [codeLimitedTypes],
    ),
  ]);
  return { circuits: circuits.rows, waiting: waiting.rows };
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
