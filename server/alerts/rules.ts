// Alert rules as data (DESIGN §4): validation per kind, create/update/delete/list.
import { randomUUID } from "node:crypto";
import { z } from "zod";
import type { Db } from "../db/client";
import { STATES } from "../engine/states";
import { AppError } from "../errors";
import { isoDateTime, storable, NOT_STORABLE } from "../commands/inputs";
import { emailByRule, type RuleEmail } from "./delivery";

const base = {
  name: z.string().trim().min(1).max(200).refine(storable, NOT_STORABLE),
  kind: z.enum(["count", "stuck", "rate", "backlog"]),
  states: z.array(z.enum(STATES)).max(STATES.length).optional(),
  type: z.string().min(1).max(64).refine(storable, NOT_STORABLE).optional(),
  windowSeconds: z.int().min(10).max(30 * 86400).optional(),
  ageSeconds: z.int().min(10).max(30 * 86400).optional(),
  threshold: z.number().min(0).max(1_000_000_000),
  recipients: z.array(z.email({ error: "must be an email address" })).min(1, "at least one recipient").max(50),
  cooldownSeconds: z.int().min(60).max(7 * 86400).optional(),
  notifyOnResolve: z.boolean().optional(),
  enabled: z.boolean().optional(),
  silencedUntil: isoDateTime().nullable().optional(),
};

function checkKind(r: { kind: string; states?: string[]; windowSeconds?: number; ageSeconds?: number; threshold: number }, ctx: z.RefinementCtx) {
  const need = (cond: boolean, path: string, message: string) => cond || ctx.addIssue({ code: "custom", path: [path], message });
  if (r.kind === "count") {
    need(!!r.states?.length, "states", "a count rule needs the states to count");
    need(r.windowSeconds !== undefined, "windowSeconds", "a count rule needs a window");
  }
  if (r.kind === "stuck") {
    need(!!r.states?.length, "states", "a stuck rule needs the states to watch");
    need(r.ageSeconds !== undefined, "ageSeconds", "a stuck rule needs an age");
  }
  if (r.kind === "rate") {
    need(r.windowSeconds !== undefined, "windowSeconds", "a rate rule needs a window");
    need(r.threshold <= 1, "threshold", "a rate is a share from 0 to 1");
  }
}

export const ruleInput = z.strictObject(base).superRefine(checkKind);
export const ruleUpdate = z.strictObject({ id: z.uuid(), ...base }).superRefine(checkKind);
export type RuleInput = z.infer<typeof ruleInput>;

const columns = (r: RuleInput) => ({
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

export async function createRule(db: Db, r: RuleInput, createdBy: string) {
  const id = randomUUID();
  await db.prisma.alertRule.create({ data: { id, ...columns(r), createdBy } });
  return { id };
}

export async function updateRule(db: Db, r: RuleInput & { id: string }) {
  const { count } = await db.prisma.alertRule.updateMany({ where: { id: r.id }, data: { ...columns(r), updatedAt: new Date() } });
  if (!count) throw new AppError("NOT_FOUND", "No such rule");
  return { id: r.id };
}

export async function deleteRule(db: Db, id: string) {
  const { count } = await db.prisma.alertRule.deleteMany({ where: { id } });
  if (!count) throw new AppError("NOT_FOUND", "No such rule");
  return { id };
}

const NO_EMAIL: RuleEmail = { latest: null, lastSentAt: null, unsent: { notSent: 0, queued: 0 } };

export async function listRules(db: Db) {
  const [rows, email] = await Promise.all([db.prisma.alertRule.findMany({ orderBy: { createdAt: "asc" } }), emailByRule(db)]);
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    kind: r.kind,
    states: r.states,
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
