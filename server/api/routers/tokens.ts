import { z } from "zod";
import { router, adminProcedure } from "../trpc";
import { createToken, listTokens, revokeToken, rotateSigningSecret } from "../../auth/tokens";
import { text } from "../../commands/inputs";
import { actorName } from "../context";
import { writeAudit } from "../../db/audit";

export const tokensRouter = router({
  create: adminProcedure
    .input(z.strictObject({ name: text(200), scope: z.enum(["client", "admin"]) }))
    .mutation(async ({ ctx, input }) => {
      const created = await createToken(ctx.db, await ctx.secretKey(), { ...input, createdBy: actorName(ctx.principal) });
      await writeAudit(ctx.db, { actor: actorName(ctx.principal), action: "token.create", reason: null, details: { id: created.id, name: input.name, scope: input.scope } });
      return created;
    }),
  list: adminProcedure.query(async ({ ctx }) => ({ items: await listTokens(ctx.db) })),
  revoke: adminProcedure
    .input(z.strictObject({ id: z.uuid({ error: "must be a token id (UUID)" }) }))
    .mutation(async ({ ctx, input }) => {
      const r = await revokeToken(ctx.db, input.id, ctx.tokenCache);
      await writeAudit(ctx.db, { actor: actorName(ctx.principal), action: "token.revoke", reason: null, details: { id: input.id } });
      return r;
    }),
  /** A new callback signing secret for the token, shown once (the audit entry is written with the change). */
  rotateSecret: adminProcedure
    .input(z.strictObject({ id: z.uuid({ error: "must be a token id (UUID)" }) }))
    .mutation(async ({ ctx, input }) => rotateSigningSecret(ctx.db, await ctx.secretKey(), input.id, actorName(ctx.principal))),
});
