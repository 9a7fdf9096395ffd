import { z } from "zod";
import { router, adminProcedure, viewerProcedure } from "../trpc";
import { actorName, type Principal } from "../context";
import {
  createRule,
  deleteRule,
  listRules,
  rotateWebhookSecret,
  updateRule,
  type RuleSecrets,
} from "../../alerts/rules";
import { ruleInput, ruleUpdate } from "../../alerts/rule-input";
import { sendTest } from "../../alerts/test-email";
import { alertHistory } from "../../alerts/delivery";
import { AppError } from "../../errors";
import type { Context } from "../context";

/** Webhook URLs are credentials of their own (a chat service's): whole for admins only. */
const isAdmin = (p: Principal) => p.kind === "token" || p.role === "admin";

const secrets = async (ctx: Context): Promise<RuleSecrets> => ({
  key: await ctx.secretKey(),
  hostCheck: ctx.intake.hostCheck,
});

const ruleId = z.strictObject({ id: z.uuid({ error: "must be a rule id (UUID)" }) });

export const alertsRouter = router({
  listRules: viewerProcedure.query(async ({ ctx }) => ({
    items: await listRules(ctx.db, { reveal: isAdmin(ctx.principal) }),
    emailConfigured: ctx.emailConfigured,
  })),
  /** Answers `webhookSecret`: the rule's webhook signing secret, shown this once. */
  createRule: adminProcedure
    .input(ruleInput)
    .mutation(async ({ ctx, input }) => createRule(ctx.db, input, actorName(ctx.principal), await secrets(ctx))),
  updateRule: adminProcedure
    .input(ruleUpdate)
    .mutation(async ({ ctx, input }) => updateRule(ctx.db, input, actorName(ctx.principal), await secrets(ctx))),
  /** A new webhook secret, shown once (audited). */
  rotateWebhookSecret: adminProcedure
    .input(ruleId)
    .mutation(async ({ ctx, input }) =>
      rotateWebhookSecret(ctx.db, input.id, actorName(ctx.principal), await ctx.secretKey()),
    ),
  deleteRule: adminProcedure
    .input(ruleId)
    .mutation(({ ctx, input }) => deleteRule(ctx.db, input.id, actorName(ctx.principal))),
  /** A test alert now, to every channel of the rule (emails and webhooks). */
  testRule: adminProcedure.input(ruleId).mutation(async ({ ctx, input }) => {
    const r = await sendTest(ctx.db, input.id, ctx.publicUrl);
    if (!r) throw new AppError("NOT_FOUND", "No such rule");
    return { ...r, emailConfigured: ctx.emailConfigured };
  }),
  history: viewerProcedure
    .input(z.strictObject({ ruleId: z.uuid().optional(), limit: z.int().min(1).max(500).optional() }))
    .query(async ({ ctx, input }) => ({
      items: await alertHistory(ctx.db, input.ruleId ?? null, input.limit ?? 100, {
        reveal: isAdmin(ctx.principal),
      }),
      emailConfigured: ctx.emailConfigured,
    })),
});
