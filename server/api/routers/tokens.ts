import { z } from "zod";
import { router, adminProcedure } from "../trpc";
import { createToken, listTokens, revokeToken } from "../../auth/tokens";
import { text } from "../../commands/inputs";

export const tokensRouter = router({
  create: adminProcedure
    .input(z.strictObject({ name: text(200), scope: z.enum(["client", "admin"]) }))
    .mutation(async ({ ctx, input }) => createToken(ctx.db, await ctx.secretKey(), { ...input, createdBy: ctx.principal.name })),
  list: adminProcedure.query(async ({ ctx }) => ({ items: await listTokens(ctx.db) })),
  revoke: adminProcedure
    .input(z.strictObject({ id: z.uuid({ error: "must be a token id (UUID)" }) }))
    .mutation(({ ctx, input }) => revokeToken(ctx.db, input.id, ctx.tokenCache)),
});
