// The console's lists of commands: filtered pages with keyset pagination, the
// text search over a bounded window, and counts.
import type { Db } from "./client";
import type { CommandRow } from "../commands/view";
import { LEASED, UNLEASED, countBothHalves, leasedMayMatch, selectBothHalves } from "./leased";
import { inList } from "./states-sql";
import { PRUNABLE, STATES } from "../engine/states";

/** What finished_counts does not hold: counted from the indexes. */
const UNFINISHED = STATES.filter((s) => !PRUNABLE.includes(s));
import { baseWhere, pusher, searchMatch, searchWords, where, type ListFilter } from "./command-filter";

export type ListRow = CommandRow & {
  priority: number;
  run_at: Date;
  needs_reconcile: boolean;
  phase: string;
  locked_by: string | null;
};

const LIST_COLUMNS = `id, type, status, payload, result, failure, error, attempt_count, idempotency_key, ordering_key, created_at, updated_at, finished_at,
       priority, run_at, needs_reconcile, phase, locked_by`;

export async function listCommands(
  db: Db,
  f: ListFilter,
  cursor: { createdAt: string; id: string } | null,
  limit: number,
): Promise<ListRow[]> {
  const params: unknown[] = [];
  const conds = [where(f, params)];
  if (cursor) {
    params.push(cursor.createdAt, cursor.id);
    conds.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
  }
  params.push(limit);
  const { rows } = await db.pool.query<ListRow>(
    selectBothHalves(
      LIST_COLUMNS,
      conds.filter(Boolean).join(" AND "),
      "created_at DESC, id DESC",
      `$${params.length}`,
      f.status,
    ),
    params,
  );
  return rows;
}

/** Commands one page of search results reads at most (the newest of the filter, before the cursor). */
const SEARCH_WINDOW = 20_000;

export type SearchPage = {
  /** The commands with the idempotency key searched for (first page only; any age), then the text matches, newest first. */
  rows: ListRow[];
  /** Where the next page starts (older than this command), or null when the search has read every command of the filter. */
  next: { createdAt: Date; id: string } | null;
  /** Set when this page stopped after `window` commands without filling up: it read those created back to `to`. */
  searched: { window: number; to: Date } | null;
};

type Key = { created_at: Date; id: string };
const newestFirst = (a: Key, b: Key) =>
  b.created_at.getTime() - a.created_at.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/**
 * One page of a text search. Unleased commands (nearly all of them) are read
 * newest first through the filter's index, at most `window` of them: a word
 * found nowhere costs one window, not the whole table. When the window ends
 * before the page is full, the page holds what it found down to there and the
 * next page goes on from there. Leased commands (a few hundred) are all read;
 * the idempotency key is looked up through its unique index, whatever its age.
 */
export async function searchCommands(
  db: Db,
  f: ListFilter,
  cursor: { createdAt: string; id: string } | null,
  limit: number,
  window = SEARCH_WINDOW,
): Promise<SearchPage> {
  const q = f.q!.trim();
  const words = searchWords(q);
  const half = (leased: boolean) => {
    const params: unknown[] = [];
    const p = pusher(params);
    const conds = [...baseWhere(f, p), leased ? LEASED : UNLEASED];
    if (cursor) conds.push(`(created_at, id) < (${p(cursor.createdAt)}::timestamptz, ${p(cursor.id)}::uuid)`);
    const matched = `idempotency_key IS DISTINCT FROM ${p(q)} AND ${searchMatch(words, p)}`;
    const scanned = `SELECT ${LIST_COLUMNS} FROM commands WHERE ${conds.join(" AND ")} ORDER BY created_at DESC, id DESC`;
    const sql = leased
      ? `SELECT ${LIST_COLUMNS} FROM (${scanned}) scanned WHERE ${matched} ORDER BY created_at DESC, id DESC LIMIT ${p(limit + 1)}`
      : // n numbers the rows read; the row numbered `window` (if reached) says where this page stopped reading.
        `SELECT * FROM (
           SELECT ${LIST_COLUMNS}, ${matched} AS matched, row_number() OVER (ORDER BY created_at DESC, id DESC) AS n
           FROM (${scanned} LIMIT ${p(window)}) scanned
         ) w WHERE matched OR n = ${p(window)} ORDER BY created_at DESC, id DESC LIMIT ${p(limit + 1)}`;
    return db.pool.query<ListRow & { matched?: boolean; n?: string }>(sql, params);
  };
  const exact = async () => {
    if (cursor) return [];
    const params: unknown[] = [];
    const p = pusher(params);
    // client_id IN (...): the unique index (client_id, idempotency_key) is read once per client.
    const conds = [...baseWhere(f, p), `client_id IN (SELECT id FROM api_clients)`, `idempotency_key = ${p(q)}`];
    return (
      await db.pool.query<ListRow>(
        `SELECT ${LIST_COLUMNS} FROM commands WHERE ${conds.join(" AND ")} ORDER BY created_at DESC, id DESC`,
        params,
      )
    ).rows;
  };
  const [unleased, leased, keyed] = await Promise.all([
    half(false),
    leasedMayMatch(f.status) ? half(true) : { rows: [] },
    exact(),
  ]);

  const found = unleased.rows.filter((r) => r.matched);
  const last = unleased.rows.find((r) => Number(r.n) === window);
  // The window ran out before the page filled: only what lies down to its end is known.
  const edge = found.length <= limit && last ? last : null;
  let merged = [...found, ...leased.rows].sort(newestFirst);
  if (edge) merged = merged.filter((r) => newestFirst(r, edge) <= 0);
  const page = merged.slice(0, limit).map(({ matched: _m, n: _n, ...r }) => r as ListRow);
  const tail = merged.length > limit ? page.at(-1)! : edge;
  return {
    rows: [...keyed, ...page],
    next: tail ? { createdAt: tail.created_at, id: tail.id } : null,
    searched: edge ? { window, to: edge.created_at } : null,
  };
}

/** How many commands match the filter (the count behind "all that match", which may be more than an action takes). */
export async function countMatching(db: Db, f: ListFilter): Promise<number> {
  const params: unknown[] = [];
  const w = where(f, params);
  const { rows } = await db.pool.query<{ n: number }>(`SELECT ${countBothHalves(w, f.status)}::int AS n`, params);
  return rows[0]!.n;
}

/**
 * Commands per state. The finished ones (succeeded, failed, compensated, cancelled: the history, most of the
 * table) from finished_counts, kept by the triggers on commands (its migration says how), summed over at most
 * states × backends rows; the others from the indexes: unleased from the status index, leased from the lease
 * index. Counting the history's index entries instead took about a second at 10 million commands.
 */
export async function countByStatus(db: Db): Promise<Record<string, number>> {
  const { rows } = await db.pool.query<{ status: string; n: number }>(
    `SELECT status::text, count(*)::int AS n FROM commands WHERE status IN ${inList(UNFINISHED)} AND ${UNLEASED} GROUP BY status
     UNION ALL SELECT status::text, count(*)::int FROM commands WHERE ${LEASED} GROUP BY status
     UNION ALL SELECT status::text, sum(n)::int FROM finished_counts GROUP BY status`,
  );
  const out: Record<string, number> = {};
  for (const r of rows) if (r.n > 0) out[r.status] = (out[r.status] ?? 0) + r.n;
  return out;
}
