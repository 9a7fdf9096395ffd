// Schedules (DESIGN §8): admins only, for reading too.
import { router, adminProcedure } from "../trpc";
import { actorName, type Context } from "../context";
import { scheduleId, scheduleInput, scheduleUpdate } from "../../schedules/input";
import { createSchedule, deleteSchedule, listSchedules, runNow, updateSchedule } from "../../commands/schedules";

const deps = (ctx: Context) => ({ db: ctx.db, registry: ctx.registry, hostCheck: ctx.intake.hostCheck });

export const schedulesRouter = router({
  list: adminProcedure.query(async ({ ctx }) => ({ items: await listSchedules(ctx.db) })),
  create: adminProcedure
    .input(scheduleInput)
    .mutation(({ ctx, input }) => createSchedule(deps(ctx), input, actorName(ctx.principal))),
  update: adminProcedure
    .input(scheduleUpdate)
    .mutation(({ ctx, input }) => updateSchedule(deps(ctx), input, actorName(ctx.principal))),
  delete: adminProcedure
    .input(scheduleId)
    .mutation(({ ctx, input }) => deleteSchedule(ctx, input.id, actorName(ctx.principal))),
  /** Submits the schedule's command now (key schedule:<id>:manual:<now>), enabled or not. */
  runNow: adminProcedure
    .input(scheduleId)
    .mutation(({ ctx, input }) => runNow(ctx, input.id, actorName(ctx.principal))),
});
