// Completion: a finished claim's state change and its attempt rows in one
// statement, batched (server/worker/completer.ts groups them), and the
// failed → compensating step after a final failure.
//
// Row locks on commands, so that no two of Conveyor's statements can deadlock
// (test/integration/lock-order.test.ts): the claim, the lease renewal, the
// rescuer and retention skip rows that are locked (SKIP LOCKED), so they never
// wait for one; a completion (and a hand-back, which is one) waits only for
// rows of its own worker's leases, which nothing else holds while waiting for
// another row; operator actions lock in id order (server/db/operator-actions.ts);
// intake meets idempotency keys in key order (server/db/commands.ts); and a
// command is always locked before its callback deliveries (./callbacks.ts).
//
// Advisory locks of ordering keys (DESIGN §7): intake and operator actions
// take their keys' locks in lock order before anything else, and the key's
// release (the deferred trigger commands_order_release) takes the key's lock
// at commit. A completion that frees commands of several keys would take
// those at commit in the order it updated the rows, and close a cycle with an
// intake or an action holding one and waiting for another
// (test/integration/ordering-locks.test.ts): so it takes them first, in lock
// order, before any row lock (keysFreed).
import type pg from "pg";
import { withTransaction, type Db } from "./client";
import type { Completion } from "../engine/types";
import { AT_REST, KEY_FREE } from "../engine/states";
import { inList } from "./states-sql";
import { keysFreed } from "./commands";

type Queryable = Pick<pg.Pool, "query"> | pg.PoolClient;

const FINISHED = inList(AT_REST);
const FREED = inList(KEY_FREE);

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
  // Only completions of commands with ordering keys take keys' locks (and look their keys up).
  const keyed = items.some((i) => i.keyed !== false);
  // Not a named (prepared) statement: a generic plan made while the table was
  // small keeps a sequential scan after it grows (measured: 254 ms instead of
  // ~17 ms per 100 completions at 200,000 commands, until the next ANALYZE).
  const { rows } = await q.query<{ id: string }>({
    text: `WITH input AS (
       SELECT * FROM json_to_recordset($1::json)
         AS t(id uuid, lease_id uuid, status command_status, phase text, run_at timestamptz, tries int, needs_reconcile bool,
              result jsonb, set_result bool, failure jsonb, set_failure bool, error text, attempt_count int)
     )${keyed ? `, ${keysFreed("SELECT id FROM input WHERE status IN " + FREED)}` : ""}, upd AS (
       UPDATE commands c SET status = i.status, phase = i.phase, run_at = COALESCE(i.run_at, c.run_at), tries = i.tries,
         needs_reconcile = COALESCE(i.needs_reconcile, false),
         result = CASE WHEN i.set_result THEN i.result ELSE c.result END,
         failure = CASE WHEN i.set_failure THEN i.failure ELSE c.failure END,
         error = i.error, attempt_count = i.attempt_count,
         lease_id = NULL, locked_by = NULL, locked_until = NULL, attempt_started_at = NULL,
         updated_at = now(),
         state_changed_at = CASE WHEN c.status IS DISTINCT FROM i.status THEN now() ELSE c.state_changed_at END,
         finished_at = CASE WHEN c.status IS NOT DISTINCT FROM i.status THEN c.finished_at
                            WHEN i.status IN ${FINISHED} THEN now() END
       -- driven by the primary key (id = ANY), whatever the planner thinks of the table's size
       FROM input i WHERE c.id = ANY(ARRAY(SELECT id FROM input)) AND c.id = i.id AND c.lease_id = i.lease_id
         ${keyed ? "AND (SELECT n FROM keys_freed) >= 0" : ""}
       RETURNING c.id
     ), att AS (
       INSERT INTO attempts (command_id, number, kind, outcome, started_at, finished_at, error, worker, detail)
       SELECT a.command_id, a.number, a.kind, a.outcome, to_timestamp(a.started_at / 1000), to_timestamp(a.finished_at / 1000),
              a.error, a.worker, a.detail
       FROM json_to_recordset($2::json)
         AS a(command_id uuid, number int, kind attempt_kind, outcome attempt_outcome,
              started_at float8, finished_at float8, error text, worker text, detail jsonb)
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
    const runAt =
      i.runAt === null ? "" : i.runAt === "infinity" ? ',"run_at":"infinity"' : `,"run_at":"${i.runAt.toISOString()}"`;
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
