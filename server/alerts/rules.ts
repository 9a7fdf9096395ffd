// Alert rules as data (DESIGN §4): create, replace, delete (each audited in the
// change's own transaction) and the list with what became of each rule's emails.
import { randomUUID } from "node:crypto";
import type { Db } from "../db/client";
import { insertRule, listedRules, removeRule, replaceRule, type RuleColumns } from "../db/alert-rules";
import type { State } from "../engine/states";
import { AppError } from "../errors";
import { emailByRule, type RuleEmail } from "./delivery";
import type { RuleInput } from "./rule-input";

export { ruleInput, type RuleInput } from "./rule-input";

const columns = (r: RuleInput): RuleColumns => ({
  name: r.name,
  kind: r.kind,
  states: r.kind === "backlog" || r.kind === "rate" ? [] : (r.states ?? []),
  type: r.type ?? null,
  windowSeconds: r.windowSeconds ?? null,
  ageSeconds: r.ageSeconds ?? null,
  threshold: r.threshold,
  recipients: r.recipients.map((x) => x.toLowerCase()),
  cooldownSeconds: r.cooldownSeconds ?? 3600,
  notifyOnResolve: r.notifyOnResolve ?? false,
  enabled: r.enabled ?? true,
  silencedUntil: r.silencedUntil ? new Date(r.silencedUntil) : null,
});

/** `actor`: who makes the change, as the audit log names them (a user's email, or token:<name>). */
export async function createRule(db: Db, r: RuleInput, actor: string) {
  const id = randomUUID();
  await insertRule(db, id, columns(r), actor, {
    actor,
    action: "alert.create",
    reason: null,
    details: { id, name: r.name },
  });
  return { id };
}

export async function updateRule(db: Db, r: RuleInput & { id: string }, actor: string) {
  const audit = {
    actor,
    action: "alert.update",
    reason: null,
    details: { id: r.id, name: r.name, enabled: r.enabled, silencedUntil: r.silencedUntil },
  };
  if (!(await replaceRule(db, r.id, columns(r), audit))) throw new AppError("NOT_FOUND", "No such rule");
  return { id: r.id };
}

export async function deleteRule(db: Db, id: string, actor: string) {
  if (!(await removeRule(db, id, { actor, action: "alert.delete", reason: null, details: { id } })))
    throw new AppError("NOT_FOUND", "No such rule");
  return { id };
}

const NO_EMAIL: RuleEmail = { latest: null, lastSentAt: null, unsent: { notSent: 0, queued: 0 } };

export async function listRules(db: Db) {
  const [rows, email] = await Promise.all([listedRules(db.pool), emailByRule(db)]);
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    kind: r.kind,
    // a command_status[] column: its values are states
    states: r.states as State[],
    type: r.type,
    windowSeconds: r.windowSeconds,
    ageSeconds: r.ageSeconds,
    threshold: r.threshold,
    recipients: r.recipients,
    cooldownSeconds: r.cooldownSeconds,
    notifyOnResolve: r.notifyOnResolve,
    enabled: r.enabled,
    silencedUntil: r.silencedUntil?.toISOString() ?? null,
    state: r.firing ? ("firing" as const) : ("ok" as const),
    firingSince: r.firingSince?.toISOString() ?? null,
    // What became of its emails, from the deliveries (the rule's own last_sent_at is when it last alerted, sent or not).
    email: email.get(r.id) ?? NO_EMAIL,
    lastValue: r.lastValue,
    lastEvaluatedAt: r.lastEvaluatedAt?.toISOString() ?? null,
  }));
}
