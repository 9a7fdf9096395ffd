// Batches in the console (DESIGN §8): every client's, for viewers and up.
// Their commands are listed and acted on through commands.* with the batchId filter.
import { z } from "zod";
import { router, viewerProcedure } from "../trpc";
import { getBatchInput, freeText } from "../../commands/inputs";
import { batchDetail, recentBatches } from "../../commands/batches";

export const batchesRouter = router({
  list: viewerProcedure
    .input(z.strictObject({ cursor: freeText(200).optional(), limit: z.int().min(1).max(100).optional() }))
    .query(({ ctx, input }) => recentBatches(ctx.db, { limit: input.limit ?? 20, cursor: input.cursor })),
  get: viewerProcedure.input(getBatchInput).query(({ ctx, input }) => batchDetail(ctx.db, input.id)),
});
