// Operator actions (DESIGN §4): Retry, Compensate, Cancel, Resolve. Each
// applies only to commands in a state it allows and never to one a worker
// holds; the others are skipped with the reason. Every call writes an audit
// entry. Clicking twice is harmless: the second call skips what the first changed.
import type { Db } from "../db/client";
import { applyAction, idsMatching, typesOf, type ActionSql, type ListFilter } from "../db/console";
import type { Registry } from "../handlers/registry";
import type { State } from "./state";

export type ActionResult = { updated: string[]; skipped: { id: string; reason: string }[] };
export type Target = { ids: string[] } | { filter: ListFilter };
export type Actor = { name: string };

/** "All that match this filter" is capped, so that one click cannot rewrite the whole table. */
export const MAX_ACTION_TARGETS = 10_000;

async function resolveTargets(db: Db, target: Target): Promise<string[]> {
  return "ids" in target ? [...new Set(target.ids)] : idsMatching(db, target.filter, MAX_ACTION_TARGETS);
}

const RETRY: ActionSql = {
  from: ["failed", "exception", "cancelled"],
  // An exception met while compensating is retried as compensation; anything else runs again.
  // needs_reconcile is kept: an unknown last outcome is still reconciled first.
  set: `status = CASE WHEN status = 'exception' AND phase = 'compensate' THEN 'compensating'::command_status ELSE 'pending'::command_status END,
        phase = CASE WHEN status = 'exception' AND phase = 'compensate' THEN 'compensate' ELSE 'execute' END,
        tries = 0, run_at = now(), error = NULL, failure = CASE WHEN status = 'failed' THEN NULL ELSE failure END`,
};
const COMPENSATE: ActionSql = {
  from: ["succeeded", "failed", "exception"],
  set: `status = 'compensating', phase = 'compensate', tries = 0, run_at = now(), needs_reconcile = false, error = NULL`,
};
const CANCEL: ActionSql = { from: ["pending", "retrying", "awaiting"], set: `status = 'cancelled', needs_reconcile = false` };
const RESOLVE: ActionSql = { from: ["exception"], set: `status = $3::command_status, needs_reconcile = false` };

function explain(action: string, from: State[], o: { id: string; status: State | null; leased: boolean }): { id: string; reason: string } {
  if (o.status === null) return { id: o.id, reason: "no such command" };
  if (o.leased) return { id: o.id, reason: `${o.status}: a worker is working on it right now` };
  return { id: o.id, reason: `${o.status}: ${action} applies only to ${from.join(", ")} commands` };
}

async function run(db: Db, name: string, sql: ActionSql, ids: string[], actor: Actor, reason: string | null, extra?: unknown, preSkipped: { id: string; reason: string }[] = []): Promise<ActionResult> {
  const r = ids.length ? await applyAction(db, ids, sql, { actor: actor.name, action: name, reason, details: extra === undefined ? undefined : { outcome: extra } }, extra ?? null) : { updated: [], others: [] };
  return { updated: r.updated, skipped: [...preSkipped, ...r.others.map((o) => explain(name, sql.from, o))] };
}

export async function retryCommands(db: Db, target: Target, actor: Actor, reason: string | null) {
  return run(db, "retry", RETRY, await resolveTargets(db, target), actor, reason);
}

export async function cancelCommands(db: Db, target: Target, actor: Actor, reason: string | null) {
  return run(db, "cancel", CANCEL, await resolveTargets(db, target), actor, reason);
}

export async function resolveCommands(db: Db, target: Target, outcome: "succeeded" | "failed", actor: Actor, reason: string) {
  return run(db, "resolve", RESOLVE, await resolveTargets(db, target), actor, reason, outcome);
}

/** Compensation needs a type (and payload) that can undo: others are skipped up front. */
export async function compensateCommands(db: Db, registry: Registry, target: Target, actor: Actor, reason: string | null) {
  const ids = await resolveTargets(db, target);
  const rows = await typesOf(db, ids);
  const can: string[] = [];
  const skipped: { id: string; reason: string }[] = [];
  const known = new Set(rows.map((r) => r.id));
  for (const id of ids) if (!known.has(id)) skipped.push({ id, reason: "no such command" });
  for (const r of rows) {
    const type = registry.get(r.type);
    const parsed = type?.schema.safeParse(r.payload);
    if (!type?.compensate) skipped.push({ id: r.id, reason: `type ${r.type} has no compensation` });
    else if (type.canCompensate && parsed?.success && !type.canCompensate(parsed.data)) skipped.push({ id: r.id, reason: `this ${r.type} command has nothing to compensate with (no compensateUrl)` });
    else can.push(r.id);
  }
  return run(db, "compensate", COMPENSATE, can, actor, reason, undefined, skipped);
}
