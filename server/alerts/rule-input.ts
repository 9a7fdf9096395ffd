// The input of an alert rule (DESIGN §4, §9), checked per kind. One schema for
// the router and the console's rule form, so this module must stay importable
// in a browser: it imports zod, the engine's states and the pure helpers of
// commands/inputs, nothing that reaches the database or Node.
import { z } from "zod";
import { STATES } from "../engine/states";
import { isoDateTime, noCredentials, storable, NO_CREDENTIALS, NOT_STORABLE } from "../commands/inputs";

export const RULE_KINDS = ["count", "stuck", "rate", "backlog", "latency", "circuit"] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

/** A latency rule's percentile when none is given. */
export const DEFAULT_PERCENTILE = 95;
/** A circuit rule's threshold (open or half-open scopes) when none is given. */
export const DEFAULT_CIRCUIT_THRESHOLD = 1;
export const MAX_WEBHOOKS = 20;

const webhookUrl = z
  .url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" })
  .max(2048)
  .refine(storable, NOT_STORABLE)
  .refine(noCredentials, NO_CREDENTIALS);

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
  percentile: z
    .number()
    .gt(0, "a percentile is above 0 and at most 100")
    .max(100, "a percentile is above 0 and at most 100")
    .optional(),
  /** Required but for circuit rules (default 1). */
  threshold: z.number().min(0).max(1_000_000_000).optional(),
  recipients: z
    .array(z.email({ error: "must be an email address" }))
    .max(50)
    .optional(),
  webhooks: z.array(webhookUrl).max(MAX_WEBHOOKS).optional(),
  cooldownSeconds: z
    .int()
    .min(60)
    .max(7 * 86400)
    .optional(),
  notifyOnResolve: z.boolean().optional(),
  enabled: z.boolean().optional(),
  silencedUntil: isoDateTime().nullable().optional(),
};

type Checked = {
  kind: string;
  states?: string[];
  windowSeconds?: number;
  ageSeconds?: number;
  percentile?: number;
  threshold?: number;
  recipients?: string[];
  webhooks?: string[];
};

function checkKind(r: Checked, ctx: z.RefinementCtx) {
  const need = (cond: boolean, path: string, message: string) =>
    cond || ctx.addIssue({ code: "custom", path: [path], message });
  if (!r.recipients?.length && !r.webhooks?.length) {
    ctx.addIssue({ code: "custom", path: ["recipients"], message: "at least one recipient or webhook" });
    ctx.addIssue({ code: "custom", path: ["webhooks"], message: "at least one recipient or webhook" });
  }
  r.webhooks?.forEach((u, i) => {
    if (r.webhooks!.indexOf(u) !== i)
      ctx.addIssue({ code: "custom", path: ["webhooks", i], message: "this webhook is listed twice" });
  });
  if (r.kind !== "circuit") need(r.threshold !== undefined, "threshold", "a threshold is required");
  if (r.percentile !== undefined) need(r.kind === "latency", "percentile", "only a latency rule has a percentile");
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
    need((r.threshold ?? 0) <= 1, "threshold", "a rate is a share from 0 to 1");
  }
  if (r.kind === "latency") {
    need(r.windowSeconds !== undefined, "windowSeconds", "a latency rule needs a window");
    need((r.threshold ?? 1) > 0, "threshold", "a latency threshold is a number of seconds above 0");
  }
  if (r.kind === "circuit") {
    const t = r.threshold ?? DEFAULT_CIRCUIT_THRESHOLD;
    need(
      Number.isInteger(t) && t >= 1,
      "threshold",
      "a circuit rule's threshold is a number of circuit breakers, a whole number from 1",
    );
  }
}

export const ruleInput = z.strictObject(base).superRefine(checkKind);
export const ruleUpdate = z.strictObject({ id: z.uuid(), ...base }).superRefine(checkKind);
export type RuleInput = z.infer<typeof ruleInput>;
