import { z } from "zod";
import { router, viewerProcedure, operatorProcedure } from "../trpc";
import { actorName } from "../context";
import { STATES } from "../../engine/states";
import { RESOLVE_OUTCOMES } from "../../engine/actions";
import { counts, detail, list, matching, overview } from "../../commands/console-read";
import {
  cancelCommands,
  compensateCommands,
  editAndRetryCommand,
  previewActions,
  resolveCommands,
  retryCommands,
  type Target,
} from "../../commands/actions";
import { freeText, isoDateTime, storable, NOT_STORABLE } from "../../commands/inputs";

const state = z.enum(STATES);
const filter = z.strictObject({
  status: z.array(state).max(STATES.length).optional(),
  type: freeText(64).optional(),
  q: freeText(500).optional(),
  createdAfter: isoDateTime().optional(),
  createdBefore: isoDateTime().optional(),
  orderingKey: freeText(200).optional(),
  batchId: z.uuid({ error: "must be a batch id (UUID)" }).optional(),
});
const ids = z
  .array(z.uuid({ error: "must be a command id (UUID)" }))
  .min(1, "select at least one command")
  .max(1000);
const reason = z.string().trim().max(1000).refine(storable, NOT_STORABLE);
/** One command, a selection (ids), or "all that match this filter". */
const target = z.union([
  z.strictObject({ ids, reason: reason.optional() }),
  z.strictObject({ filter, reason: reason.optional() }),
]);
const toTarget = (i: { ids: string[] } | { filter: z.infer<typeof filter> }): Target =>
  "ids" in i ? { ids: i.ids } : { filter: i.filter };

export const commandsRouter = router({
  list: viewerProcedure
    .input(filter.extend({ cursor: freeText(200).optional(), limit: z.int().min(1).max(200).optional() }))
    .query(({ ctx, input }) => list(ctx.db, input)),
  counts: viewerProcedure.query(({ ctx }) => counts(ctx.db)),
  countMatching: viewerProcedure.input(filter).query(({ ctx, input }) => matching(ctx.db, input)),
  overview: viewerProcedure.query(({ ctx }) => overview(ctx.db, ctx.retentionDays)),
  get: viewerProcedure
    .input(z.strictObject({ id: z.uuid({ error: "must be a command id (UUID)" }) }))
    .query(({ ctx, input }) => detail(ctx.db, ctx.registry, input.id)),
  types: viewerProcedure.query(({ ctx }) => ctx.registry.names()),
  /** What each action would change and skip for this target, before an operator confirms (a read: nothing changes). */
  preview: operatorProcedure
    .input(z.union([z.strictObject({ ids }), z.strictObject({ filter })]))
    .query(({ ctx, input }) => previewActions(ctx.db, ctx.registry, toTarget(input))),
  retry: operatorProcedure
    .input(target)
    .mutation(({ ctx, input }) =>
      retryCommands(ctx.db, toTarget(input), { name: actorName(ctx.principal) }, input.reason || null),
    ),
  compensate: operatorProcedure
    .input(target)
    .mutation(({ ctx, input }) =>
      compensateCommands(
        ctx.db,
        ctx.registry,
        toTarget(input),
        { name: actorName(ctx.principal) },
        input.reason || null,
      ),
    ),
  cancel: operatorProcedure
    .input(target)
    .mutation(({ ctx, input }) =>
      cancelCommands(ctx.db, toTarget(input), { name: actorName(ctx.principal) }, input.reason || null),
    ),
  resolve: operatorProcedure
    .input(
      z.union([
        z.strictObject({ ids, outcome: z.enum(RESOLVE_OUTCOMES), reason: reason.min(1, "say why") }),
        z.strictObject({ filter, outcome: z.enum(RESOLVE_OUTCOMES), reason: reason.min(1, "say why") }),
      ]),
    )
    .mutation(({ ctx, input }) =>
      resolveCommands(ctx.db, toTarget(input), input.outcome, { name: actorName(ctx.principal) }, input.reason),
    ),
  /** DESIGN §9: one command, a corrected payload (checked against its type's schema), run again under the same id and key. */
  editAndRetry: operatorProcedure
    .input(
      z.strictObject({
        id: z.uuid({ error: "must be a command id (UUID)" }),
        // Any JSON here: the command's type judges it (issues at payload.<field>).
        payload: z.unknown().refine((p) => p !== undefined, "the corrected payload is required"),
        reason: reason.min(1, "say why"),
      }),
    )
    .mutation(({ ctx, input }) =>
      editAndRetryCommand(
        { db: ctx.db, registry: ctx.registry, hostCheck: ctx.intake.hostCheck },
        input.id,
        input.payload,
        { name: actorName(ctx.principal) },
        input.reason,
      ),
    ),
});
