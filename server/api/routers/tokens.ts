import { z } from "zod";
import { router, adminProcedure } from "../trpc";
import { createToken, listTokens, revokeToken, rotateSigningSecret } from "../../auth/tokens";
import { text } from "../../commands/inputs";
import { actorName } from "../context";

export const tokensRouter = router({
  create: adminProcedure
    .input(z.strictObject({ name: text(200), scope: z.enum(["client", "admin"]) }))
    .mutation(async ({ ctx, input }) =>
      createToken(
        ctx.db,
        await ctx.secretKey(),
        { ...input, createdBy: actorName(ctx.principal) },
        actorName(ctx.principal),
      ),
    ),
  list: adminProcedure.query(async ({ ctx }) => ({ items: await listTokens(ctx.db) })),
  revoke: adminProcedure
    .input(z.strictObject({ id: z.uuid({ error: "must be a token id (UUID)" }) }))
    .mutation(({ ctx, input }) =>
      revokeToken(ctx.db, input.id, { actor: actorName(ctx.principal), cache: ctx.tokenCache }),
    ),
  /** A new callback signing secret for the token, shown once. */
  rotateSecret: adminProcedure
    .input(z.strictObject({ id: z.uuid({ error: "must be a token id (UUID)" }) }))
    .mutation(async ({ ctx, input }) =>
      rotateSigningSecret(ctx.db, await ctx.secretKey(), input.id, actorName(ctx.principal)),
    ),
});
