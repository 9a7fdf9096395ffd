// The overview page's reads: throughput per minute, what waits longest, the
// due queue's length and the live workers.
import type { Db } from "./client";
import {
  CLAIMABLE as CLAIMABLE_STATES,
  FINISHES,
  FINISH_KINDS,
  WAITING_FOR_A_WORKER,
  type Finish,
  type State,
} from "../engine/states";
import { inList } from "./states-sql";
import { UNLEASED } from "./leased";

const FINISHED_COLUMNS = FINISH_KINDS.map(
  (k) => `COALESCE(sum(n) FILTER (WHERE status IN ${inList(FINISHES[k])}), 0)::int AS ${k}`,
).join(",\n            ");
const FINISHED_STATES = inList(FINISH_KINDS.flatMap((k) => FINISHES[k]));

/**
 * Commands that reached each kind of finish (FINISHES: succeeded or
 * compensated, failed, exception), per minute over the last `minutes`, from
 * the state-entry counters: an entry stays counted in its minute whatever the
 * command does next (a retry, a resolve), so the chart shows what happened
 * when it happened.
 */
export async function throughput(db: Db, minutes: number) {
  const { rows } = await db.pool.query<{ minute: Date } & Record<Finish, number>>(
    `SELECT minute,
            ${FINISHED_COLUMNS}
     FROM state_entries
     WHERE minute >= date_trunc('minute', now()) - make_interval(mins => $1 - 1)
       AND status IN ${FINISHED_STATES}
     GROUP BY 1 ORDER BY 1`,
    [minutes],
  );
  return rows;
}

export type WaitingRow = {
  id: string;
  type: string;
  status: State;
  created_at: Date;
  run_at: Date;
  state_changed_at: Date;
  error: string | null;
  failure: unknown;
};

// Queued and due, not leased, in the terms of the claim index (commands_claim_idx: priority DESC, run_at, partial),
// its predicate whole: without `NOT key_waiting` the planner cannot use it and reads the table (seconds at 10
// million commands). A command waiting behind its ordering key's head is not waiting for a worker.
const CLAIMABLE = `status IN ${inList(CLAIMABLE_STATES)} AND ${UNLEASED} AND NOT key_waiting`;
const DUE = `${CLAIMABLE} AND status IN ${inList(WAITING_FOR_A_WORKER)} AND run_at <= now()`;

/** The distinct priorities of claimable commands, by a loose scan of the claim index (one probe each). */
const PRIORITIES = `WITH RECURSIVE p(priority) AS (
  (SELECT priority FROM commands WHERE ${CLAIMABLE} ORDER BY priority DESC LIMIT 1)
  UNION ALL
  SELECT (SELECT c.priority FROM commands c WHERE ${CLAIMABLE}
    AND c.priority < p.priority ORDER BY c.priority DESC LIMIT 1)
    FROM p WHERE p.priority IS NOT NULL)`;

/**
 * What waits: commands in exception (an operator must decide), longest in
 * that state first; then queued commands whose time has come and that no
 * worker holds, longest due first. Commands scheduled for later are not
 * waiting yet. The due ones are read from the claim index one priority at a
 * time (its distinct priorities found by a loose index scan), each in due
 * order: a few index probes however long the queue, where a sort by run_at
 * over the whole queue took ~150 ms with 75,000 queued.
 */
export async function waiting(db: Db, limit: number): Promise<{ exception: WaitingRow[]; due: WaitingRow[] }> {
  const cols = "id, type, status, created_at, run_at, state_changed_at, error, failure";
  const [exception, due] = await Promise.all([
    db.pool.query<WaitingRow>(
      `SELECT ${cols} FROM commands WHERE status = 'exception' AND ${UNLEASED} ORDER BY state_changed_at, id LIMIT $1`,
      [limit],
    ),
    db.pool.query<WaitingRow>(
      `${PRIORITIES}
       SELECT d.* FROM p CROSS JOIN LATERAL (SELECT ${cols} FROM commands c WHERE ${DUE} AND c.priority = p.priority ORDER BY c.run_at, c.id LIMIT $1) d
       ORDER BY d.run_at, d.id LIMIT $1`,
      [limit],
    ),
  ]);
  return { exception: exception.rows, due: due.rows };
}

/** Queued commands whose time has come and that no worker holds, counted up to `max` (a longer queue reads as "max or more"), through the claim index. */
export async function dueCount(db: Db, max: number): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(
    `${PRIORITIES}
     SELECT count(*)::int AS n FROM (
       SELECT 1 FROM p CROSS JOIN LATERAL (SELECT 1 FROM commands c WHERE ${DUE} AND c.priority = p.priority LIMIT $1) d
       LIMIT $1) x`,
    [max],
  );
  return rows[0]!.n;
}

/** Worker processes that saved a metrics snapshot within `liveSeconds` (they do every 5 s while running). */
export async function liveWorkers(db: Db, liveSeconds: number) {
  const { rows } = await db.pool.query<{ worker_id: string; started_at: Date; updated_at: Date }>(
    `SELECT worker_id, started_at, updated_at FROM worker_metrics WHERE updated_at >= now() - make_interval(secs => $1) ORDER BY worker_id`,
    [liveSeconds],
  );
  return rows;
}
