// One command as its page shows it: the row, its attempts, audit entries and
// callback deliveries, read in one snapshot.
import type { Db } from "./client";
import type { ListRow } from "./commands-read";

export type DetailRow = ListRow & {
  callback_url: string | null;
  tries: number;
  max_attempts: number | null;
  client_name: string;
  lease_id: string | null;
  attempt_started_at: Date | null;
  locked_until: Date | null;
  lease_expired: boolean;
  state_changed_at: Date;
  read_at: Date;
};
export type AttemptRow = {
  number: number;
  kind: string;
  outcome: string | null;
  started_at: Date;
  finished_at: Date | null;
  error: string | null;
  worker: string;
  detail: unknown;
};
export type CallbackRow = {
  id: string;
  url: string;
  status: string;
  attempts: number;
  next_at: Date;
  delivered_at: Date | null;
  last_status: number | null;
  last_error: string | null;
  created_at: Date;
  sending: boolean;
  locked_until: Date | null;
};

/**
 * One command with its attempts, audit entries and callback deliveries, read
 * in one snapshot: the lease (an attempt in flight) and the attempt rows a
 * completion writes in the same transaction are never seen half-way.
 */
export async function commandDetail(db: Db, id: string) {
  const client = await db.pool.connect();
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const cmd = await client.query<DetailRow>(
      `SELECT c.*, a.name AS client_name, now() AS read_at, c.locked_until < now() AS lease_expired
       FROM commands c JOIN api_clients a ON a.id = c.client_id WHERE c.id = $1`,
      [id],
    );
    const attempts = await client.query<AttemptRow>(
      `SELECT number, kind, outcome, started_at, finished_at, error, worker, detail FROM attempts WHERE command_id = $1 ORDER BY number, started_at, id`,
      [id],
    );
    const audit = await client.query(
      `SELECT at, actor, action, reason FROM audit_entries WHERE command_ids @> ARRAY[$1::uuid] ORDER BY at DESC, id DESC LIMIT 200`,
      [id],
    );
    const callbacks = await client.query<CallbackRow>(
      `SELECT id::text, url, status, attempts, next_at, delivered_at, last_status, last_error, created_at,
              delivered_at IS NULL AND locked_until > now() AS sending, locked_until
       FROM callback_deliveries WHERE command_id = $1 ORDER BY id`,
      [id],
    );
    await client.query("COMMIT");
    return { command: cmd.rows[0], attempts: attempts.rows, audit: audit.rows, callbacks: callbacks.rows };
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
