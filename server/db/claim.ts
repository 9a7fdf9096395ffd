// The claim: due commands leased to a worker with FOR UPDATE SKIP LOCKED, in
// one statement (a named, prepared one once the table is big enough). Commands
// of gated scopes are left to the gated claim (./flow-claim.ts). It never
// waits for a row lock (lock order: ./completion.ts).
import type { Db } from "./client";
import type { Claimed } from "../engine/types";
import { CLAIMABLE, QUEUED, type State } from "../engine/states";
import { inList } from "./states-sql";

/** Due, claimable and held by no one: the claim's condition, in the terms of commands_claim_idx. */
export const CLAIMABLE_NOW = `status IN ${inList(CLAIMABLE)} AND lease_id IS NULL AND NOT key_waiting AND run_at <= now()`;

/**
 * Not in a gated scope (paused, limited, or with a circuit not closed):
 * those are counted out by the gated claim (./flow-claim.ts). Two hashed
 * subplans over the small flow_scopes table, evaluated once per claim.
 */
const UNGATED = ` AND NOT (type = ANY (SELECT name FROM flow_scopes WHERE gated AND kind = 'type'))
       AND (target_host IS NULL OR NOT (target_host = ANY (SELECT name FROM flow_scopes WHERE gated AND kind = 'host')))`;

const CLAIM_RETURNING = `c.id, c.lease_id, c.type, c.payload, c.status, c.phase, c.tries, c.attempt_count,
  c.needs_reconcile, c.max_attempts, c.backoff_ms, c.max_backoff_ms, c.state_changed_at, c.client_id, c.run_at, c.target_host,
  c.ordering_key IS NOT NULL AS keyed, c.trace_parent, c.trace_state`;

// The hot statements keep the row's timestamps themselves, which spares them the
// row trigger's PL/pgSQL call (its WHEN clause still checks the transition).
const claimSet = `status = CASE WHEN c.status IN ${inList(QUEUED)} THEN 'running'::command_status ELSE c.status END,
  lease_id = gen_random_uuid(), locked_by = $1, locked_until = now() + make_interval(secs => $3::float8 / 1000), attempt_started_at = now(),
  updated_at = now(), state_changed_at = CASE WHEN c.status IN ${inList(QUEUED)} THEN now() ELSE c.state_changed_at END`;

/**
 * The claim, in its three forms: due commands matching `filter`, at most
 * `limit`, locked with SKIP LOCKED, then leased by primary key (a bitmap scan
 * over the ids: no join for the planner to misjudge).
 */
export const claimText = (filter: string, limit: string) => `WITH due AS (
       SELECT id FROM commands
       WHERE ${CLAIMABLE_NOW}${filter}
       ORDER BY priority DESC, run_at
       LIMIT ${limit}
       FOR UPDATE SKIP LOCKED)
     UPDATE commands c SET ${claimSet}
     WHERE c.id = ANY(ARRAY(SELECT id FROM due))
     RETURNING ${CLAIM_RETURNING}`;

/** A claimed row as the statements return it (the rescuer reads the same columns). */
export type ClaimRow = {
  id: string;
  lease_id: string;
  type: string;
  payload: unknown;
  status: State;
  phase: "execute" | "compensate";
  tries: number;
  attempt_count: number;
  needs_reconcile: boolean;
  max_attempts: number | null;
  backoff_ms: number | null;
  max_backoff_ms: number | null;
  state_changed_at: Date;
  client_id: string;
  run_at: Date;
  target_host: string | null;
  keyed: boolean;
  trace_parent: string | null;
  trace_state: string | null;
};

export const toClaimed = (r: ClaimRow): Claimed => ({
  id: r.id,
  leaseId: r.lease_id,
  type: r.type,
  payload: r.payload,
  status: r.status,
  phase: r.phase,
  tries: r.tries,
  attemptCount: r.attempt_count,
  needsReconcile: r.needs_reconcile,
  maxAttempts: r.max_attempts,
  backoffMs: r.backoff_ms,
  maxBackoffMs: r.max_backoff_ms,
  stateChangedAt: r.state_changed_at,
  clientId: r.client_id,
  runAt: r.run_at,
  targetHost: r.target_host ?? null,
  keyed: r.keyed ?? true,
  probe: false,
  trace: r.trace_parent ? { parent: r.trace_parent, state: r.trace_state ?? null } : null,
});

/**
 * The claim of a worker without capped types, as a named (prepared) statement:
 * no parsing and planning per claim (~0.4 ms of an idle pickup). Its generic
 * plan walks commands_claim_idx once the statistics know the table (≥ 100
 * rows); on a table they see as empty it is a sequential scan and a sort,
 * which the plan cache would keep until the next ANALYZE. So the worker uses
 * it only while commandsRowEstimate() is at least PREPARED_CLAIM_MIN_ROWS.
 */
const CLAIM_PREPARED = {
  name: "conveyor_claim_v2",
  text: claimText(UNGATED, "$2"),
};
export const PREPARED_CLAIM_TEXT = CLAIM_PREPARED.text;
export const PREPARED_CLAIM_MIN_ROWS = 1_000;

/** The planner's estimate of the commands table's size (-1: never analysed). */
export async function commandsRowEstimate(db: Db): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    `SELECT reltuples::float8 AS n FROM pg_class WHERE oid = 'commands'::regclass`,
  );
  return rows[0]?.n ?? -1;
}

/**
 * Claims up to `limit` due commands of types without a concurrency cap, by
 * priority then due time. `prepared`: as the named statement above (only
 * when no type is excluded; the caller checks the table's size).
 */
export async function claim(
  db: Db,
  workerId: string,
  limit: number,
  leaseMs: number,
  excludeTypes: string[],
  prepared = false,
): Promise<Claimed[]> {
  if (limit <= 0) return [];
  if (prepared && excludeTypes.length === 0) {
    const { rows } = await db.pool.query<ClaimRow>({ ...CLAIM_PREPARED, values: [workerId, limit, leaseMs] });
    return rows.map(toClaimed);
  }
  // Not a named (prepared) statement: with the type filter, the generic plan
  // misjudges NOT (type = ANY($4)) and sorts every due row instead of walking
  // commands_claim_idx.
  const { rows } = await db.pool.query<ClaimRow>({
    text: claimText(`${UNGATED} AND NOT (type = ANY($4::text[]))`, "$2"),
    values: [workerId, limit, leaseMs, excludeTypes],
  });
  return rows.map(toClaimed);
}
