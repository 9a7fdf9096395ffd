import { z } from "zod";
import { router, adminProcedure, viewerProcedure } from "../trpc";
import { actorName } from "../context";
import { createRule, deleteRule, listRules, ruleInput, ruleUpdate, updateRule } from "../../alerts/rules";
import { sendTest } from "../../alerts/evaluator";
import { alertHistory } from "../../alerts/delivery";
import { writeAudit } from "../../db/audit";
import { AppError } from "../../errors";

export const alertsRouter = router({
  listRules: viewerProcedure.query(async ({ ctx }) => ({ items: await listRules(ctx.db), emailConfigured: ctx.emailConfigured })),
  createRule: adminProcedure.input(ruleInput).mutation(async ({ ctx, input }) => {
    const r = await createRule(ctx.db, input, actorName(ctx.principal));
    await writeAudit(ctx.db, { actor: actorName(ctx.principal), action: "alert.create", reason: null, details: { id: r.id, name: input.name } });
    return r;
  }),
  updateRule: adminProcedure.input(ruleUpdate).mutation(async ({ ctx, input }) => {
    const r = await updateRule(ctx.db, input);
    await writeAudit(ctx.db, { actor: actorName(ctx.principal), action: "alert.update", reason: null, details: { id: r.id, name: input.name, enabled: input.enabled, silencedUntil: input.silencedUntil } });
    return r;
  }),
  deleteRule: adminProcedure.input(z.strictObject({ id: z.uuid() })).mutation(async ({ ctx, input }) => {
    const r = await deleteRule(ctx.db, input.id);
    await writeAudit(ctx.db, { actor: actorName(ctx.principal), action: "alert.delete", reason: null, details: { id: input.id } });
    return r;
  }),
  testRule: adminProcedure.input(z.strictObject({ id: z.uuid() })).mutation(async ({ ctx, input }) => {
    const r = await sendTest(ctx.db, input.id, ctx.publicUrl);
    if (!r) throw new AppError("NOT_FOUND", "No such rule");
    return { ...r, emailConfigured: ctx.emailConfigured };
  }),
  history: viewerProcedure
    .input(z.strictObject({ ruleId: z.uuid().optional(), limit: z.int().min(1).max(500).optional() }))
    .query(async ({ ctx, input }) => ({ items: await alertHistory(ctx.db, input.ruleId ?? null, input.limit ?? 100), emailConfigured: ctx.emailConfigured })),
});
