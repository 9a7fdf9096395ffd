import type { Db } from "../db/client";
import { selectCommandByKey, selectCommands } from "../db/commands";
import { AppError } from "../errors";
import { toView, type CommandView } from "./view";

/** Who is asking: a client sees only its own commands; an admin sees all. */
export type Visibility = { clientId: string; all: boolean };

export async function getCommand(
  db: Db,
  who: Visibility,
  by: { id: string } | { idempotencyKey: string },
): Promise<CommandView> {
  const row =
    "id" in by
      ? (await selectCommands(db, [by.id], who.all ? null : who.clientId))[0]
      : // Idempotency keys are per client, so a key always names one of the caller's own commands.
        await selectCommandByKey(db, who.clientId, by.idempotencyKey);
  if (!row) throw new AppError("NOT_FOUND", "No such command");
  return toView(row);
}

export async function getCommands(db: Db, who: Visibility, ids: string[]): Promise<CommandView[]> {
  if (ids.length === 0) return [];
  const rows = await selectCommands(db, [...new Set(ids)], who.all ? null : who.clientId);
  const byId = new Map(rows.map((r) => [r.id, r]));
  // Keep the caller's order.
  return [...new Set(ids)].flatMap((id) => (byId.has(id) ? [toView(byId.get(id)!)] : []));
}
