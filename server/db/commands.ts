// SQL for the command store's hot paths: intake and lookups.
import { withTransaction, type Db } from "./client";
import type pg from "pg";
import { KEY_BLOCKING } from "../engine/states";
import { inList } from "./states-sql";
import type { CommandRow } from "../commands/view";
import { insertBatchRow, type NewBatch } from "./batches";

export type NewCommand = {
  id: string;
  clientId: string;
  type: string;
  payload: unknown;
  idempotencyKey: string | null;
  callbackUrl: string | null;
  priority: number;
  runAt: string | null;
  maxAttempts: number | null;
  backoffMs: number | null;
  maxBackoffMs: number | null;
  /** DESIGN §7: one at a time, in order received, per (client, key). */
  orderingKey: string | null;
  /** The counterpart's host (the scope of host limits and circuits), or null. */
  targetHost: string | null;
  /** W3C trace context (DESIGN §10): a version-00 traceparent and its tracestate, or null. */
  traceParent: string | null;
  traceState: string | null;
};

const VIEW_COLUMNS = `id, type, status, payload, result, failure, error, attempt_count, idempotency_key, ordering_key,
  created_at, updated_at, finished_at`;

/**
 * The rows with idempotency keys sorted by (client, key), the others as they
 * come. An insert waits at a key another transaction has written and not
 * committed yet; two inserts sharing keys in different orders would each
 * wait for the other (a deadlock), so every insert meets shared keys in the
 * same order.
 */
function inKeyOrder(rows: NewCommand[]): NewCommand[] {
  let keyed = 0;
  for (const r of rows) if (r.idempotencyKey !== null && ++keyed > 1) break;
  if (keyed < 2) return rows;
  return [...rows].sort(byKey);
}
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const byKey = (a: NewCommand, b: NewCommand) =>
  a.idempotencyKey === null || b.idempotencyKey === null
    ? Number(b.idempotencyKey === null) - Number(a.idempotencyKey === null)
    : cmp(a.clientId, b.clientId) || cmp(a.idempotencyKey, b.idempotencyKey);

/**
 * Inserts commands in one statement. Rows whose (client, idempotency key)
 * already exists are skipped by the database (ON CONFLICT), which settles
 * concurrent submits of the same key; returns the ids actually inserted.
 * `traced`: the rows carry trace context (DESIGN §10) and the statement two
 * more arrays ($14, $15); without it, the statement names neither column.
 */
const insertText = (
  traced: boolean,
) => `INSERT INTO commands (id, client_id, type, payload, idempotency_key, callback_url, priority, run_at,
       max_attempts, backoff_ms, max_backoff_ms, target_host, batch_id${traced ? ", trace_parent, trace_state" : ""})
     SELECT id, client_id, type, payload, key, cb, prio, COALESCE(run_at, now()), ma, bo, mb, host, $13::uuid${traced ? ", tp, ts" : ""}
     FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::text[], $6::text[], $7::int[], $8::timestamptz[],
                 $9::int[], $10::int[], $11::int[], $12::text[]${traced ? ", $14::text[], $15::text[]" : ""})
       AS t(id, client_id, type, payload, key, cb, prio, run_at, ma, bo, mb, host${traced ? ", tp, ts" : ""})
     ON CONFLICT (client_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
     RETURNING id`;
const INSERT = [insertText(false), insertText(true)] as const;

/**
 * With ordering keys (DESIGN §7): the receipt order is ordering_seq, one
 * value of command_order_seq per statement and the item's place in the
 * caller's input (`ord`: the rows themselves come in idempotency-key order,
 * see inKeyOrder); a command is its key's head unless a command of the key is
 * blocking, or an earlier item of the statement has the same key. The keys' advisory locks,
 * taken before (in lock order), make the sequence follow the commit order
 * per key and the check exact against a head that finishes meanwhile (its
 * release waits for the same lock: server/db/ordering.ts).
 */
const ORDER_BLOCK = 2048;
const insertKeyedText = (
  traced: boolean,
) => `INSERT INTO commands (id, client_id, type, payload, idempotency_key, callback_url, priority, run_at,
       max_attempts, backoff_ms, max_backoff_ms, target_host, batch_id, ordering_key, ordering_seq, key_waiting${traced ? ", trace_parent, trace_state" : ""})
     SELECT id, client_id, type, payload, key, cb, prio, COALESCE(run_at, now()), ma, bo, mb, host, $13::uuid, okey,
       CASE WHEN okey IS NOT NULL THEN (SELECT nextval('command_order_seq')) * ${ORDER_BLOCK} + ord END,
       okey IS NOT NULL AND (row_number() OVER (PARTITION BY client_id, okey ORDER BY ord) > 1
         OR EXISTS (SELECT 1 FROM commands e WHERE e.client_id = t.client_id AND e.ordering_key = t.okey
                    AND e.status IN ${inList(KEY_BLOCKING)}))${traced ? ", tp, ts" : ""}
     FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::text[], $6::text[], $7::int[], $8::timestamptz[],
                 $9::int[], $10::int[], $11::int[], $12::text[], $14::text[], $15::int[]${traced ? ", $16::text[], $17::text[]" : ""})
       AS t(id, client_id, type, payload, key, cb, prio, run_at, ma, bo, mb, host, okey, ord${traced ? ", tp, ts" : ""})
     ON CONFLICT (client_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
     RETURNING id`;
const INSERT_KEYED = [insertKeyedText(false), insertKeyedText(true)] as const;

/**
 * Inserts commands in one statement. Rows whose (client, idempotency key)
 * already exists are skipped by the database (ON CONFLICT), which settles
 * concurrent submits of the same key; returns the ids actually inserted.
 * Rows with ordering keys are inserted in a transaction that holds their
 * keys' locks (see INSERT_KEYED); with a batch (DESIGN §8), the rows inserted
 * are its commands, and the batch is stored in the same transaction.
 */
export async function insertCommands(db: Db, unordered: NewCommand[], batch?: NewBatch): Promise<Set<string>> {
  if (unordered.length === 0) return new Set();
  const rows = inKeyOrder(unordered);
  const col = <K extends keyof NewCommand>(k: K) => rows.map((r) => r[k]);
  const values = [
    col("id"),
    col("clientId"),
    col("type"),
    rows.map((r) => JSON.stringify(r.payload)),
    col("idempotencyKey"),
    col("callbackUrl"),
    col("priority"),
    col("runAt"),
    col("maxAttempts"),
    col("backoffMs"),
    col("maxBackoffMs"),
    col("targetHost"),
    batch?.id ?? null,
  ];
  const traced = rows.some((r) => r.traceParent !== null);
  const trace = traced ? [col("traceParent"), col("traceState")] : [];
  const plain = () => [INSERT[+traced]!, traced ? [...values, ...trace] : values] as const;
  const keyed = rows.filter((r) => r.orderingKey !== null);
  if (keyed.length === 0 && !batch) {
    const { rows: inserted } = await db.pool.query<{ id: string }>(...plain());
    return new Set(inserted.map((r) => r.id));
  }
  // Receipt order is the caller's order; a statement numbers at most ORDER_BLOCK rows (see INSERT_KEYED).
  if (keyed.length > 0 && rows.length > ORDER_BLOCK)
    throw new RangeError(`at most ${ORDER_BLOCK} commands per insert with ordering keys (${rows.length} given)`);
  const place = new Map(unordered.map((r, i) => [r, i]));
  return withTransaction(db, async (client) => {
    let inserted: { id: string }[];
    if (keyed.length === 0) inserted = (await client.query<{ id: string }>(...plain())).rows;
    else {
      const clients = keyed.map((r) => r.clientId);
      const keys = keyed.map((r) => r.orderingKey as string);
      await lockKeys(client, clients, keys);
      inserted = (
        await client.query<{ id: string }>(INSERT_KEYED[+traced]!, [
          ...values,
          col("orderingKey"),
          rows.map((r) => place.get(r)!),
          ...trace,
        ])
      ).rows;
      // An item not inserted (its idempotency key was taken) may have been counted as an earlier item of its key.
      if (inserted.length < rows.length) await releaseKeys(client, clients, keys);
    }
    if (batch && inserted.length > 0) await insertBatchRow(client, batch, inserted.length);
    return new Set(inserted.map((r) => r.id));
  });
}

/** Takes the ordering keys' advisory locks (for the transaction), in lock order, so that no two takers deadlock. */
export async function lockKeys(client: pg.PoolClient, clients: string[], keys: string[]): Promise<void> {
  await client.query(
    `SELECT pg_advisory_xact_lock(l) FROM (
       SELECT DISTINCT conveyor_ordering_lock(c, k) AS l FROM unnest($1::uuid[], $2::text[]) AS t(c, k) ORDER BY 1) s`,
    [clients, keys],
  );
}

/** Makes the earliest waiting command of each key its head, where the key has none (under the keys' locks). */
export async function releaseKeys(client: pg.PoolClient, clients: string[], keys: string[]): Promise<number> {
  const { rowCount } = await client.query(
    `UPDATE commands c SET key_waiting = false
     FROM (SELECT DISTINCT ON (w.client_id, w.ordering_key) w.id
           FROM commands w JOIN (SELECT DISTINCT * FROM unnest($1::uuid[], $2::text[])) AS k(c, k)
             ON w.client_id = k.c AND w.ordering_key = k.k
           WHERE w.key_waiting AND w.status IN ${inList(KEY_BLOCKING)}
           ORDER BY w.client_id, w.ordering_key, w.ordering_seq) nxt
     WHERE c.id = nxt.id AND NOT EXISTS (
       SELECT 1 FROM commands h WHERE h.client_id = c.client_id AND h.ordering_key = c.ordering_key
         AND NOT h.key_waiting AND h.status IN ${inList(KEY_BLOCKING)})`,
    [clients, keys],
  );
  return rowCount ?? 0;
}

/**
 * A CTE `keys_freed` (its one row: n) that takes the advisory locks of the
 * ordering keys of the commands `ids` selects, in lock order; a statement
 * that reads `(SELECT n FROM keys_freed)` in its first row's condition holds
 * them before it locks a row. A command without a key costs a primary-key
 * probe. Held until the transaction ends, so the release at commit finds
 * them taken.
 */
export const keysFreed = (ids: string) => `keys_freed AS MATERIALIZED (
       SELECT count(*) AS n FROM (
         SELECT pg_advisory_xact_lock(l) FROM (
           SELECT DISTINCT conveyor_ordering_lock(k.client_id, k.ordering_key) AS l FROM commands k
           WHERE k.id = ANY(ARRAY(${ids})) AND k.ordering_key IS NOT NULL ORDER BY 1) s) x)`;

/** The command holding a key: its id, state, batch, and whether it has the lookup's type and payload. */
export type ExistingByKey = { id: string; status: string; same: boolean; batchId: string | null };
export type KeyLookup = { clientId: string; key: string; type: string; payload: unknown };

/**
 * For each lookup, in input order: the command stored under its (client, key),
 * and whether that command has the lookup's type and payload (jsonb equality;
 * the payload as submitted counts too, after an operator's edit & retry),
 * or undefined when nothing is stored under the key. Several lookups may name
 * the same key (with different payloads): each gets its own answer.
 */
export async function findByKeys(db: Db, items: KeyLookup[]): Promise<(ExistingByKey | undefined)[]> {
  if (items.length === 0) return [];
  const { rows } = await db.pool.query<ExistingByKey & { n: string }>(
    `SELECT k.n, c.id, c.status, (c.type = k.type AND (c.payload = k.payload OR c.submitted_payload = k.payload)) AS same,
       c.batch_id AS "batchId"
     FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[]) WITH ORDINALITY AS k(client_id, key, type, payload, n)
     JOIN commands c ON c.client_id = k.client_id AND c.idempotency_key = k.key`,
    [
      items.map((i) => i.clientId),
      items.map((i) => i.key),
      items.map((i) => i.type),
      items.map((i) => JSON.stringify(i.payload)),
    ],
  );
  const out: (ExistingByKey | undefined)[] = new Array(items.length);
  for (const { n, ...e } of rows) out[Number(n) - 1] = e;
  return out;
}

/** Commands by id; when clientId is given, only that client's. */
export async function selectCommands(db: Db, ids: string[], clientId: string | null): Promise<CommandRow[]> {
  const { rows } = await db.pool.query<CommandRow>(
    `SELECT ${VIEW_COLUMNS} FROM commands WHERE id = ANY($1::uuid[]) AND ($2::uuid IS NULL OR client_id = $2)`,
    [ids, clientId],
  );
  return rows;
}

export async function selectCommandByKey(db: Db, clientId: string, key: string): Promise<CommandRow | undefined> {
  const { rows } = await db.pool.query<CommandRow>(
    `SELECT ${VIEW_COLUMNS} FROM commands WHERE client_id = $1 AND idempotency_key = $2`,
    [clientId, key],
  );
  return rows[0];
}
