import { router, clientProcedure } from "../trpc";
import { submit } from "../../commands/submit";
import { getBatch, submitBatchRequest } from "../../commands/batches";
import { getCommand, getCommands } from "../../commands/read";
import { getBatchInput, getInput, getManyInput, submitBatchInput } from "../../commands/inputs";
import { z } from "zod";

const visibility = (p: { clientId: string; scope: string }) => ({ clientId: p.clientId, all: p.scope === "admin" });

export const intakeRouter = router({
  // The submit input is validated inside `submit` so that the type's payload
  // schema and the envelope report their issues the same way.
  submit: clientProcedure.input(z.unknown()).mutation(({ ctx, input }) => {
    ctx.intakeLimiter?.take(ctx.principal.clientId, 1);
    return submit(ctx.intake, ctx.principal.clientId, input);
  }),
  submitBatch: clientProcedure.input(submitBatchInput).mutation(async ({ ctx, input }) => {
    ctx.intakeLimiter?.take(ctx.principal.clientId, input.commands.length);
    return submitBatchRequest(ctx.intake, ctx.principal.clientId, input);
  }),
  get: clientProcedure.input(getInput).query(({ ctx, input }) => getCommand(ctx.db, visibility(ctx.principal), input)),
  getMany: clientProcedure
    .input(getManyInput)
    .query(async ({ ctx, input }) => ({ items: await getCommands(ctx.db, visibility(ctx.principal), input.ids) })),
  getBatch: clientProcedure
    .input(getBatchInput)
    .query(({ ctx, input }) => getBatch(ctx.db, visibility(ctx.principal), input.id)),
});
