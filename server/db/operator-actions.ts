// Operator actions on commands (retry, compensate, cancel, resolve, edit &
// retry) as SQL: the targets of "all that match", the preview's read, and the
// change with its audit entry in one transaction, rows locked in id order.
import type pg from "pg";
import { withTransaction, type Db } from "./client";
import { KEY_BLOCKING, STATES, type State } from "../engine/states";
import type { OperatorChange, OperatorTarget } from "../engine/operator-transitions";
import type { Phase } from "../engine/types";
import { inList } from "./states-sql";
import { selectBothHalves } from "./leased";
import { where, type ListFilter } from "./command-filter";
import { writeAudit, type AuditInput } from "./audit";

export async function idsMatching(db: Db, f: ListFilter, max: number): Promise<string[]> {
  const params: unknown[] = [];
  const w = where(f, params);
  params.push(max);
  const { rows } = await db.pool.query<{ id: string }>(
    selectBothHalves("id, created_at", w, "created_at DESC, id DESC", `$${params.length}`, f.status),
    params,
  );
  return rows.map((r) => r.id);
}

// Values are checked, not quoted: every one is an enum member of the engine.
const statusSql = (s: State) => {
  if (!STATES.includes(s)) throw new Error(`not a state: ${s}`);
  return `'${s}'::command_status`;
};
const phaseSql = (p: Phase) => {
  if (p !== "execute" && p !== "compensate") throw new Error(`not a phase: ${p}`);
  return `'${p}'`;
};

/**
 * Whether the change brings a command back into a state that holds its
 * ordering key (KEY_BLOCKING): then it waits behind the key's head, if the key
 * has one (released at commit otherwise). A command taken to a free state
 * waits for nothing (commands_key_waiting_state_check).
 */
const rejoinsKey = (change: OperatorChange) => change.to.every((t) => KEY_BLOCKING.includes(t.status));

/** One column's value over the targets: the first whose `when` matches the row as it was. */
function byTarget(to: readonly OperatorTarget[], value: (t: OperatorTarget) => string): string {
  const last = to[to.length - 1];
  if (!last || last.when || to.slice(0, -1).some((t) => !t.when))
    throw new Error("an operator change needs conditional targets then exactly one for all others");
  if (to.length === 1) return value(last);
  const cases = to.slice(0, -1).map((t) => {
    const w = t.when!;
    return `WHEN status = ${statusSql(w.status)}${w.phase ? ` AND phase = ${phaseSql(w.phase)}` : ""} THEN ${value(t)}`;
  });
  return `CASE ${cases.join(" ")} ELSE ${value(last)} END`;
}

/**
 * The SET clause of an operator's change (server/engine/operator-transitions.ts):
 * one string, in one place. Every right-hand side reads the row as it was.
 */
export function setClause(c: OperatorChange): string {
  const set = [`status = ${byTarget(c.to, (t) => statusSql(t.status))}`];
  if (c.to.some((t) => t.phase)) set.push(`phase = ${byTarget(c.to, (t) => (t.phase ? phaseSql(t.phase) : "phase"))}`);
  if (c.resetTries) set.push("tries = 0");
  if (c.dueNow) set.push("run_at = now()");
  if (c.clearReconcile) set.push("needs_reconcile = false");
  if (c.clearError) set.push("error = NULL");
  if (c.clearFailureIn.length)
    set.push(`failure = CASE WHEN status IN ${inList(c.clearFailureIn)} THEN NULL ELSE failure END`);
  return set.join(", ");
}

/**
 * The ordering keys of the commands first (in lock order, as intake takes
 * them): the change may bring a command back into its key's line, and the
 * key's release (at commit) takes the same locks.
 */
async function lockKeys(client: Pick<pg.PoolClient, "query">, ids: string[]) {
  await client.query(
    `SELECT pg_advisory_xact_lock(l) FROM (
       SELECT DISTINCT conveyor_ordering_lock(client_id, ordering_key) AS l FROM commands
       WHERE id = ANY($1::uuid[]) AND ordering_key IS NOT NULL ORDER BY 1) s`,
    [ids],
  );
}

/**
 * Applies an action to the commands in an allowed state and not leased (a
 * running command is never touched), writes the audit entry, in one
 * transaction; returns the ids changed and the current state of the others.
 */
export async function applyAction(
  db: Db,
  ids: string[],
  change: OperatorChange,
  audit: Omit<AuditInput, "commandIds">,
): Promise<{ updated: string[]; others: { id: string; status: State | null; leased: boolean }[] }> {
  return withTransaction(db, async (client) => {
    await lockKeys(client, ids);
    // Rows are locked in id order first: in the order of a scan, two actions on overlapping
    // selections could take them in different orders (rows move as they change) and deadlock.
    const upd = await client.query<{ id: string }>(
      `WITH target AS (
         SELECT id FROM commands WHERE id = ANY($1::uuid[]) AND status = ANY($2::command_status[]) AND lease_id IS NULL
         ORDER BY id FOR NO KEY UPDATE)
       UPDATE commands SET ${setClause(change)}, key_waiting = ${rejoinsKey(change) ? "(ordering_key IS NOT NULL)" : "false"}
       WHERE id = ANY(ARRAY(SELECT id FROM target)) AND status = ANY($2::command_status[]) AND lease_id IS NULL
       RETURNING id`,
      [ids, change.from],
    );
    const updated = upd.rows.map((r) => r.id);
    const done = new Set(updated);
    const rest = ids.filter((id) => !done.has(id));
    const others = rest.length
      ? (
          await client.query<{ id: string; status: State; leased: boolean }>(
            `SELECT id, status, lease_id IS NOT NULL AS leased FROM commands WHERE id = ANY($1::uuid[])`,
            [rest],
          )
        ).rows
      : [];
    const found = new Map(others.map((o) => [o.id, o]));
    await writeAudit(client, {
      ...audit,
      commandIds: updated,
      details: { requested: ids.length, skipped: rest.length, ...((audit.details as object) ?? {}) },
    });
    return { updated, others: rest.map((id) => found.get(id) ?? { id, status: null, leased: false }) };
  });
}

/** What an edit decides from the command as it is (locked): the payload to store, and the audit entry's details. */
export type Edit = { payload: unknown; targetHost: string | null; details: unknown };

/**
 * Edit & retry of one command: under the same locks as applyAction (its
 * ordering key, then the row), reads the command; in an allowed state and not
 * leased, `edit` decides the new payload from the stored one (it may throw:
 * the transaction is rolled back, nothing changes), and the change is made as
 * applyAction makes it, with the payload and its target host; the payload the
 * client submitted is kept at the first edit (submitted_payload). The audit
 * entry is written in the same transaction. Otherwise the command is left as
 * it is and its state returned (the call is audited as skipped).
 */
export async function applyEdit(
  db: Db,
  id: string,
  change: OperatorChange,
  edit: (current: { type: string; payload: unknown }) => Edit,
  audit: Omit<AuditInput, "commandIds" | "details">,
): Promise<{ updated: true } | { updated: false; status: State | null; leased: boolean }> {
  return withTransaction(db, async (client) => {
    await lockKeys(client, [id]);
    const cur = (
      await client.query<{ type: string; payload: unknown; status: State; leased: boolean }>(
        `SELECT type, payload, status, lease_id IS NOT NULL AS leased FROM commands WHERE id = $1 FOR NO KEY UPDATE`,
        [id],
      )
    ).rows[0];
    if (!cur || cur.leased || !change.from.includes(cur.status)) {
      await writeAudit(client, { ...audit, commandIds: [], details: { requested: 1, skipped: 1 } });
      return { updated: false, status: cur?.status ?? null, leased: cur?.leased ?? false };
    }
    const next = edit({ type: cur.type, payload: cur.payload });
    const upd = await client.query(
      `UPDATE commands SET ${setClause(change)}, key_waiting = ${rejoinsKey(change) ? "(ordering_key IS NOT NULL)" : "false"},
         submitted_payload = COALESCE(submitted_payload, payload), payload = $2::jsonb, target_host = $3
       WHERE id = $1 AND status = ANY($4::command_status[]) AND lease_id IS NULL`,
      [id, JSON.stringify(next.payload), next.targetHost, change.from],
    );
    // The row is locked: it cannot have changed since it was read.
    if (upd.rowCount !== 1) throw new Error(`edit of command ${id} changed ${upd.rowCount} rows`);
    await writeAudit(client, { ...audit, commandIds: [id], details: next.details });
    return { updated: true };
  });
}

export async function typesOf(
  db: Db,
  ids: string[],
): Promise<{ id: string; type: string; status: State; leased: boolean; payload: unknown }[]> {
  const { rows } = await db.pool.query(
    `SELECT id, type, status, lease_id IS NOT NULL AS leased, payload FROM commands WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  return rows;
}
