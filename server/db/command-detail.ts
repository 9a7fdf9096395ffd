// One command as its page shows it: the row, its attempts, audit entries,
// callback deliveries and its place in its ordering key's line, read in one snapshot.
import type { Db } from "./client";
import type { ListRow } from "./commands-read";
import { KEY_BLOCKING } from "../engine/states";
import { inList } from "./states-sql";

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
  client_id: string;
  ordering_seq: string | null;
  key_waiting: boolean;
  batch_id: string | null;
  /** Set at an operator's first edit & retry: the payload the client submitted. */
  submitted_payload: unknown;
};

export type DetailAuditRow = { at: Date; actor: string; action: string; reason: string | null; details: unknown };
/** Where a command stands in its ordering key's line (DESIGN §7). */
export type KeyLineRow = {
  /** The key's head: the one command of the key that may run now (null between a release and the next). */
  head: { id: string; status: string } | null;
  /** Commands of the key waiting before this one, and after it (each counted up to KEY_LINE_COUNT_MAX + 1). */
  ahead: number;
  behind: number;
};

/** A key's line is counted this far (a key may hold many thousands of commands). */
export const KEY_LINE_COUNT_MAX = 1_000;
const BLOCKING = inList(KEY_BLOCKING);
/** Through commands_ordering_idx (client, key, seq) over the key's commands that hold it. */
const KEY_LINE = `SELECT
    (SELECT json_build_object('id', h.id, 'status', h.status) FROM commands h
     WHERE h.client_id = $1 AND h.ordering_key = $2 AND h.status IN ${BLOCKING} AND NOT h.key_waiting
     ORDER BY h.ordering_seq LIMIT 1) AS head,
    (SELECT count(*)::int FROM (SELECT 1 FROM commands w
       WHERE w.client_id = $1 AND w.ordering_key = $2 AND w.status IN ${BLOCKING} AND w.key_waiting
         AND w.ordering_seq < $3 LIMIT ${KEY_LINE_COUNT_MAX + 1}) x) AS ahead,
    (SELECT count(*)::int FROM (SELECT 1 FROM commands w
       WHERE w.client_id = $1 AND w.ordering_key = $2 AND w.status IN ${BLOCKING} AND w.key_waiting
         AND w.ordering_seq > $3 LIMIT ${KEY_LINE_COUNT_MAX + 1}) x) AS behind`;
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
    const audit = await client.query<DetailAuditRow>(
      `SELECT at, actor, action, reason, details FROM audit_entries WHERE command_ids @> ARRAY[$1::uuid] ORDER BY at DESC, id DESC LIMIT 200`,
      [id],
    );
    const callbacks = await client.query<CallbackRow>(
      `SELECT id::text, url, status, attempts, next_at, delivered_at, last_status, last_error, created_at,
              delivered_at IS NULL AND locked_until > now() AS sending, locked_until
       FROM callback_deliveries WHERE command_id = $1 ORDER BY id`,
      [id],
    );
    const c = cmd.rows[0];
    const keyLine = c?.ordering_key
      ? (await client.query<KeyLineRow>(KEY_LINE, [c.client_id, c.ordering_key, c.ordering_seq])).rows[0]!
      : null;
    await client.query("COMMIT");
    return { command: c, attempts: attempts.rows, audit: audit.rows, callbacks: callbacks.rows, keyLine };
  } catch (err) {
    await client.query("ROLLBACK").catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
