// The worker's SQL, all in one place: claim (FOR UPDATE SKIP LOCKED), lease
// renewal, completion (state change + attempt rows in one statement, batched),
// rescue of expired leases, upstream callback deliveries, inbound results.
//
// Row locks on commands, so that no two of Conveyor's statements can deadlock
// (test/integration/lock-order.test.ts): the claim, the lease renewal, the
// rescuer and retention skip rows that are locked (SKIP LOCKED), so they never
// wait for one; a completion (and a hand-back, which is one) waits only for
// rows of its own worker's leases, which nothing else holds while waiting for
// another row; operator actions lock in id order (server/db/console.ts);
// intake meets idempotency keys in key order (server/db/commands.ts); and a
// command is always locked before its callback deliveries.
import type pg from "pg";
import { withTransaction, type Db } from "./client";
import type { Claimed, Completion, Expired } from "../engine/types";
export type { AttemptRecord, Completion, Expired } from "../engine/types";
import type { State } from "../engine/states";

type Queryable = Pick<pg.Pool, "query"> | pg.PoolClient;

const CLAIMABLE = `status IN ('pending', 'retrying', 'awaiting', 'compensating') AND lease_id IS NULL AND run_at <= now()`;

const CLAIM_RETURNING = `c.id, c.lease_id, c.type, c.payload, c.status, c.phase, c.tries, c.attempt_count,
  c.needs_reconcile, c.max_attempts, c.backoff_ms, c.max_backoff_ms, c.state_changed_at, c.client_id, c.run_at`;

// The hot statements keep the row's timestamps themselves, which spares them the
// row trigger's PL/pgSQL call (its WHEN clause still checks the transition).
const claimSet = `status = CASE WHEN c.status IN ('pending', 'retrying') THEN 'running'::command_status ELSE c.status END,
  lease_id = gen_random_uuid(), locked_by = $1, locked_until = now() + make_interval(secs => $3::float8 / 1000), attempt_started_at = now(),
  updated_at = now(), state_changed_at = CASE WHEN c.status IN ('pending', 'retrying') THEN now() ELSE c.state_changed_at END`;

/**
 * The claim, in its three forms: due commands matching `filter`, at most
 * `limit`, locked with SKIP LOCKED, then leased by primary key (a bitmap scan
 * over the ids: no join for the planner to misjudge).
 */
const claimText = (filter: string, limit: string) => `WITH due AS (
       SELECT id FROM commands
       WHERE ${CLAIMABLE}${filter}
       ORDER BY priority DESC, run_at
       LIMIT ${limit}
       FOR UPDATE SKIP LOCKED)
     UPDATE commands c SET ${claimSet}
     WHERE c.id = ANY(ARRAY(SELECT id FROM due))
     RETURNING ${CLAIM_RETURNING}`;

type ClaimRow = {
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
};

const toClaimed = (r: ClaimRow): Claimed => ({
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
  name: "conveyor_claim_v1",
  text: claimText("", "$2"),
};
export const PREPARED_CLAIM_TEXT = CLAIM_PREPARED.text;
export const PREPARED_CLAIM_MIN_ROWS = 1_000;

/** The planner's estimate of the commands table's size (-1: never analysed). */
export async function commandsRowEstimate(db: Db): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(`SELECT reltuples::float8 AS n FROM pg_class WHERE oid = 'commands'::regclass`);
  return rows[0]?.n ?? -1;
}

/**
 * Claims up to `limit` due commands of types without a concurrency cap, by
 * priority then due time. `prepared`: as the named statement above (only
 * when no type is excluded; the caller checks the table's size).
 */
export async function claim(db: Db, workerId: string, limit: number, leaseMs: number, excludeTypes: string[], prepared = false): Promise<Claimed[]> {
  if (limit <= 0) return [];
  if (prepared && excludeTypes.length === 0) {
    const { rows } = await db.pool.query<ClaimRow>({ ...CLAIM_PREPARED, values: [workerId, limit, leaseMs] });
    return rows.map(toClaimed);
  }
  // Not a named (prepared) statement: with the type filter, the generic plan
  // misjudges NOT (type = ANY($4)) and sorts every due row instead of walking
  // commands_claim_idx.
  const { rows } = await db.pool.query<ClaimRow>({
    text: claimText(" AND NOT (type = ANY($4::text[]))", "$2"),
    values: [workerId, limit, leaseMs, excludeTypes],
  });
  return rows.map(toClaimed);
}

/**
 * Claims commands of one capped type, never more than `cap` leased at once
 * across all workers: an advisory lock per type serialises the count-and-claim.
 */
export async function claimCapped(db: Db, workerId: string, type: string, cap: number, limit: number, leaseMs: number): Promise<Claimed[]> {
  if (limit <= 0) return [];
  return withTransaction(db, async (client) => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('conveyor:cap:' || $1))`, [type]);
    const { rows } = await client.query<ClaimRow>(
      claimText(" AND type = $4", "GREATEST(0, LEAST($2::int, $5::int - (SELECT count(*)::int FROM commands WHERE type = $4 AND lease_id IS NOT NULL)))"),
      [workerId, limit, leaseMs, type, cap],
    );
    return rows.map(toClaimed);
  });
}

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
export async function renewLeases(db: Db, held: { id: string; leaseId: string }[], leaseMs: number): Promise<Set<string>> {
  if (held.length === 0) return new Set();
  const { rows } = await db.pool.query<{ lease_id: string }>({
    text: `WITH mine AS (
       SELECT id, lease_id FROM commands WHERE id = ANY($1::uuid[]) AND lease_id = ANY($2::uuid[])
     ), free AS (
       SELECT id FROM commands WHERE id = ANY($1::uuid[]) AND lease_id = ANY($2::uuid[]) FOR NO KEY UPDATE SKIP LOCKED
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

/**
 * Applies completions whose lease is still theirs, in one transaction; returns
 * the ids applied (a lease taken back by the rescuer meanwhile is not).
 * The database refuses a transition that is not allowed (trigger).
 */
export async function complete(q: Queryable, items: Completion[]): Promise<Set<string>> {
  if (items.length === 0) return new Set();
  // Two JSON documents rather than a score of array parameters (node-postgres
  // builds array literals element by element: ~4 % of a worker's CPU), written
  // as text directly: ids and enum values need no escaping, times go as epoch
  // milliseconds. Objects plus JSON.stringify and toISOString were ~25 % of a
  // worker's own CPU. Typed json, not jsonb: PostgreSQL only checks the text
  // instead of building a jsonb tree that is read once (~4 µs per command).
  const { input, attempts } = completionDocuments(items);
  // Not a named (prepared) statement: a generic plan made while the table was
  // small keeps a sequential scan after it grows (measured: 254 ms instead of
  // ~17 ms per 100 completions at 200,000 commands, until the next ANALYZE).
  const { rows } = await q.query<{ id: string }>({
    text: `WITH input AS (
       SELECT * FROM json_to_recordset($1::json)
         AS t(id uuid, lease_id uuid, status command_status, phase text, run_at timestamptz, tries int, needs_reconcile bool,
              result jsonb, set_result bool, failure jsonb, set_failure bool, error text, attempt_count int)
     ), upd AS (
       UPDATE commands c SET status = i.status, phase = i.phase, run_at = COALESCE(i.run_at, c.run_at), tries = i.tries,
         needs_reconcile = COALESCE(i.needs_reconcile, false),
         result = CASE WHEN i.set_result THEN i.result ELSE c.result END,
         failure = CASE WHEN i.set_failure THEN i.failure ELSE c.failure END,
         error = i.error, attempt_count = i.attempt_count,
         lease_id = NULL, locked_by = NULL, locked_until = NULL, attempt_started_at = NULL,
         updated_at = now(),
         state_changed_at = CASE WHEN c.status IS DISTINCT FROM i.status THEN now() ELSE c.state_changed_at END,
         finished_at = CASE WHEN c.status IS NOT DISTINCT FROM i.status THEN c.finished_at
                            WHEN i.status IN ('succeeded', 'failed', 'exception', 'compensated', 'cancelled') THEN now() END
       -- driven by the primary key (id = ANY), whatever the planner thinks of the table's size
       FROM input i WHERE c.id = ANY(ARRAY(SELECT id FROM input)) AND c.id = i.id AND c.lease_id = i.lease_id
       RETURNING c.id
     ), att AS (
       INSERT INTO attempts (command_id, number, kind, outcome, started_at, finished_at, error, worker, detail)
       SELECT a.command_id, a.number, a.kind, a.outcome, to_timestamp(a.started_at / 1000), to_timestamp(a.finished_at / 1000), a.error, a.worker, a.detail
       FROM json_to_recordset($2::json)
         AS a(command_id uuid, number int, kind attempt_kind, outcome attempt_outcome, started_at float8, finished_at float8, error text, worker text, detail jsonb)
       WHERE a.command_id IN (SELECT id FROM upd)
     )
     SELECT id FROM upd`,
    values: [input, attempts],
  });
  const applied = new Set(rows.map((r) => r.id));
  // failed → compensating is its own transition (a row cannot be updated twice in one statement).
  const compensate = items.filter((i) => i.thenCompensate && applied.has(i.id)).map((i) => i.id);
  if (compensate.length > 0) {
    await q.query(
      `UPDATE commands SET status = 'compensating', phase = 'compensate', tries = 0, needs_reconcile = false, run_at = now()
       WHERE id = ANY($1::uuid[]) AND status = 'failed'`,
      [compensate],
    );
  }
  return applied;
}

// JSON.stringify gives undefined for undefined, functions and symbols: stored as null, as JSON.stringify of the object did.
const json = (v: unknown) => JSON.stringify(v) ?? "null";
// A field whose value is SQL NULL is left out: json_to_recordset gives NULL for a missing key
// (~25 % fewer bytes to send and for PostgreSQL to parse, ~3 µs per command).
const field = (key: string, v: unknown) => {
  const j = json(v);
  return j === "null" ? "" : `,"${key}":${j}`;
};
const textField = (key: string, t: string | null) => (t === null ? "" : `,"${key}":${JSON.stringify(t)}`);

/** The two documents complete() sends: the commands' new state and their attempt rows (exported for tests). */
export function completionDocuments(items: Completion[]): { input: string; attempts: string } {
  const input: string[] = [];
  const attempts: string[] = [];
  const workers = new Map<string, string>();
  for (const i of items) {
    const runAt = i.runAt === null ? "" : i.runAt === "infinity" ? ',"run_at":"infinity"' : `,"run_at":"${i.runAt.toISOString()}"`;
    input.push(
      `{"id":"${i.id}","lease_id":"${i.leaseId}","status":"${i.status}","phase":"${i.phase}","tries":${i.tries},"attempt_count":${i.attemptCount}` +
        `${runAt}${i.needsReconcile ? ',"needs_reconcile":true' : ""}` +
        `${i.result !== undefined ? `,"set_result":true${field("result", i.result)}` : ""}` +
        `${i.failure !== undefined ? `,"set_failure":true${field("failure", i.failure)}` : ""}${textField("error", i.error)}}`,
    );
    for (const a of i.attempts) {
      let worker = workers.get(a.worker);
      if (worker === undefined) workers.set(a.worker, (worker = JSON.stringify(a.worker)));
      attempts.push(
        `{"command_id":"${i.id}","number":${a.number},"kind":"${a.kind}","outcome":"${a.outcome}","started_at":${a.startedAt.getTime()},` +
          `"finished_at":${a.finishedAt.getTime()},"worker":${worker}${textField("error", a.error)}${field("detail", a.detail)}}`,
      );
    }
  }
  return { input: `[${input.join(",")}]`, attempts: `[${attempts.join(",")}]` };
}

/** complete() in a transaction of its own. */
export async function completeAtomically(db: Db, items: Completion[]): Promise<Set<string>> {
  if (!items.some((i) => i.thenCompensate)) return complete(db.pool, items);
  return withTransaction(db, (client) => complete(client, items));
}

/**
 * Takes back expired leases (a worker died or lost the database): hands the
 * rows to `decide` inside one transaction, so that two rescuers never take the
 * same row, and applies what it returns.
 */
export async function rescueExpired(db: Db, limit: number, decide: (rows: Expired[]) => Completion[]): Promise<Completion[]> {
  return withTransaction(db, async (client) => {
    const { rows } = await client.query<ClaimRow & { locked_by: string; attempt_started_at: Date | null }>(
      `SELECT c.id, c.lease_id, c.type, c.payload, c.status, c.phase, c.tries, c.attempt_count, c.needs_reconcile,
              c.max_attempts, c.backoff_ms, c.max_backoff_ms, c.state_changed_at, c.client_id, c.run_at, c.locked_by, c.attempt_started_at
       FROM commands c WHERE c.lease_id IS NOT NULL AND c.locked_until < now()
       ORDER BY c.locked_until LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [limit],
    );
    const decided = decide(rows.map((r) => ({ ...toClaimed(r), lockedBy: r.locked_by, attemptStartedAt: r.attempt_started_at })));
    await complete(client, decided);
    return decided;
  });
}

// ---- upstream callbacks ----

export type DueCallback = { id: string; commandId: string; clientId: string; url: string; body: unknown; attempts: number };

export async function claimCallbacks(db: Db, limit: number, leaseMs: number): Promise<DueCallback[]> {
  const { rows } = await db.pool.query<{ id: string; command_id: string; client_id: string; url: string; body: unknown; attempts: number }>(
    `WITH due AS (
       SELECT id FROM callback_deliveries
       WHERE delivered_at IS NULL AND next_at <= now() AND (locked_until IS NULL OR locked_until < now())
       ORDER BY next_at LIMIT $1 FOR UPDATE SKIP LOCKED)
     UPDATE callback_deliveries d SET locked_until = now() + make_interval(secs => $2::float8 / 1000), attempts = d.attempts + 1
     FROM due WHERE d.id = due.id
     RETURNING d.id::text, d.command_id, (SELECT client_id FROM commands WHERE id = d.command_id) AS client_id, d.url, d.body, d.attempts`,
    [limit, leaseMs],
  );
  return rows.map((r) => ({ id: r.id, commandId: r.command_id, clientId: r.client_id, url: r.url, body: r.body, attempts: r.attempts }));
}

export async function finishCallback(
  db: Db,
  d: DueCallback,
  /** retryInMs null: never again (a target HTTP_ALLOWED_HOSTS refuses: a configuration matter, recorded as a failure). */
  r: { ok: boolean; status: number | null; error: string | null; retryInMs: number | null; startedAt: Date; worker: string },
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
     SELECT command_id, attempts, 'callback', CASE WHEN $4 THEN 'success' WHEN $5::float8 IS NULL THEN 'failure' ELSE 'exception' END::attempt_outcome, $6, now(), $3, $7,
            jsonb_build_object('url', $8::text, 'status', $2::int, 'delivery', $1::bigint)
     FROM upd`,
    [d.id, r.status, r.error, r.ok, r.retryInMs, r.startedAt.toISOString(), r.worker, d.url, d.commandId],
  );
}

// ---- inbound results for awaiting commands ----

/** Settles an awaiting command from an inbound callback; false when it is not awaiting (any more). */
export async function settleAwaiting(db: Db, id: string, outcome: { status: "succeeded"; result: unknown } | { status: "failed"; failure: unknown }, source: string): Promise<boolean> {
  const { rows } = await db.pool.query<{ id: string }>(
    `WITH upd AS (
       UPDATE commands SET status = $2::command_status,
         result = CASE WHEN $2 = 'succeeded' THEN $3::jsonb ELSE result END,
         failure = CASE WHEN $2 = 'failed' THEN $3::jsonb ELSE failure END,
         attempt_count = attempt_count + 1, needs_reconcile = false, error = NULL,
         lease_id = NULL, locked_by = NULL, locked_until = NULL, attempt_started_at = NULL
       WHERE id = $1 AND status = 'awaiting'
       RETURNING id, attempt_count)
     , att AS (
       INSERT INTO attempts (command_id, number, kind, outcome, started_at, finished_at, error, worker, detail)
       SELECT id, attempt_count, 'poll', CASE WHEN $2 = 'succeeded' THEN 'success' ELSE 'failure' END::attempt_outcome, now(), now(), NULL, $4, '{"via":"inbound callback"}'::jsonb FROM upd)
     SELECT id FROM upd`,
    [id, outcome.status, JSON.stringify(outcome.status === "succeeded" ? outcome.result ?? null : outcome.failure ?? null), source],
  );
  return rows.length > 0;
}

// ---- retention ----

/**
 * Deletes up to `batch` finished commands (succeeded, failed, compensated,
 * cancelled; never exception, which waits for an operator) created more than
 * `days` ago, with their attempts and callback deliveries (ON DELETE CASCADE).
 * Small batches with SKIP LOCKED keep it out of the workers' way.
 */
export async function pruneFinished(db: Db, days: number, batch: number): Promise<number> {
  const { rowCount } = await db.pool.query(
    `DELETE FROM commands WHERE id IN (
       SELECT id FROM commands
       -- finished commands are never leased; saying so lets the (partial) created_at index serve
       WHERE created_at < now() - make_interval(days => $1) AND status IN ('succeeded', 'failed', 'compensated', 'cancelled') AND lease_id IS NULL
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
    `DELETE FROM alert_events e WHERE e.at < now() - make_interval(days => $1)
       AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.event_id = e.id AND d.sent_at IS NULL)`,
    [days],
  );
  return { sessions: s.rowCount ?? 0, alertEvents: a.rowCount ?? 0 };
}
