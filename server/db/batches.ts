// Batches (DESIGN §8): the batch row stored with its commands, its counts per
// state (signed deltas per writing backend, kept by the commands_batch_changed
// trigger: prisma/migrations/20261206000000_batches), the done check, reads.
import type pg from "pg";
import { withTransaction, type Db } from "./client";
import { IN_FLIGHT, STATES, type State } from "../engine/states";
import { inList } from "./states-sql";
import { LEASED, UNLEASED } from "./leased";

export const BATCHES_CHANNEL = "conveyor_batches";

export type NewBatch = { id: string; clientId: string; name: string | null; callbackUrl: string | null };

export type BatchRow = {
  id: string;
  client_id: string;
  client_name: string;
  name: string | null;
  callback_url: string | null;
  total: number;
  done: boolean;
  done_at: Date | null;
  created_at: Date;
  /** state → count, for the states it has commands in */
  counts: Partial<Record<State, number>>;
};

/** Stores the batch once its commands are inserted (same transaction): all of them pending. */
export async function insertBatchRow(client: pg.PoolClient, b: NewBatch, total: number): Promise<void> {
  await client.query(
    `WITH b AS (INSERT INTO batches (id, client_id, name, callback_url, total) VALUES ($1, $2, $3, $4, $5) RETURNING id)
     INSERT INTO batch_counts (batch_id, status, shard, n) SELECT id, 'pending', 0, $5 FROM b`,
    [b.id, b.clientId, b.name, b.callbackUrl, total],
  );
}

/** A batch's counts: the sum of its deltas per state (states × writers rows, not its commands). */
const COUNTS = (batch: string) => `COALESCE((SELECT jsonb_object_agg(status, n) FROM (
    SELECT status, sum(n)::int AS n FROM batch_counts WHERE batch_id = ${batch} GROUP BY status HAVING sum(n) <> 0) c),
    '{}'::jsonb)`;

const BATCH_COLUMNS = `b.id, b.client_id, a.name AS client_name, b.name, b.callback_url, b.total, b.done, b.done_at,
  b.created_at, ${COUNTS("b.id")} AS counts`;

/** One batch (when clientId is given, only that client's). */
export async function selectBatch(db: Db, id: string, clientId: string | null): Promise<BatchRow | undefined> {
  const { rows } = await db.pool.query<BatchRow>(
    `SELECT ${BATCH_COLUMNS} FROM batches b JOIN api_clients a ON a.id = b.client_id
     WHERE b.id = $1 AND ($2::uuid IS NULL OR b.client_id = $2)`,
    [id, clientId],
  );
  return rows[0];
}

/** Recent batches, newest first, by keyset (created_at, id). */
export async function selectRecentBatches(
  db: Db,
  o: { limit: number; before?: { createdAt: string; id: string }; clientId?: string },
): Promise<BatchRow[]> {
  const { rows } = await db.pool.query<BatchRow>(
    `SELECT ${BATCH_COLUMNS} FROM batches b JOIN api_clients a ON a.id = b.client_id
     WHERE ($2::timestamptz IS NULL OR (b.created_at, b.id) < ($2::timestamptz, $3::uuid))
       AND ($4::uuid IS NULL OR b.client_id = $4)
     ORDER BY b.created_at DESC, b.id DESC LIMIT $1`,
    [o.limit, o.before?.createdAt ?? null, o.before?.id ?? null, o.clientId ?? null],
  );
  return rows;
}

/**
 * Of the open batches `ids`, those with no command in flight as committed now:
 * the read-only filter before the done check. A batch it leaves out is not done
 * yet, and the change that makes it done notifies after its own commit, so its
 * check comes then; the candidates still go through the locked check.
 */
export async function selectDoneCandidates(db: Db, ids: string[]): Promise<string[]> {
  const { rows } = await db.pool.query<{ id: string }>(
    `SELECT b.id FROM batches b WHERE b.id = ANY($1::uuid[]) AND NOT b.done
       AND NOT EXISTS (SELECT 1 FROM batch_counts c WHERE c.batch_id = b.id AND c.status IN ${inList(IN_FLIGHT)}
                       GROUP BY c.status HAVING sum(c.n) <> 0)`,
    [ids],
  );
  return rows.map((r) => r.id);
}

export type BatchDone = { id: string; delivery: boolean };

/**
 * The done check of the batches `ids` (or, with null, of every open batch):
 * locks the open ones (in id order), then, in the next statement (whose
 * snapshot is taken after the locks, so it sees every change committed before
 * them), marks done those with no command left in a state not at rest, and
 * queues their callback. Returns the batches it marked done.
 */
export async function markDoneBatches(db: Db, ids: string[] | null): Promise<BatchDone[]> {
  return withTransaction(db, async (client) => {
    const { rows: locked } = await client.query<{ id: string }>(
      `SELECT id FROM batches WHERE NOT done AND ($1::uuid[] IS NULL OR id = ANY($1::uuid[])) ORDER BY id FOR UPDATE`,
      [ids],
    );
    if (locked.length === 0) return [];
    const { rows } = await client.query<{ id: string; delivery: boolean }>(
      `WITH open AS (
         SELECT b.id FROM unnest($1::uuid[]) AS b(id)
         WHERE NOT EXISTS (SELECT 1 FROM batch_counts c WHERE c.batch_id = b.id AND c.status IN ${inList(IN_FLIGHT)}
                           GROUP BY c.status HAVING sum(c.n) <> 0)),
       upd AS (
         UPDATE batches b SET done = true, done_at = now() FROM open WHERE b.id = open.id
         RETURNING b.id, b.name, b.total, b.created_at, b.done_at, b.callback_url),
       del AS (
         INSERT INTO batch_deliveries (batch_id, url, body)
         SELECT u.id, u.callback_url, jsonb_build_object(
           'id', u.id, 'name', u.name, 'total', u.total, 'counts', ${zeroFilled(COUNTS("u.id"))}, 'done', true,
           'createdAt', ${iso("u.created_at")}, 'doneAt', ${iso("u.done_at")})
         FROM upd u WHERE u.callback_url IS NOT NULL
         RETURNING batch_id)
       SELECT u.id, EXISTS (SELECT 1 FROM del WHERE del.batch_id = u.id) AS delivery FROM upd u`,
      [locked.map((r) => r.id)],
    );
    if (rows.some((r) => r.delivery)) await client.query(`SELECT pg_notify('conveyor_callbacks', '')`);
    return rows;
  });
}

const iso = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
/** Every state, 0 where the batch has none (as the view has them). */
const zeroFilled = (counts: string) =>
  `(SELECT jsonb_object_agg(s, COALESCE((${counts}) -> s, '0'::jsonb) ORDER BY o)
    FROM unnest(ARRAY[${STATES.map((s) => `'${s}'`).join(", ")}]) WITH ORDINALITY AS t(s, o))`;

/** Open and done batches (metrics, at scrape time). */
export async function batchTotals(db: Db): Promise<{ open: number; done: number }> {
  const { rows } = await db.pool.query<{ open: number; done: number }>(
    `SELECT (SELECT count(*)::int FROM batches WHERE NOT done) AS open,
            (SELECT count(*)::int FROM batches WHERE done) AS done`,
  );
  return rows[0]!;
}

/**
 * Done batches, done before `days` ago, none of whose commands is left (retention
 * has taken them: a batch holding an exception command stays as long as it does).
 */
export async function pruneBatches(db: Db, days: number, limit: number): Promise<number> {
  const { rowCount } = await db.pool.query(
    `DELETE FROM batches WHERE id IN (
       SELECT b.id FROM batches b
       WHERE b.done AND b.done_at < now() - $1::float8 * interval '1 day'
         AND NOT EXISTS (SELECT 1 FROM commands c WHERE c.batch_id = b.id AND c.${UNLEASED})
         AND NOT EXISTS (SELECT 1 FROM commands c WHERE c.batch_id = b.id AND c.${LEASED})
       ORDER BY b.done_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
    [days, limit],
  );
  return rowCount ?? 0;
}
