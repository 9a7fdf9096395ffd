// Operator actions on commands (retry, compensate, cancel, resolve) as SQL:
// the targets of "all that match", the preview's read, and the change with its
// audit entry in one transaction, rows locked in id order.
import { withTransaction, type Db } from "./client";
import type { State } from "../engine/states";
import { selectBothHalves } from "./leased";
import { where, type ListFilter } from "./command-filter";
import { writeAudit, type AuditInput } from "./audit";

export async function idsMatching(db: Db, f: ListFilter, max: number): Promise<string[]> {
  const params: unknown[] = [];
  const w = where(f, params);
  params.push(max);
  const { rows } = await db.pool.query<{ id: string }>(
    selectBothHalves("id, created_at", w, "created_at DESC, id DESC", `$${params.length}`),
    params,
  );
  return rows.map((r) => r.id);
}

export type ActionSql = {
  /** States the action applies in. */
  from: State[];
  /** SET clause (may use $3 for the action's extra argument). */
  set: string;
  /**
   * Whether the action brings a command back into a state that holds its
   * ordering key (KEY_BLOCKING): then it waits behind the key's head, if the
   * key has one (released at commit otherwise). A command it takes to a free
   * state waits for nothing (commands_key_waiting_state_check).
   */
  rejoinsKey: boolean;
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
  audit: Omit<AuditInput, "commandIds">,
  extra: unknown = null,
): Promise<{ updated: string[]; others: { id: string; status: State | null; leased: boolean }[] }> {
  return withTransaction(db, async (client) => {
    // The ordering keys of the commands first (in lock order, as intake takes them): the change may bring a
    // command back into its key's line, and the key's release (at commit) takes the same locks.
    await client.query(
      `SELECT pg_advisory_xact_lock(l) FROM (
         SELECT DISTINCT conveyor_ordering_lock(client_id, ordering_key) AS l FROM commands
         WHERE id = ANY($1::uuid[]) AND ordering_key IS NOT NULL ORDER BY 1) s`,
      [ids],
    );
    // Rows are locked in id order first: in the order of a scan, two actions on overlapping
    // selections could take them in different orders (rows move as they change) and deadlock.
    const upd = await client.query<{ id: string }>(
      `WITH target AS (
         SELECT id FROM commands WHERE id = ANY($1::uuid[]) AND status = ANY($2::command_status[]) AND lease_id IS NULL
         ORDER BY id FOR NO KEY UPDATE)
       UPDATE commands SET ${action.set}, key_waiting = ${action.rejoinsKey ? "(ordering_key IS NOT NULL)" : "false"}
       WHERE id = ANY(ARRAY(SELECT id FROM target)) AND status = ANY($2::command_status[]) AND lease_id IS NULL
       RETURNING id`,
      action.set.includes("$3") ? [ids, action.from, extra] : [ids, action.from],
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
