// flow.* (DESIGN §7): the scopes and blocked keys (viewer), limits (admin),
// pause and resume (operator). Inputs are checked here; the rules and the
// audit are in server/commands/flow.ts.
import { z } from "zod";
import { adminProcedure, operatorProcedure, router, viewerProcedure } from "../trpc";
import { actorName } from "../context";
import { listFlow, pause, removeLimit, resume, setLimit } from "../../commands/flow";
import { storable, NOT_STORABLE } from "../../commands/inputs";
import type { Scope } from "../../flow/scopes";

const HOST_HELP = "must be a host name without scheme, port or path, e.g. api.example.com";

/**
 * A scope's host as commands carry it (server/flow/scopes.ts hostOf): the
 * URL's host name, lower case (IDN in punycode), IPv6 in brackets. Anything
 * that is more than a host name (a port, a path, credentials) is refused
 * rather than cut off, so that a limit is never set on a scope nobody meant.
 */
function normalHost(h: string): string | null {
  if (/[/\\@?#\s%]/.test(h) || (!h.startsWith("[") && h.includes(":"))) return null;
  try {
    const u = new URL(`http://${h}/`);
    return u.hostname !== "" && u.port === "" ? u.hostname.toLowerCase() : null;
  } catch {
    return null;
  }
}

const host = z
  .string({ error: HOST_HELP })
  .trim()
  .min(1, HOST_HELP)
  .max(253, "must be at most 253 characters")
  .transform((h, ctx) => {
    const n = normalHost(h);
    if (n === null) ctx.addIssue({ code: "custom", message: HOST_HELP });
    return n ?? h;
  });

const EXACTLY_ONE = 'give exactly one of type or host: { "type": "<command type>" } or { "host": "<host name>" }';
const scope = z
  .strictObject(
    {
      type: z
        .string({ error: "must be a command type name" })
        .min(1, "must be a command type name")
        .max(64, "must be at most 64 characters")
        .refine(storable, NOT_STORABLE)
        .optional(),
      host: host.optional(),
    },
    { error: (i) => (i.input === undefined ? EXACTLY_ONE : undefined) },
  )
  .superRefine((v, ctx) => {
    if ((v.type === undefined) === (v.host === undefined)) ctx.addIssue({ code: "custom", message: EXACTLY_ONE });
  })
  .transform((v): Scope => (v.host !== undefined ? { host: v.host } : { type: v.type! }));

const whole = (what: string, max: number) =>
  z
    .int({ error: `must be a whole number (${what})` })
    .min(1, `must be at least 1 (${what})`)
    .max(max, `must be at most ${max.toLocaleString("en")}`);

const reason = z.string().trim().max(1000, "must be at most 1000 characters").refine(storable, NOT_STORABLE);

const limitInput = z
  .strictObject({
    scope,
    concurrency: whole("attempts in flight at once", 1_000_000).optional(),
    ratePerSecond: z
      .number({ error: "must be a number (attempts started per second)" })
      .positive("must be more than 0 (attempts started per second)")
      .max(1_000_000, "must be at most 1,000,000")
      .optional(),
    burst: whole("attempts that may start at once after a quiet spell", 1_000_000).optional(),
    circuit: z
      .strictObject({
        threshold: whole("consecutive exceptions that open the circuit", 10_000).optional(),
        cooldownSeconds: z
          .int({ error: "must be a whole number of seconds" })
          .min(1, "must be at least 1 second")
          .max(3600, "must be at most 3600 seconds (1 hour)")
          .optional(),
      })
      .optional(),
    reason: reason.optional(),
  })
  .superRefine((v, ctx) => {
    const any =
      v.concurrency !== undefined ||
      v.ratePerSecond !== undefined ||
      v.burst !== undefined ||
      v.circuit?.threshold !== undefined ||
      v.circuit?.cooldownSeconds !== undefined;
    if (!any)
      ctx.addIssue({
        code: "custom",
        message:
          "give at least one of concurrency, ratePerSecond (with burst), circuit.threshold or circuit.cooldownSeconds; to clear a limit, call flow.removeLimit",
      });
  });

export const flowRouter = router({
  list: viewerProcedure.query(({ ctx }) => listFlow(ctx.db, ctx.registry)),
  setLimit: adminProcedure
    .input(limitInput)
    .mutation(({ ctx, input }) =>
      setLimit(ctx.db, ctx.registry, input.scope, input, { name: actorName(ctx.principal) }, input.reason || null),
    ),
  removeLimit: adminProcedure
    .input(z.strictObject({ scope, reason: reason.optional() }))
    .mutation(({ ctx, input }) =>
      removeLimit(ctx.db, ctx.registry, input.scope, { name: actorName(ctx.principal) }, input.reason || null),
    ),
  pause: operatorProcedure
    .input(
      z.strictObject({
        scope,
        reason: z
          .string({ error: "say why the scope is paused" })
          .trim()
          .min(1, "say why the scope is paused")
          .max(1000, "must be at most 1000 characters")
          .refine(storable, NOT_STORABLE),
      }),
    )
    .mutation(({ ctx, input }) =>
      pause(ctx.db, ctx.registry, input.scope, { name: actorName(ctx.principal) }, input.reason),
    ),
  resume: operatorProcedure
    .input(z.strictObject({ scope, reason: reason.optional() }))
    .mutation(({ ctx, input }) =>
      resume(ctx.db, ctx.registry, input.scope, { name: actorName(ctx.principal) }, input.reason || null),
    ),
});
