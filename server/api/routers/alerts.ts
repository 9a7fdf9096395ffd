import { z } from "zod";
import { router, adminProcedure, viewerProcedure } from "../trpc";
import { actorName } from "../context";
import { createRule, deleteRule, listRules, updateRule } from "../../alerts/rules";
import { ruleInput, ruleUpdate } from "../../alerts/rule-input";
import { sendTest } from "../../alerts/test-email";
import { alertHistory } from "../../alerts/delivery";
import { AppError } from "../../errors";

export const alertsRouter = router({
  listRules: viewerProcedure.query(async ({ ctx }) => ({
    items: await listRules(ctx.db),
    emailConfigured: ctx.emailConfigured,
  })),
  createRule: adminProcedure
    .input(ruleInput)
    .mutation(({ ctx, input }) => createRule(ctx.db, input, actorName(ctx.principal))),
  updateRule: adminProcedure
    .input(ruleUpdate)
    .mutation(({ ctx, input }) => updateRule(ctx.db, input, actorName(ctx.principal))),
  deleteRule: adminProcedure
    .input(z.strictObject({ id: z.uuid() }))
    .mutation(({ ctx, input }) => deleteRule(ctx.db, input.id, actorName(ctx.principal))),
  testRule: adminProcedure.input(z.strictObject({ id: z.uuid() })).mutation(async ({ ctx, input }) => {
    const r = await sendTest(ctx.db, input.id);
    if (!r) throw new AppError("NOT_FOUND", "No such rule");
    return { ...r, emailConfigured: ctx.emailConfigured };
  }),
  history: viewerProcedure
    .input(z.strictObject({ ruleId: z.uuid().optional(), limit: z.int().min(1).max(500).optional() }))
    .query(async ({ ctx, input }) => ({
      items: await alertHistory(ctx.db, input.ruleId ?? null, input.limit ?? 100),
      emailConfigured: ctx.emailConfigured,
    })),
});
