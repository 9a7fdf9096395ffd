import { z } from "zod";
import { router, adminProcedure, userProcedure, publicProcedure } from "../trpc";
import { actorName } from "../context";
import { changePassword, createUser, listUsers, updateUser } from "../../auth/users";
import { listAudit } from "../../db/audit";
import { viewerProcedure } from "../trpc";

const role = z.enum(["viewer", "operator", "admin"]);
const password = z.string().min(12, "at least 12 characters").max(200);

export const usersRouter = router({
  list: adminProcedure.query(async ({ ctx }) => ({ items: await listUsers(ctx.db) })),
  create: adminProcedure
    .input(z.strictObject({ email: z.email().max(200), password, role }))
    .mutation(({ ctx, input }) => createUser(ctx.db, { ...input, mustChangePassword: true }, actorName(ctx.principal))),
  update: adminProcedure
    .input(z.strictObject({ id: z.uuid(), role: role.optional(), disabled: z.boolean().optional() }))
    .mutation(({ ctx, input }) =>
      updateUser(
        ctx.db,
        { actor: actorName(ctx.principal), userId: ctx.principal.kind === "user" ? ctx.principal.userId : null },
        input,
      ),
    ),
});

export const authRouter = router({
  /** Who is signed in (null when nobody). */
  me: publicProcedure.query(({ ctx }) => {
    const p = ctx.principal;
    if (!p) return null;
    return p.kind === "user"
      ? { kind: "user" as const, email: p.email, role: p.role, mustChangePassword: p.mustChangePassword }
      : {
          kind: "token" as const,
          name: p.name,
          role: p.scope === "admin" ? ("admin" as const) : null,
          mustChangePassword: false,
        };
  }),
  changePassword: userProcedure
    .input(z.strictObject({ current: z.string().min(1).max(200), next: password }))
    .mutation(async ({ ctx, input }) => {
      await changePassword(ctx.db, ctx.principal.userId, input.current, input.next, ctx.principal.sessionId);
      return { ok: true };
    }),
});

export const auditRouter = router({
  list: viewerProcedure
    .input(
      z.strictObject({
        cursor: z
          .string()
          .regex(/^\d{1,15}$/, "not a cursor from a previous page")
          .optional(),
        limit: z.int().min(1).max(200).optional(),
      }),
    )
    .query(async ({ ctx, input }) => {
      const limit = input.limit ?? 50;
      const rows = await listAudit(ctx.db, input.cursor ? Number(input.cursor) : null, limit + 1);
      const page = rows.slice(0, limit);
      return {
        items: page.map((r) => ({
          id: r.id,
          at: r.at.toISOString(),
          actor: r.actor,
          action: r.action,
          reason: r.reason,
          commandIds: r.command_ids ?? [],
          details: r.details,
        })),
        nextCursor: rows.length > limit ? page.at(-1)!.id : null,
      };
    }),
});
