// Batch callbacks (DESIGN §8): one delivery each time a batch became done,
// claimed for sending like command callbacks, each try recorded.
import type { Db } from "./client";

export type DueBatchCallback = {
  id: string;
  batchId: string;
  clientId: string;
  url: string;
  body: unknown;
  attempts: number;
};

export async function claimBatchCallbacks(db: Db, limit: number, leaseMs: number): Promise<DueBatchCallback[]> {
  const { rows } = await db.pool.query<DueBatchCallback>(
    `WITH due AS (
       SELECT id FROM batch_deliveries
       WHERE delivered_at IS NULL AND next_at <= now() AND (locked_until IS NULL OR locked_until < now())
       ORDER BY next_at LIMIT $1 FOR UPDATE SKIP LOCKED)
     UPDATE batch_deliveries d SET locked_until = now() + make_interval(secs => $2::float8 / 1000), attempts = d.attempts + 1
     FROM due WHERE d.id = due.id
     RETURNING d.id::text, d.batch_id AS "batchId", (SELECT client_id FROM batches WHERE id = d.batch_id) AS "clientId",
       d.url, d.body, d.attempts`,
    [limit, leaseMs],
  );
  return rows;
}

export async function finishBatchCallback(
  db: Db,
  d: DueBatchCallback,
  r: {
    ok: boolean;
    status: number | null;
    error: string | null;
    retryInMs: number | null;
    startedAt: Date;
    worker: string;
  },
): Promise<void> {
  await db.pool.query(
    `WITH upd AS (
       UPDATE batch_deliveries SET locked_until = NULL, last_status = $2, last_error = $3,
         delivered_at = CASE WHEN $4 THEN now() END,
         next_at = CASE WHEN $4 THEN next_at WHEN $5::float8 IS NULL THEN 'infinity' ELSE now() + make_interval(secs => $5::float8 / 1000) END
       WHERE id = $1::bigint
       RETURNING id, attempts)
     INSERT INTO batch_delivery_tries (delivery_id, number, started_at, finished_at, status, error, worker)
     SELECT id, attempts, $6, now(), $2, $3, $7 FROM upd
     ON CONFLICT (delivery_id, number) DO NOTHING`,
    [d.id, r.status, r.error, r.ok, r.retryInMs, r.startedAt.toISOString(), r.worker],
  );
}

export type BatchDeliveryRow = {
  id: string;
  url: string;
  attempts: number;
  created_at: Date;
  delivered_at: Date | null;
  next_at: Date;
  last_status: number | null;
  last_error: string | null;
  tries: { number: number; startedAt: string; finishedAt: string; status: number | null; error: string | null }[];
};

/** A batch's deliveries, newest first, each with its tries in order. */
export async function selectBatchDeliveries(db: Db, batchId: string, limit = 50): Promise<BatchDeliveryRow[]> {
  const { rows } = await db.pool.query<BatchDeliveryRow>(
    `SELECT d.id::text, d.url, d.attempts, d.created_at, d.delivered_at, d.next_at, d.last_status, d.last_error,
       COALESCE((SELECT json_agg(json_build_object('number', t.number, 'startedAt', t.started_at,
                   'finishedAt', t.finished_at, 'status', t.status, 'error', t.error) ORDER BY t.number)
                 FROM batch_delivery_tries t WHERE t.delivery_id = d.id), '[]') AS tries
     FROM batch_deliveries d WHERE d.batch_id = $1 ORDER BY d.id DESC LIMIT $2`,
    [batchId, limit],
  );
  return rows;
}
