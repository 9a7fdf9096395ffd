// The input of a schedule (DESIGN §8). One schema for the router and the
// console's schedule form, so this module must stay importable in a browser:
// it imports zod, croner (through ./cron) and the pure helpers of
// commands/inputs, nothing that reaches the database or Node. The command's
// payload is checked against its type's schema on the server only
// (server/commands/schedules.ts), since the registry is server code.
import { z } from "zod";
import { NOT_STORABLE, storable, submitInput } from "../commands/inputs";
import { cronProblem, timezoneProblem } from "./cron";

/** What each tick submits: an intake command without its own key, run time or ordering key. */
export const scheduleCommand = submitInput.pick({
  type: true,
  payload: true,
  callbackUrl: true,
  priority: true,
  retry: true,
});
export type ScheduleCommand = z.infer<typeof scheduleCommand>;

const problem = (check: (v: string) => string | null) => (v: string, ctx: z.RefinementCtx) => {
  const p = check(v);
  if (p) ctx.addIssue({ code: "custom", message: p });
};

const fields = {
  name: z.string().trim().min(1, "a name is required").max(200).refine(storable, NOT_STORABLE),
  cron: z.string().max(200).superRefine(problem(cronProblem)),
  timezone: z.string().max(100).superRefine(problem(timezoneProblem)),
  command: scheduleCommand,
  enabled: z.boolean(),
};

export const scheduleInput = z.strictObject({
  ...fields,
  timezone: fields.timezone.optional(),
  enabled: fields.enabled.optional(),
});
export type ScheduleInput = z.infer<typeof scheduleInput>;

/** A change: the fields given replace the stored ones (`{ id, enabled: false }` disables). */
export const scheduleUpdate = z.strictObject({
  id: z.uuid({ error: "must be a schedule id (UUID)" }),
  name: fields.name.optional(),
  cron: fields.cron.optional(),
  timezone: fields.timezone.optional(),
  command: scheduleCommand.optional(),
  enabled: fields.enabled.optional(),
});
export type ScheduleUpdate = z.infer<typeof scheduleUpdate>;

export const scheduleId = z.strictObject({ id: z.uuid({ error: "must be a schedule id (UUID)" }) });
