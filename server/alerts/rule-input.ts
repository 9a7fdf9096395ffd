// The input of an alert rule (DESIGN §4), checked per kind. One schema for the
// router and the console's rule form, so this module must stay importable in
// a browser: it imports zod, the engine's states and the pure helpers of
// commands/inputs, nothing that reaches the database or Node.
import { z } from "zod";
import { STATES } from "../engine/states";
import { isoDateTime, storable, NOT_STORABLE } from "../commands/inputs";

export const RULE_KINDS = ["count", "stuck", "rate", "backlog"] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

const base = {
  name: z.string().trim().min(1).max(200).refine(storable, NOT_STORABLE),
  kind: z.enum(RULE_KINDS),
  states: z.array(z.enum(STATES)).max(STATES.length).optional(),
  type: z.string().min(1).max(64).refine(storable, NOT_STORABLE).optional(),
  windowSeconds: z
    .int()
    .min(10)
    .max(30 * 86400)
    .optional(),
  ageSeconds: z
    .int()
    .min(10)
    .max(30 * 86400)
    .optional(),
  threshold: z.number().min(0).max(1_000_000_000),
  recipients: z
    .array(z.email({ error: "must be an email address" }))
    .min(1, "at least one recipient")
    .max(50),
  cooldownSeconds: z
    .int()
    .min(60)
    .max(7 * 86400)
    .optional(),
  notifyOnResolve: z.boolean().optional(),
  enabled: z.boolean().optional(),
  silencedUntil: isoDateTime().nullable().optional(),
};

function checkKind(
  r: { kind: string; states?: string[]; windowSeconds?: number; ageSeconds?: number; threshold: number },
  ctx: z.RefinementCtx,
) {
  const need = (cond: boolean, path: string, message: string) =>
    cond || ctx.addIssue({ code: "custom", path: [path], message });
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
