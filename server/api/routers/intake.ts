import { router, clientProcedure } from "../trpc";
import { submit } from "../../commands/submit";
import { getBatch, submitBatchRequest } from "../../commands/batches";
import { getCommand, getCommands } from "../../commands/read";
import { getBatchInput, getInput, getManyInput, submitBatchInput } from "../../commands/inputs";
import { z } from "zod";
import { readTraceHeaders, type StoredTrace } from "../../lib/trace-context";
import { startSpan, tracingOn, type SpanAttributes } from "../../lib/tracing";
import type { HeaderReader } from "../context";

const visibility = (p: { clientId: string; scope: string }) => ({ clientId: p.clientId, all: p.scope === "admin" });

/**
 * Runs a submit with the request's trace context (DESIGN §10): the
 * traceparent/tracestate headers when valid (a malformed traceparent is
 * ignored, as W3C asks), kept with every command stored. With tracing on, the
 * request is an `intake.*` span (a child of that context, or a root); the
 * commands keep the client's context when it sent one, else the span's, so
 * that their attempts are in the submit's trace either way.
 */
function traced<T>(
  header: HeaderReader,
  name: string,
  attributes: SpanAttributes,
  run: (trace: StoredTrace | null) => Promise<T>,
  outcome: (r: T) => SpanAttributes,
): Promise<T> {
  const incoming = readTraceHeaders(header);
  if (!tracingOn()) return run(incoming);
  const span = startSpan(name, "server", incoming, attributes)!;
  const kept = incoming ?? { parent: span.traceparent, state: span.tracestate };
  let p: Promise<T>;
  try {
    p = run(kept);
  } catch (err) {
    span.end({}, (err as Error).message);
    throw err;
  }
  return p.then(
    (r) => (span.end(outcome(r)), r),
    (err: Error) => {
      span.end({}, err.message);
      throw err;
    },
  );
}

export const intakeRouter = router({
  // The submit input is validated inside `submit` so that the type's payload
  // schema and the envelope report their issues the same way.
  submit: clientProcedure.input(z.unknown()).mutation(({ ctx, input }) => {
    const clientId = ctx.principal.clientId;
    return traced(
      ctx.header,
      "intake.submit",
      { "conveyor.client.id": clientId, "conveyor.command.count": 1 },
      (trace) => {
        ctx.intakeLimiter?.take(clientId, 1);
        return submit(ctx.intake, clientId, input, trace);
      },
      (r) => ({ "conveyor.command.id": r.id, "conveyor.command.duplicate": r.duplicate }),
    );
  }),
  submitBatch: clientProcedure.input(submitBatchInput).mutation(({ ctx, input }) => {
    const clientId = ctx.principal.clientId;
    return traced(
      ctx.header,
      "intake.submitBatch",
      { "conveyor.client.id": clientId, "conveyor.command.count": input.commands.length },
      async (trace) => {
        ctx.intakeLimiter?.take(clientId, input.commands.length);
        return submitBatchRequest(ctx.intake, clientId, input, trace);
      },
      ({ receipts, batchId }) => ({
        "conveyor.command.stored": receipts.filter((r) => r.ok && !r.duplicate).length,
        "conveyor.command.duplicates": receipts.filter((r) => r.ok && r.duplicate).length,
        "conveyor.command.rejected": receipts.filter((r) => !r.ok).length,
        ...(batchId ? { "conveyor.batch.id": batchId } : {}),
      }),
    );
  }),
  get: clientProcedure.input(getInput).query(({ ctx, input }) => getCommand(ctx.db, visibility(ctx.principal), input)),
  getMany: clientProcedure
    .input(getManyInput)
    .query(async ({ ctx, input }) => ({ items: await getCommands(ctx.db, visibility(ctx.principal), input.ids) })),
  getBatch: clientProcedure
    .input(getBatchInput)
    .query(({ ctx, input }) => getBatch(ctx.db, visibility(ctx.principal), input.id)),
});
