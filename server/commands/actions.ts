// Operator actions (DESIGN §4, §9): Retry, Compensate, Cancel, Resolve, Edit & retry. Each
// applies only to commands in a state it allows and never to one a worker
// holds; the others are skipped with the reason. Every call writes an audit
// entry. Clicking twice is harmless: the second call skips what the first changed.
import type { Db } from "../db/client";
import { applyAction, applyEdit, idsMatching, typesOf, type Edit } from "../db/operator-actions";
import { countMatching } from "../db/commands-read";
import type { ListFilter } from "../db/command-filter";
import type { Registry } from "../command-types/registry";
import {
  operatorCancel,
  operatorCompensate,
  operatorEditAndRetry,
  operatorResolve,
  operatorRetry,
  type OperatorChange,
} from "../engine/operator-transitions";
import { ACTION_NAMES, MAX_ACTION_TARGETS, whyNot, type ActionName, type ResolveOutcome } from "../engine/actions";
import { AppError, type Issue } from "../errors";
import { changedFields, jsonProblem } from "./inputs";
import { keepMaskedSecrets, maskSecrets } from "./mask";

export type ActionResult = { updated: string[]; skipped: { id: string; reason: string }[] };
export type Target = { ids: string[] } | { filter: ListFilter };
export type Actor = { name: string };

async function resolveTargets(db: Db, target: Target): Promise<string[]> {
  return "ids" in target ? [...new Set(target.ids)] : idsMatching(db, target.filter, MAX_ACTION_TARGETS);
}

async function run(
  db: Db,
  change: OperatorChange,
  ids: string[],
  actor: Actor,
  reason: string | null,
  details?: { outcome: ResolveOutcome },
  preSkipped: { id: string; reason: string }[] = [],
): Promise<ActionResult> {
  const name = change.action;
  const r = ids.length
    ? await applyAction(db, ids, change, { actor: actor.name, action: name, reason, details })
    : { updated: [], others: [] };
  // The update found these not in an allowed state or leased; whyNot says which (it never answers null for them).
  return {
    updated: r.updated,
    skipped: [
      ...preSkipped,
      ...r.others.map((o) => ({ id: o.id, reason: whyNot(name, o) ?? `${o.status}: changed while ${name} ran` })),
    ],
  };
}

/** Why a command of this type and payload cannot be compensated, or null when it can. */
function compensationBlocker(registry: Registry, r: { type: string; payload: unknown }): string | null {
  const type = registry.get(r.type);
  if (!type?.compensate) return `type ${r.type} has no compensation`;
  const parsed = type.schema.safeParse(r.payload);
  if (type.canCompensate && parsed.success && !type.canCompensate(parsed.data))
    return `this ${r.type} command has nothing to compensate with (no compensateUrl)`;
  return null;
}

export async function retryCommands(db: Db, target: Target, actor: Actor, reason: string | null) {
  return run(db, operatorRetry(), await resolveTargets(db, target), actor, reason);
}

export async function cancelCommands(db: Db, target: Target, actor: Actor, reason: string | null) {
  return run(db, operatorCancel(), await resolveTargets(db, target), actor, reason);
}

export async function resolveCommands(db: Db, target: Target, outcome: ResolveOutcome, actor: Actor, reason: string) {
  return run(db, operatorResolve(outcome), await resolveTargets(db, target), actor, reason, { outcome });
}

/** Compensation needs a type (and payload) that can undo: others are skipped up front. */
export async function compensateCommands(
  db: Db,
  registry: Registry,
  target: Target,
  actor: Actor,
  reason: string | null,
) {
  const ids = await resolveTargets(db, target);
  const rows = await typesOf(db, ids);
  const can: string[] = [];
  const skipped: { id: string; reason: string }[] = [];
  const known = new Set(rows.map((r) => r.id));
  for (const id of ids) if (!known.has(id)) skipped.push({ id, reason: "no such command" });
  for (const r of rows) {
    const blocker = compensationBlocker(registry, r);
    if (blocker) skipped.push({ id: r.id, reason: blocker });
    else can.push(r.id);
  }
  return run(db, operatorCompensate(), can, actor, reason, undefined, skipped);
}

export type EditDeps = {
  db: Db;
  registry: Registry;
  /** The API's host allow-list check (HTTP_ALLOWED_HOSTS), as intake applies it. */
  hostCheck?: ((url: string) => string | null) | null;
};

/**
 * The payload an operator sends back, judged as intake judges a submitted one
 * (what jsonb cannot hold, the type's schema, the target hosts), with issues
 * under `payload`. Secrets the console showed masked and that were left so
 * keep their stored value. Returns what to store (the payload as given, like
 * intake: defaults are applied when the worker parses it) and its target host.
 */
function judgePayload(deps: EditDeps, type: string, stored: unknown, given: unknown) {
  const payload = keepMaskedSecrets(given, stored);
  const problem = jsonProblem(payload);
  if (problem)
    throw new AppError("BAD_REQUEST", "Invalid payload", [
      { path: ["payload", ...problem.path], message: problem.message },
    ]);
  // BAD_REQUEST with issues at payload.<field> (an unknown type: at type).
  const parsed = deps.registry.validate(type, payload);
  const t = deps.registry.get(type)!;
  if (deps.hostCheck) {
    const issues: Issue[] = (t.targets?.(parsed) ?? []).flatMap((x) => {
      const refused = deps.hostCheck!(x.url);
      return refused ? [{ path: ["payload", ...x.path], message: refused }] : [];
    });
    if (issues.length) throw new AppError("BAD_REQUEST", `Invalid payload for type "${type}"`, issues);
  }
  return { payload, targetHost: t.scopeHost?.(parsed) ?? null };
}

/**
 * Edit & retry (DESIGN §9): stores a corrected payload and runs the command
 * again as Retry does, under the same id and idempotency key; in failed,
 * exception or cancelled only (otherwise skipped, with the reason). A payload
 * the type refuses is BAD_REQUEST with issues under `payload`, and nothing
 * changes. The next attempt still reconciles first when the last outcome is
 * unknown (needs_reconcile is kept): the backend is asked, with the command's
 * id, what became of the earlier attempt before anything is sent with the new
 * payload. The audit entry, written in the same transaction, keeps the payload
 * before and after, secrets masked, and the fields that changed.
 */
export async function editAndRetryCommand(
  deps: EditDeps,
  id: string,
  payload: unknown,
  actor: Actor,
  reason: string,
): Promise<ActionResult> {
  const change = operatorEditAndRetry();
  const r = await applyEdit(
    deps.db,
    id,
    change,
    (cur): Edit => {
      const next = judgePayload(deps, cur.type, cur.payload, payload);
      const before = maskSecrets(cur.payload);
      const after = maskSecrets(next.payload);
      return {
        ...next,
        details: { changed: changedFields(before, after), payloadBefore: before, payloadAfter: after },
      };
    },
    { actor: actor.name, action: change.action, reason },
  );
  if (r.updated) return { updated: [id], skipped: [] };
  const why = whyNot(change.action, r) ?? `${r.status}: changed while edit & retry ran`;
  return { updated: [], skipped: [{ id, reason: why }] };
}

type ActionPreview = { change: number; skip: number; skipped: { reason: string; count: number }[] };
export type TargetPreview = {
  /** Commands the target names: distinct ids, or all that match the filter. */
  total: number;
  /** The ones an action would take: all of them, or the newest MAX_ACTION_TARGETS that match. */
  considered: number;
  max: number;
  actions: Record<ActionName, ActionPreview>;
};

/**
 * What each action would do to the target now, without doing it: how many
 * commands it would change and how many it would skip, grouped by the reason
 * the action would give. Read from the same rules the actions apply.
 */
export async function previewActions(db: Db, registry: Registry, target: Target): Promise<TargetPreview> {
  const ids = await resolveTargets(db, target);
  const total =
    "ids" in target
      ? ids.length
      : ids.length < MAX_ACTION_TARGETS
        ? ids.length
        : await countMatching(db, target.filter);
  const rows = new Map((await typesOf(db, ids)).map((r) => [r.id, r]));
  const tally = Object.fromEntries(
    ACTION_NAMES.map((a) => [a, { change: 0, reasons: new Map<string, number>() }]),
  ) as Record<ActionName, { change: number; reasons: Map<string, number> }>;
  for (const id of ids) {
    const r = rows.get(id);
    const subject = r ? { status: r.status, leased: r.leased } : { status: null, leased: false };
    for (const a of ACTION_NAMES) {
      const why =
        a === "compensate" && r ? (compensationBlocker(registry, r) ?? whyNot(a, subject)) : whyNot(a, subject);
      if (why === null) tally[a].change++;
      else tally[a].reasons.set(why, (tally[a].reasons.get(why) ?? 0) + 1);
    }
  }
  const actions = Object.fromEntries(
    ACTION_NAMES.map((a) => {
      const skipped = [...tally[a].reasons]
        .map(([reason, count]) => ({ reason, count }))
        .sort((x, y) => y.count - x.count || x.reason.localeCompare(y.reason));
      return [a, { change: tally[a].change, skip: ids.length - tally[a].change, skipped }];
    }),
  ) as Record<ActionName, ActionPreview>;
  return { total, considered: ids.length, max: MAX_ACTION_TARGETS, actions };
}
