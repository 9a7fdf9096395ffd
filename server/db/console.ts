// SQL behind the console: filtered lists with keyset pagination, counts,
// details, the audit log, and operator actions on commands.
import { SECRET_MEMBER_PG_RE } from "../lib/secret-fields";
import { withTransaction, type Db } from "./client";
import type { CommandRow } from "../commands/view";
import type { State } from "../engine/states";
import { LEASED, UNLEASED, countBothHalves, selectBothHalves } from "./leased";

export type ListFilter = {
  status?: State[];
  type?: string;
  q?: string;
  createdAfter?: string;
  createdBefore?: string;
};

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A search of more words than this is read as one phrase (each word is one more pass over every text it reads). */
const MAX_SEARCH_WORDS = 8;
/** The words of a text search: each must occur in what SEARCH_TEXT reads (in any case, in any order). */
function searchWords(q: string): string[] {
  const words = q.trim().split(/\s+/).filter(Boolean);
  return words.length > MAX_SEARCH_WORDS ? [q.trim()] : words;
}

/**
 * What a text search reads of a command: its id, idempotency key, payload,
 * failure and last error, in lower case. Not indexed: a trigram index over
 * it cost ~50 µs more per insert and ~60 µs more per completion (measured,
 * 100,000 rows), on the hottest paths there are; a page of search results
 * reads at most SEARCH_WINDOW commands instead (searchCommands).
 */
// Secret values in the payload are blanked first: a viewer must not find a command by a secret the console masks.
const SEARCHED_PAYLOAD = `regexp_replace(payload::text, '${SECRET_MEMBER_PG_RE}', '"\\1": ""', 'gi')`;
const SEARCH_TEXT = `lower(id::text || ' ' || COALESCE(idempotency_key, '') || ' ' || ${SEARCHED_PAYLOAD} || ' ' || COALESCE(failure::text, '') || ' ' || COALESCE(error, ''))`;

const textMatch = (text: string, words: string[], p: (v: unknown) => string) => words.map((w) => `strpos(${text}, lower(${p(w)}::text)) > 0`).join(" AND ");

/** Conditions of the filter other than its text search. */
function baseWhere(f: ListFilter, p: (v: unknown) => string): string[] {
  const parts: string[] = [];
  if (f.status?.length) parts.push(`status = ANY(${p(f.status)}::command_status[])`);
  if (f.type) parts.push(`type = ${p(f.type)}`);
  if (f.createdAfter) parts.push(`created_at >= ${p(f.createdAfter)}::timestamptz`);
  if (f.createdBefore) parts.push(`created_at < ${p(f.createdBefore)}::timestamptz`);
  return parts;
}

const pusher = (params: unknown[]) => (v: unknown) => (params.push(v), `$${params.length}`);

/**
 * The condition and parameters for a filter, text search included ("all that
 * match" reads the whole table): a command id finds that command; other text
 * finds the command with that idempotency key, and every command whose text
 * holds all the words.
 */
function where(f: ListFilter, params: unknown[]): string {
  const p = pusher(params);
  const parts = baseWhere(f, p);
  const q = f.q?.trim();
  if (q) {
    if (UUID_RE.test(q)) parts.push(`id = ${p(q)}::uuid`);
    else parts.push(`(idempotency_key = ${p(q)} OR (${textMatch(SEARCH_TEXT, searchWords(q), p)}))`);
  }
  return parts.join(" AND ");
}

export type ListRow = CommandRow & { priority: number; run_at: Date; needs_reconcile: boolean; phase: string; locked_by: string | null };

const LIST_COLUMNS = `id, type, status, payload, result, failure, error, attempt_count, idempotency_key, created_at, updated_at, finished_at,
       priority, run_at, needs_reconcile, phase, locked_by`;

/** A text search (not a command id)? Those go through searchCommands. */
export const isTextSearch = (f: ListFilter) => !!f.q?.trim() && !UUID_RE.test(f.q.trim());

export async function listCommands(db: Db, f: ListFilter, cursor: { createdAt: string; id: string } | null, limit: number): Promise<ListRow[]> {
  const params: unknown[] = [];
  const conds = [where(f, params)];
  if (cursor) {
    params.push(cursor.createdAt, cursor.id);
    conds.push(`(created_at, id) < ($${params.length - 1}::timestamptz, $${params.length}::uuid)`);
  }
  params.push(limit);
  const { rows } = await db.pool.query<ListRow>(selectBothHalves(LIST_COLUMNS, conds.filter(Boolean).join(" AND "), "created_at DESC, id DESC", `$${params.length}`), params);
  return rows;
}

/** Commands one page of search results reads at most (the newest of the filter, before the cursor). */
export const SEARCH_WINDOW = 20_000;

export type SearchPage = {
  /** The commands with the idempotency key searched for (first page only; any age), then the text matches, newest first. */
  rows: ListRow[];
  /** Where the next page starts (older than this command), or null when the search has read every command of the filter. */
  next: { createdAt: Date; id: string } | null;
  /** Set when this page stopped after `window` commands without filling up: it read those created back to `to`. */
  searched: { window: number; to: Date } | null;
};

type Key = { created_at: Date; id: string };
const newestFirst = (a: Key, b: Key) => b.created_at.getTime() - a.created_at.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);

/**
 * One page of a text search. Unleased commands (nearly all of them) are read
 * newest first through the filter's index, at most `window` of them: a word
 * found nowhere costs one window, not the whole table. When the window ends
 * before the page is full, the page holds what it found down to there and the
 * next page goes on from there. Leased commands (a few hundred) are all read;
 * the idempotency key is looked up through its unique index, whatever its age.
 */
export async function searchCommands(db: Db, f: ListFilter, cursor: { createdAt: string; id: string } | null, limit: number, window = SEARCH_WINDOW): Promise<SearchPage> {
  const q = f.q!.trim();
  const words = searchWords(q);
  const half = (leased: boolean) => {
    const params: unknown[] = [];
    const p = pusher(params);
    const conds = [...baseWhere(f, p), leased ? LEASED : UNLEASED];
    if (cursor) conds.push(`(created_at, id) < (${p(cursor.createdAt)}::timestamptz, ${p(cursor.id)}::uuid)`);
    const matched = `idempotency_key IS DISTINCT FROM ${p(q)} AND ${textMatch("doc", words, p)}`;
    const scanned = `SELECT ${LIST_COLUMNS}, ${SEARCH_TEXT} AS doc FROM commands WHERE ${conds.join(" AND ")} ORDER BY created_at DESC, id DESC`;
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
    return (await db.pool.query<ListRow>(`SELECT ${LIST_COLUMNS} FROM commands WHERE ${conds.join(" AND ")} ORDER BY created_at DESC, id DESC`, params)).rows;
  };
  const [unleased, leased, keyed] = await Promise.all([half(false), half(true), exact()]);

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

export async function idsMatching(db: Db, f: ListFilter, max: number): Promise<string[]> {
  const params: unknown[] = [];
  const w = where(f, params);
  params.push(max);
  const { rows } = await db.pool.query<{ id: string }>(selectBothHalves("id, created_at", w, "created_at DESC, id DESC", `$${params.length}`), params);
  return rows.map((r) => r.id);
}

/** How many commands match the filter (the count behind "all that match", which may be more than an action takes). */
export async function countMatching(db: Db, f: ListFilter): Promise<number> {
  const params: unknown[] = [];
  const w = where(f, params);
  const { rows } = await db.pool.query<{ n: number }>(`SELECT ${countBothHalves(w)}::int AS n`, params);
  return rows[0]!.n;
}

/**
 * Commands per state, each part read from an index alone: unfinished and
 * failed ones from the status index, leased ones from the lease index, and
 * succeeded ones (most of the table, not in the status index) as all unleased
 * rows (an index-only scan of the narrow created_at index) minus the others.
 */
export async function countByStatus(db: Db): Promise<Record<string, number>> {
  const { rows } = await db.pool.query<{ status: string; n: number }>(
    `WITH open AS (SELECT status, count(*)::int AS n FROM commands WHERE status <> 'succeeded' AND ${UNLEASED} GROUP BY status),
          leased AS (SELECT status, count(*)::int AS n FROM commands WHERE ${LEASED} GROUP BY status)
     SELECT status::text, n FROM open
     UNION ALL SELECT status::text, n FROM leased
     UNION ALL SELECT 'succeeded', (SELECT count(*)::int FROM commands WHERE ${UNLEASED}) - (SELECT COALESCE(sum(n), 0)::int FROM open)`,
  );
  const out: Record<string, number> = {};
  for (const r of rows) if (r.n > 0) out[r.status] = (out[r.status] ?? 0) + r.n;
  return out;
}

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
export type AttemptRow = { number: number; kind: string; outcome: string | null; started_at: Date; finished_at: Date | null; error: string | null; worker: string; detail: unknown };
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
    const audit = await client.query(`SELECT at, actor, action, reason FROM audit_entries WHERE command_ids @> ARRAY[$1::uuid] ORDER BY at DESC, id DESC LIMIT 200`, [id]);
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

export async function listAudit(db: Db, cursor: number | null, limit: number) {
  const { rows } = await db.pool.query<{ id: string; at: Date; actor: string; action: string; reason: string | null; command_ids: string[] | null; details: unknown }>(
    `SELECT id::text, at, actor, action, reason, command_ids, details FROM audit_entries WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2`,
    [cursor, limit],
  );
  return rows;
}

/**
 * Commands that reached succeeded (or compensated), failed or exception, per
 * minute over the last `minutes`, from the state-entry counters: an entry
 * stays counted in its minute whatever the command does next (a retry, a
 * resolve), so the chart shows what happened when it happened.
 */
export async function throughput(db: Db, minutes: number) {
  const { rows } = await db.pool.query<{ minute: Date; succeeded: number; failed: number; exception: number }>(
    `SELECT minute,
            COALESCE(sum(n) FILTER (WHERE status IN ('succeeded', 'compensated')), 0)::int AS succeeded,
            COALESCE(sum(n) FILTER (WHERE status = 'failed'), 0)::int AS failed,
            COALESCE(sum(n) FILTER (WHERE status = 'exception'), 0)::int AS exception
     FROM state_entries
     WHERE minute >= date_trunc('minute', now()) - make_interval(mins => $1 - 1) AND status IN ('succeeded', 'compensated', 'failed', 'exception')
     GROUP BY 1 ORDER BY 1`,
    [minutes],
  );
  return rows;
}

export type WaitingRow = { id: string; type: string; status: State; created_at: Date; run_at: Date; state_changed_at: Date; error: string | null; failure: unknown };

// Queued and due, not leased, in the terms of the claim index (commands_claim_idx: priority DESC, run_at, partial).
const CLAIMABLE = `status IN ('pending', 'retrying', 'awaiting', 'compensating') AND ${UNLEASED}`;
const DUE = `${CLAIMABLE} AND status <> 'awaiting' AND run_at <= now()`;

/** The distinct priorities of claimable commands, by a loose scan of the claim index (one probe each). */
const PRIORITIES = `WITH RECURSIVE p(priority) AS (
  (SELECT priority FROM commands WHERE ${CLAIMABLE} ORDER BY priority DESC LIMIT 1)
  UNION ALL
  SELECT (SELECT c.priority FROM commands c WHERE ${CLAIMABLE} AND c.priority < p.priority ORDER BY c.priority DESC LIMIT 1) FROM p WHERE p.priority IS NOT NULL)`;

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
    db.pool.query<WaitingRow>(`SELECT ${cols} FROM commands WHERE status = 'exception' AND ${UNLEASED} ORDER BY state_changed_at, id LIMIT $1`, [limit]),
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
     SELECT count(*)::int AS n FROM (SELECT 1 FROM p CROSS JOIN LATERAL (SELECT 1 FROM commands c WHERE ${DUE} AND c.priority = p.priority LIMIT $1) d LIMIT $1) x`,
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

// ---- operator actions ----

export type ActionSql = {
  /** States the action applies in. */
  from: State[];
  /** SET clause (may use $3 for the action's extra argument). */
  set: string;
};

/**
 * Applies an action to the commands in an allowed state and not leased (a
 * running command is never touched), writes the audit entry, in one
 * transaction; returns the ids changed and the current state of the others.
 */
export async function applyAction(
  db: Db,
  ids: string[],
  action: ActionSql,
  audit: { actor: string; action: string; reason: string | null; details?: unknown },
  extra: unknown = null,
): Promise<{ updated: string[]; others: { id: string; status: State | null; leased: boolean }[] }> {
  return withTransaction(db, async (client) => {
    // Rows are locked in id order first: in the order of a scan, two actions on overlapping
    // selections could take them in different orders (rows move as they change) and deadlock.
    const upd = await client.query<{ id: string }>(
      `WITH target AS (
         SELECT id FROM commands WHERE id = ANY($1::uuid[]) AND status = ANY($2::command_status[]) AND lease_id IS NULL
         ORDER BY id FOR NO KEY UPDATE)
       UPDATE commands SET ${action.set}
       WHERE id = ANY(ARRAY(SELECT id FROM target)) AND status = ANY($2::command_status[]) AND lease_id IS NULL
       RETURNING id`,
      action.set.includes("$3") ? [ids, action.from, extra] : [ids, action.from],
    );
    const updated = upd.rows.map((r) => r.id);
    const done = new Set(updated);
    const rest = ids.filter((id) => !done.has(id));
    const others = rest.length
      ? (await client.query<{ id: string; status: State; leased: boolean }>(`SELECT id, status, lease_id IS NOT NULL AS leased FROM commands WHERE id = ANY($1::uuid[])`, [rest])).rows
      : [];
    const found = new Map(others.map((o) => [o.id, o]));
    await client.query(
      `INSERT INTO audit_entries (actor, action, reason, command_ids, details) VALUES ($1, $2, $3, $4::uuid[], $5)`,
      [audit.actor, audit.action, audit.reason, updated, JSON.stringify({ requested: ids.length, skipped: rest.length, ...((audit.details as object) ?? {}) })],
    );
    return { updated, others: rest.map((id) => found.get(id) ?? { id, status: null, leased: false }) };
  });
}

export async function typesOf(db: Db, ids: string[]): Promise<{ id: string; type: string; status: State; leased: boolean; payload: unknown }[]> {
  const { rows } = await db.pool.query(`SELECT id, type, status, lease_id IS NOT NULL AS leased, payload FROM commands WHERE id = ANY($1::uuid[])`, [ids]);
  return rows;
}

export async function writeAudit(db: Db, e: { actor: string; action: string; reason: string | null; commandIds?: string[]; details?: unknown }) {
  await db.pool.query(`INSERT INTO audit_entries (actor, action, reason, command_ids, details) VALUES ($1, $2, $3, $4::uuid[], $5)`, [
    e.actor,
    e.action,
    e.reason,
    e.commandIds ?? null,
    e.details === undefined ? null : JSON.stringify(e.details),
  ]);
}
