// What admins and operators set on flow scopes (DESIGN §7), and what the
// /flow page reads. Every change is made under the scope's row lock, tells
// the fleet (NOTIFY conveyor_flow: workers re-read the gates) and writes its
// audit entry, all in one transaction.
import type pg from "pg";
import { withTransaction, type Db } from "./client";
import { writeAudit } from "./audit";
import { CLAIMABLE_NOW } from "./claim";
import { KEY_BLOCKING } from "../engine/states";
import { inList } from "./states-sql";
import type { CircuitState } from "../flow/allowance";
import type { Limit, ScopeKey } from "../flow/scopes";

/** What an admin or operator set on a scope: the `before` and `after` of its audit entries. */
export type ScopeSettings = {
  limit: Limit | null;
  paused: boolean;
  pausedReason: string | null;
  pausedAt: string | null;
  pausedBy: string | null;
};

type SettingsRow = {
  has_limit: boolean;
  concurrency: number | null;
  rate_per_second: number | null;
  burst: number | null;
  circuit_threshold: number | null;
  circuit_cooldown_seconds: number | null;
  paused: boolean;
  paused_reason: string | null;
  paused_at: Date | null;
  paused_by: string | null;
};

const KEY_BLOCKING_SQL = inList(KEY_BLOCKING);

const SETTINGS = `has_limit, concurrency, rate_per_second, burst, circuit_threshold, circuit_cooldown_seconds,
  paused, paused_reason, paused_at, paused_by`;

/** A limit as stored, with the fields that are not set left out. */
export function limitOf(r: SettingsRow): Limit | null {
  if (!r.has_limit) return null;
  const l: Limit = {};
  if (r.concurrency !== null) l.concurrency = r.concurrency;
  if (r.rate_per_second !== null) l.ratePerSecond = r.rate_per_second;
  if (r.burst !== null) l.burst = r.burst;
  if (r.circuit_threshold !== null || r.circuit_cooldown_seconds !== null) {
    l.circuit = {};
    if (r.circuit_threshold !== null) l.circuit.threshold = r.circuit_threshold;
    if (r.circuit_cooldown_seconds !== null) l.circuit.cooldownSeconds = r.circuit_cooldown_seconds;
  }
  return l;
}

const settingsOf = (r: SettingsRow | undefined): ScopeSettings =>
  r
    ? {
        limit: limitOf(r),
        paused: r.paused,
        pausedReason: r.paused_reason,
        pausedAt: r.paused_at?.toISOString() ?? null,
        pausedBy: r.paused_by,
      }
    : { limit: null, paused: false, pausedReason: null, pausedAt: null, pausedBy: null };

export type ScopeAudit = { actor: string; action: string; reason: string | null; scope: unknown };
export type ScopeChange = { before: ScopeSettings; after: ScopeSettings; changed: boolean };

/**
 * Changes one scope's row: made first when `create` (a scope with no row has
 * nothing set), then locked, changed by `set` ($3… are `params`), the fleet
 * told, the audit entry written with the settings before and after.
 */
async function changeScope(
  db: Db,
  key: ScopeKey,
  create: boolean,
  set: string,
  params: unknown[],
  audit: ScopeAudit,
): Promise<ScopeChange> {
  return withTransaction(db, async (client) => {
    if (create)
      await client.query(`INSERT INTO flow_scopes (kind, name) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [
        key.kind,
        key.name,
      ]);
    const found = await client.query<SettingsRow>(
      `SELECT ${SETTINGS} FROM flow_scopes WHERE kind = $1 AND name = $2 FOR UPDATE`,
      [key.kind, key.name],
    );
    const before = settingsOf(found.rows[0]);
    let after = before;
    if (found.rows[0]) {
      const upd = await client.query<SettingsRow>(
        `UPDATE flow_scopes SET ${set}, updated_at = now() WHERE kind = $1 AND name = $2 RETURNING ${SETTINGS}`,
        [key.kind, key.name, ...params],
      );
      after = settingsOf(upd.rows[0]);
      await notifyFlow(client);
    }
    await writeAudit(client, { ...audit, details: { scope: audit.scope, before, after } });
    return { before, after, changed: JSON.stringify(before) !== JSON.stringify(after) };
  });
}

/** Workers re-read the gates when told (server/worker/flow.ts); an empty payload says "limits or pauses changed". */
const notifyFlow = (client: Pick<pg.PoolClient, "query">) => client.query(`SELECT pg_notify('conveyor_flow', '')`);

export type StoredLimit = {
  concurrency: number | null;
  ratePerSecond: number | null;
  burst: number | null;
  circuitThreshold: number | null;
  circuitCooldownSeconds: number | null;
};

/** Sets the scope's limit (the fields not given are cleared); the rate limiter's bucket starts full again. */
export const setScopeLimit = (db: Db, key: ScopeKey, l: StoredLimit, audit: ScopeAudit) =>
  changeScope(
    db,
    key,
    true,
    `has_limit = true, concurrency = $3, rate_per_second = $4, burst = $5, circuit_threshold = $6,
     circuit_cooldown_seconds = $7, tokens = NULL, tokens_at = NULL`,
    [l.concurrency, l.ratePerSecond, l.burst, l.circuitThreshold, l.circuitCooldownSeconds],
    audit,
  );

/** Clears the scope's limit; the row (its pause, its circuit) stays. */
export const removeScopeLimit = (db: Db, key: ScopeKey, audit: ScopeAudit) =>
  changeScope(
    db,
    key,
    false,
    `has_limit = false, concurrency = NULL, rate_per_second = NULL, burst = NULL, circuit_threshold = NULL,
     circuit_cooldown_seconds = NULL, tokens = NULL, tokens_at = NULL`,
    [],
    audit,
  );

/** Pauses the scope (again: the new reason replaces the old). */
export const pauseScope = (db: Db, key: ScopeKey, by: string, audit: ScopeAudit & { reason: string }) =>
  changeScope(
    db,
    key,
    true,
    `paused = true, paused_reason = $3, paused_at = now(), paused_by = $4`,
    [audit.reason, by],
    audit,
  );

export const resumeScope = (db: Db, key: ScopeKey, audit: ScopeAudit) =>
  changeScope(db, key, false, `paused = false, paused_reason = NULL, paused_at = NULL, paused_by = NULL`, [], audit);

// ---- the /flow page ----

export type ScopeListRow = SettingsRow & {
  kind: "type" | "host";
  name: string;
  circuit_state: CircuitState;
  circuit_since: Date | null;
  consecutive_exceptions: number;
  next_probe_at: Date | null;
  in_flight: number;
  waiting: number;
  attempts_per_second: number;
  hour_attempts: number;
  hour_exceptions: number;
  hour_held: number;
};

/**
 * Every scope worth showing: with a row that says something (a limit, a
 * pause, a circuit not closed or counting exceptions), with traffic in the
 * last hour, or among `alsoTypes` (types with a limit in code). With what is
 * leased (in flight) and due but not leased (waiting) in each, and its
 * attempts per second over the last full minute and the one under way.
 */
export async function listScopes(db: Db, alsoTypes: string[]): Promise<ScopeListRow[]> {
  const { rows } = await db.pool.query<ScopeListRow>(
    `WITH traffic AS (
       SELECT type, host,
         sum(attempts) FILTER (WHERE minute >= date_trunc('minute', now()) - interval '1 minute')::float8 AS recent,
         sum(attempts)::int AS attempts, sum(exceptions)::int AS exceptions, sum(held)::int AS held
       FROM flow_traffic WHERE minute >= now() - interval '1 hour' GROUP BY type, host),
     named AS (
       SELECT kind, name FROM flow_scopes
       WHERE has_limit OR paused OR circuit_state <> 'closed' OR consecutive_exceptions > 0
       UNION SELECT 'type', type FROM traffic
       UNION SELECT 'host', host FROM traffic WHERE host <> ''
       UNION SELECT 'type', t FROM unnest($1::text[]) AS t),
     leased AS (
       SELECT type, target_host, count(*)::int AS n FROM commands WHERE locked_until IS NOT NULL GROUP BY 1, 2),
     due AS (
       SELECT type, target_host, count(*)::int AS n FROM commands WHERE ${CLAIMABLE_NOW} GROUP BY 1, 2)
     SELECT n.kind, n.name,
       coalesce(s.has_limit, false) AS has_limit, s.concurrency, s.rate_per_second, s.burst,
       s.circuit_threshold, s.circuit_cooldown_seconds,
       coalesce(s.paused, false) AS paused, s.paused_reason, s.paused_at, s.paused_by,
       coalesce(s.circuit_state, 'closed') AS circuit_state, s.circuit_since,
       coalesce(s.consecutive_exceptions, 0) AS consecutive_exceptions, s.next_probe_at,
       (SELECT coalesce(sum(l.n), 0)::int FROM leased l
        WHERE CASE n.kind WHEN 'type' THEN l.type = n.name ELSE l.target_host = n.name END) AS in_flight,
       (SELECT coalesce(sum(d.n), 0)::int FROM due d
        WHERE CASE n.kind WHEN 'type' THEN d.type = n.name ELSE d.target_host = n.name END) AS waiting,
       coalesce(t.recent, 0) / (60 + EXTRACT(EPOCH FROM now() - date_trunc('minute', now())))::float8 AS attempts_per_second,
       coalesce(t.attempts, 0) AS hour_attempts, coalesce(t.exceptions, 0) AS hour_exceptions,
       coalesce(t.held, 0) AS hour_held
     FROM named n
     LEFT JOIN flow_scopes s ON s.kind = n.kind AND s.name = n.name
     LEFT JOIN LATERAL (
       SELECT sum(recent) AS recent, sum(attempts)::int AS attempts, sum(exceptions)::int AS exceptions,
         sum(held)::int AS held
       FROM traffic WHERE CASE n.kind WHEN 'type' THEN traffic.type = n.name ELSE traffic.host = n.name END) t ON true
     ORDER BY n.kind DESC, n.name`,
    [alsoTypes],
  );
  return rows;
}

export type BlockedKeyRow = {
  client_name: string;
  ordering_key: string;
  blocked_by: string;
  blocked_since: Date;
  type: string;
  waiting: number;
};

/**
 * Ordering keys held up by an exception: the key's head (its one command in
 * a blocking state that does not wait) is in `exception`, so nothing after it
 * starts until an operator acts on it. Oldest first, at most `limit`.
 */
export async function blockedKeys(db: Db, limit: number): Promise<BlockedKeyRow[]> {
  const { rows } = await db.pool.query<BlockedKeyRow>(
    `SELECT a.name AS client_name, h.ordering_key, h.id AS blocked_by, h.state_changed_at AS blocked_since, h.type,
       (SELECT count(*)::int FROM commands w
        WHERE w.client_id = h.client_id AND w.ordering_key = h.ordering_key AND w.key_waiting
          AND w.status IN ${KEY_BLOCKING_SQL}) AS waiting
     FROM commands h JOIN api_clients a ON a.id = h.client_id
     WHERE h.ordering_key IS NOT NULL AND h.status = 'exception' AND NOT h.key_waiting
       AND h.status IN ${KEY_BLOCKING_SQL}
     ORDER BY h.state_changed_at, h.id
     LIMIT $1`,
    [limit],
  );
  return rows;
}
