// SQL for the command store's hot paths: intake and lookups.
import type { Db } from "./client";
import type { CommandRow } from "../commands/view";

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
};

const VIEW_COLUMNS = `id, type, status, payload, result, failure, error, attempt_count, idempotency_key, created_at, updated_at, finished_at`;

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
 */
export async function insertCommands(db: Db, unordered: NewCommand[]): Promise<Set<string>> {
  if (unordered.length === 0) return new Set();
  const rows = inKeyOrder(unordered);
  const col = <K extends keyof NewCommand>(k: K) => rows.map((r) => r[k]);
  const { rows: inserted } = await db.pool.query<{ id: string }>(
    `INSERT INTO commands (id, client_id, type, payload, idempotency_key, callback_url, priority, run_at, max_attempts, backoff_ms, max_backoff_ms)
     SELECT id, client_id, type, payload, key, cb, prio, COALESCE(run_at, now()), ma, bo, mb
     FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::text[], $6::text[], $7::int[], $8::timestamptz[], $9::int[], $10::int[], $11::int[])
       AS t(id, client_id, type, payload, key, cb, prio, run_at, ma, bo, mb)
     ON CONFLICT (client_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
     RETURNING id`,
    [
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
    ],
  );
  return new Set(inserted.map((r) => r.id));
}

export type ExistingByKey = { id: string; status: string; same: boolean };
export type KeyLookup = { clientId: string; key: string; type: string; payload: unknown };

/**
 * For each lookup, in input order: the command stored under its (client, key),
 * and whether that command has the lookup's type and payload (jsonb equality),
 * or undefined when nothing is stored under the key. Several lookups may name
 * the same key (with different payloads): each gets its own answer.
 */
export async function findByKeys(db: Db, items: KeyLookup[]): Promise<(ExistingByKey | undefined)[]> {
  if (items.length === 0) return [];
  const { rows } = await db.pool.query<ExistingByKey & { n: string }>(
    `SELECT k.n, c.id, c.status, (c.type = k.type AND c.payload = k.payload) AS same
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
